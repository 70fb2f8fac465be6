/**
 * Model of arch/x86/kernel/cpu/mce/severity.c (Intel/Zhaoxin grading):
 * `enum severity_level`, the `severities[]` table as data (one entry per
 * kernel MCESEV() row, kernel order, first match wins), error_context(), and
 * mce_severity_intel(). Three tables: the current one (SEAM non-root rows, ≥6.10;
 * "Uncorrected in kernel" row, ≥6.2), the 5.18-6.1 one (neither: a row graded UC
 * or worse in IN_KERNEL context becomes PANIC after matching, keeping the row's
 * message) and the ≈5.13-5.17 one that still had the `tolerant` knob (removed in
 * v5.18, kernel-model.md §19.8). Each row hit is
 * recorded, like the kernel's `covered` flag behind debugfs
 * mce/severities-coverage, so a runner can report table coverage.
 */

/** enum severity_level (internal.h), kernel order. DEFERRED and UCNA share a value. */
export const MCE_NO_SEVERITY = 0;
export const MCE_DEFERRED_SEVERITY = 1;
export const MCE_UCNA_SEVERITY = MCE_DEFERRED_SEVERITY;
export const MCE_KEEP_SEVERITY = 2;
export const MCE_SOME_SEVERITY = 3;
export const MCE_AO_SEVERITY = 4;
export const MCE_UC_SEVERITY = 5;
export const MCE_AR_SEVERITY = 6;
export const MCE_PANIC_SEVERITY = 7;

export const severity_level = {
  MCE_NO_SEVERITY, MCE_DEFERRED_SEVERITY, MCE_UCNA_SEVERITY, MCE_KEEP_SEVERITY, MCE_SOME_SEVERITY,
  MCE_AO_SEVERITY, MCE_UC_SEVERITY, MCE_AR_SEVERITY, MCE_PANIC_SEVERITY,
} as const;
export type SeverityLevel = (typeof severity_level)[keyof typeof severity_level];

const NAMES = ['NO', 'DEFERRED/UCNA', 'KEEP', 'SOME', 'AO', 'UC', 'AR', 'PANIC'] as const;
export const severityName = (s: SeverityLevel): string => NAMES[s] ?? String(s);

/** enum context: where the CPU was when the error hit. */
export type ErrorContextKind = 'IN_KERNEL' | 'IN_USER' | 'IN_KERNEL_RECOV';

// Register bits the table tests (asm/mce.h).
const bit = (n: number): bigint => 1n << BigInt(n);
const MCI_STATUS_VAL = bit(63), MCI_STATUS_OVER = bit(62), MCI_STATUS_UC = bit(61), MCI_STATUS_EN = bit(60);
const MCI_STATUS_MISCV = bit(59), MCI_STATUS_ADDRV = bit(58), MCI_STATUS_PCC = bit(57), MCI_STATUS_S = bit(56), MCI_STATUS_AR = bit(55);
const MCG_STATUS_RIPV = bit(0), MCG_STATUS_EIPV = bit(1), MCG_STATUS_MCIP = bit(2), MCG_STATUS_SEAM_NR = bit(12);
const MCACOD = 0xefffn, MCACOD_SCRUB = 0x00c0n, MCACOD_SCRUBMSK = 0xeff0n, MCACOD_L3WB = 0x017an;
const MCACOD_DATA = 0x0134n, MCACOD_INSTR = 0x0150n;
const MCI_UC_S = MCI_STATUS_UC | MCI_STATUS_S;
const MCI_UC_AR = MCI_STATUS_UC | MCI_STATUS_AR;
const MCI_UC_SAR = MCI_STATUS_UC | MCI_STATUS_S | MCI_STATUS_AR;
const MCI_ADDR = MCI_STATUS_ADDRV | MCI_STATUS_MISCV;
/** INTEL_FAM6_SKYLAKE_X: the patrol-scrub quirk row applies to it from stepping 4 (Cascade Lake). */
export const INTEL_FAM6_SKYLAKE_X = 0x55;

export interface SeverityRow {
  sev: SeverityLevel;
  msg: string;
  /** (status & mask) must equal result: BITSET / BITCLR / MASK. */
  mask: bigint;
  result: bigint;
  /** (mcgstatus & mcgmask) must equal mcgres: MCGMASK. */
  mcgmask: bigint;
  mcgres: bigint;
  /** SER: only with MCG_SER_P; NOSER: only without. */
  ser?: 'SER' | 'NOSER';
  context?: ErrorContextKind;
  /** EXCP: only when graded inside the #MC handler; NOEXCP: only when polled. */
  excp?: 'EXCP' | 'NOEXCP';
  cpuModel?: number;
  cpuMinStepping?: number;
  bankLo?: number;
  bankHi?: number;
  /** Row compiled only with CONFIG_MEMORY_FAILURE. */
  memoryFailure?: boolean;
}

type Cond = Omit<SeverityRow, 'sev' | 'msg' | 'mask' | 'result' | 'mcgmask' | 'mcgres'> &
  Partial<Pick<SeverityRow, 'mask' | 'result' | 'mcgmask' | 'mcgres'>>;

// The kernel's helper macros, as functions returning partial rows.
const MCESEV = (sev: SeverityLevel, msg: string, ...c: Cond[]): SeverityRow =>
  Object.freeze({ sev, msg, mask: 0n, result: 0n, mcgmask: 0n, mcgres: 0n, ...Object.assign({}, ...c) as Cond });
const BITCLR = (x: bigint): Cond => ({ mask: x, result: 0n });
const BITSET = (x: bigint): Cond => ({ mask: x, result: x });
const MASK = (x: bigint, y: bigint): Cond => ({ mask: x, result: y });
const MCGMASK = (x: bigint, y: bigint): Cond => ({ mcgmask: x, mcgres: y });
const SER: Cond = { ser: 'SER' };
const NOSER: Cond = { ser: 'NOSER' };
const EXCP: Cond = { excp: 'EXCP' };
const KERNEL: Cond = { context: 'IN_KERNEL' };
const USER: Cond = { context: 'IN_USER' };
const KERNEL_RECOV: Cond = { context: 'IN_KERNEL_RECOV' };
const MF: Cond = { memoryFailure: true };
const MODEL_STEPPING = (m: number, s: number): Cond => ({ cpuModel: m, cpuMinStepping: s });
const BANK_RANGE = (lo: number, hi: number): Cond => ({ bankLo: lo, bankHi: hi });

const AR_BITS = MCI_STATUS_OVER | MCI_UC_SAR | MCI_ADDR | MCACOD;

function buildTable(era: SeverityTableName): readonly SeverityRow[] {
  const current = era === 'current';
  const rows: (SeverityRow | null)[] = [
    MCESEV(MCE_NO_SEVERITY, 'Invalid', BITCLR(MCI_STATUS_VAL)),
    MCESEV(MCE_NO_SEVERITY, 'Not enabled', EXCP, BITCLR(MCI_STATUS_EN)),
    MCESEV(MCE_PANIC_SEVERITY, 'Processor context corrupt', BITSET(MCI_STATUS_PCC)),
    // When MCIP is not set something is very confused.
    MCESEV(MCE_PANIC_SEVERITY, 'MCIP not set in MCA handler', EXCP, MCGMASK(MCG_STATUS_MCIP, 0n)),
    // Neither restart nor error IP: no chance to recover.
    MCESEV(MCE_PANIC_SEVERITY, 'Neither restart nor error IP', EXCP, MCGMASK(MCG_STATUS_RIPV | MCG_STATUS_EIPV, 0n)),
    MCESEV(MCE_PANIC_SEVERITY, 'In kernel and no restart IP', EXCP, KERNEL, MCGMASK(MCG_STATUS_RIPV, 0n)),
    MCESEV(MCE_PANIC_SEVERITY, 'In kernel and no restart IP', EXCP, KERNEL_RECOV, MCGMASK(MCG_STATUS_RIPV, 0n)),
    MCESEV(MCE_KEEP_SEVERITY, 'Corrected error', NOSER, BITCLR(MCI_STATUS_UC)),
    // Known AO MCACODs, reported by #MC (S=1) or CMCI (S=0): S is not tested.
    MCESEV(MCE_AO_SEVERITY, 'Action optional: memory scrubbing error', SER, MASK(MCI_UC_AR | MCACOD_SCRUBMSK, MCI_STATUS_UC | MCACOD_SCRUB)),
    MCESEV(MCE_AO_SEVERITY, 'Action optional: last level cache writeback error', SER, MASK(MCI_UC_AR | MCACOD, MCI_STATUS_UC | MCACOD_L3WB)),
    // Skylake-SP/Cascade Lake patrol scrubber reporting UC errors through CMCI with UC=0.
    MCESEV(MCE_AO_SEVERITY, 'Uncorrected Patrol Scrub Error', SER, MASK(MCI_STATUS_UC | MCI_ADDR | 0xffffeff0n, MCI_ADDR | 0x001000c0n),
      MODEL_STEPPING(INTEL_FAM6_SKYLAKE_X, 4), BANK_RANGE(13, 18)),
    // OVER is ignored for UCNA.
    MCESEV(MCE_UCNA_SEVERITY, 'Uncorrected no action required', SER, MASK(MCI_UC_SAR, MCI_STATUS_UC)),
    MCESEV(MCE_PANIC_SEVERITY, 'Illegal combination (UCNA with AR=1)', SER, MASK(MCI_STATUS_OVER | MCI_UC_SAR, MCI_STATUS_UC | MCI_STATUS_AR)),
    // Spelled "Non signalled" until "x86: Fix various typos in comments, take #2" (163b099146b8,
    // v5.13): every table modelled here (5.15+) says "signaled".
    MCESEV(MCE_KEEP_SEVERITY, 'Non signaled machine check', SER, BITCLR(MCI_STATUS_S)),
    MCESEV(MCE_PANIC_SEVERITY, 'Action required with lost events', SER, BITSET(MCI_STATUS_OVER | MCI_UC_SAR)),
    // Known AR MCACODs (#ifdef CONFIG_MEMORY_FAILURE).
    MCESEV(MCE_KEEP_SEVERITY, 'Action required but unaffected thread is continuable', SER, MF,
      MASK(MCI_STATUS_OVER | MCI_UC_SAR | MCI_ADDR, MCI_UC_SAR | MCI_ADDR), MCGMASK(MCG_STATUS_RIPV | MCG_STATUS_EIPV, MCG_STATUS_RIPV)),
    MCESEV(MCE_AR_SEVERITY, 'Action required: data load in error recoverable area of kernel', SER, MF,
      MASK(AR_BITS, MCI_UC_SAR | MCI_ADDR | MCACOD_DATA), KERNEL_RECOV),
    MCESEV(MCE_AR_SEVERITY, 'Action required: data load error in a user process', SER, MF,
      MASK(AR_BITS, MCI_UC_SAR | MCI_ADDR | MCACOD_DATA), USER),
    MCESEV(MCE_AR_SEVERITY, 'Action required: instruction fetch error in a user process', SER, MF,
      MASK(AR_BITS, MCI_UC_SAR | MCI_ADDR | MCACOD_INSTR), USER),
    // "x86/mce: Implement recovery for errors in TDX/SEAM non-root mode" (v6.10).
    current ? MCESEV(MCE_AR_SEVERITY, 'Data load error in SEAM non-root mode', SER, MF,
      MASK(AR_BITS, MCI_UC_SAR | MCI_ADDR | MCACOD_DATA), MCGMASK(MCG_STATUS_SEAM_NR, MCG_STATUS_SEAM_NR), KERNEL) : null,
    current ? MCESEV(MCE_AR_SEVERITY, 'Instruction fetch error in SEAM non-root mode', SER, MF,
      MASK(AR_BITS, MCI_UC_SAR | MCI_ADDR | MCACOD_INSTR), MCGMASK(MCG_STATUS_SEAM_NR, MCG_STATUS_SEAM_NR), KERNEL) : null,
    MCESEV(MCE_PANIC_SEVERITY, 'Data load in unrecoverable area of kernel', SER, MF,
      MASK(AR_BITS, MCI_UC_SAR | MCI_ADDR | MCACOD_DATA), KERNEL),
    MCESEV(MCE_PANIC_SEVERITY, 'Instruction fetch error in kernel', SER, MF,
      MASK(AR_BITS, MCI_UC_SAR | MCI_ADDR | MCACOD_INSTR), KERNEL),
    MCESEV(MCE_PANIC_SEVERITY, 'Action required: unknown MCACOD', SER, MASK(MCI_STATUS_OVER | MCI_UC_SAR, MCI_UC_SAR)),
    MCESEV(MCE_SOME_SEVERITY, 'Action optional: unknown MCACOD', SER, MASK(MCI_STATUS_OVER | MCI_UC_SAR, MCI_UC_S)),
    MCESEV(MCE_SOME_SEVERITY, 'Action optional with lost events', SER, MASK(MCI_STATUS_OVER | MCI_UC_SAR, MCI_STATUS_OVER | MCI_UC_S)),
    MCESEV(MCE_PANIC_SEVERITY, 'Overflowed uncorrected', BITSET(MCI_STATUS_OVER | MCI_STATUS_UC)),
    // a51cbd0d86d3 "x86/mce: Use severity table to handle uncorrected errors in kernel" (v6.2);
    // before, mce_severity_intel() turned any row graded >= UC in IN_KERNEL context into PANIC.
    current ? MCESEV(MCE_PANIC_SEVERITY, 'Uncorrected in kernel', BITSET(MCI_STATUS_UC), KERNEL) : null,
    MCESEV(MCE_UC_SEVERITY, 'Uncorrected', BITSET(MCI_STATUS_UC)),
    // Always matches; keep at the end.
    MCESEV(MCE_SOME_SEVERITY, 'No match', BITSET(0n)),
  ];
  return Object.freeze(rows.filter((r): r is SeverityRow => r !== null));
}

export type SeverityTableName = 'current' | 'pre-6.2' | 'pre-5.18';
/** The current (≥ 6.10) severities[] table. */
export const SEVERITIES: readonly SeverityRow[] = buildTable('current');
/** 5.18-6.1 severities[] (no SEAM rows, no "Uncorrected in kernel"; UC+ in kernel → PANIC after matching). */
export const SEVERITIES_PRE_6_2: readonly SeverityRow[] = buildTable('pre-6.2');
/** ≈5.13-5.17 severities[] (no SEAM rows, no "Uncorrected in kernel"; graded with `tolerant`). */
export const SEVERITIES_PRE_5_18: readonly SeverityRow[] = buildTable('pre-5.18');
export const SEVERITY_TABLES: Readonly<Record<SeverityTableName, readonly SeverityRow[]>> = {
  current: SEVERITIES, 'pre-6.2': SEVERITIES_PRE_6_2, 'pre-5.18': SEVERITIES_PRE_5_18,
};

/** Row-hit recorder (the kernel's per-row `covered` flag, with counts). */
export class SeverityCoverage {
  private readonly hits: Record<SeverityTableName, number[]> = {
    current: new Array<number>(SEVERITIES.length).fill(0),
    'pre-6.2': new Array<number>(SEVERITIES_PRE_6_2.length).fill(0),
    'pre-5.18': new Array<number>(SEVERITIES_PRE_5_18.length).fill(0),
  };

  hit(table: SeverityTableName, rowIndex: number): void {
    const h = this.hits[table];
    if (rowIndex >= 0 && rowIndex < h.length) h[rowIndex] = (h[rowIndex] ?? 0) + 1;
  }

  counts(table: SeverityTableName): readonly number[] {
    return [...this.hits[table]];
  }

  /** Rows never hit, as indices. */
  uncovered(table: SeverityTableName): number[] {
    return this.hits[table].flatMap((n, i) => (n === 0 ? [i] : []));
  }

  /** debugfs mce/severities-coverage format: "<covered>\t<msg>" per row. */
  format(table: SeverityTableName): string {
    return SEVERITY_TABLES[table].map((r, i) => `${(this.hits[table][i] ?? 0) > 0 ? 1 : 0}\t${r.msg}\n`).join('');
  }

  reset(): void {
    for (const h of Object.values(this.hits)) h.fill(0);
  }
}

/** Process-wide recorder mceSeverity() updates unless given another one. */
export const severityCoverage = new SeverityCoverage();

export interface SeverityRecord {
  status: bigint;
  mcgStatus: bigint;
  bank: number;
}

export interface SeverityContext {
  /** mca_cfg.ser (MCG_SER_P). */
  ser: boolean;
  /** Graded inside the #MC handler (true) or by the poller/CMCI (false). */
  isExcp: boolean;
  /** error_context() result. */
  context: ErrorContextKind;
  /** Which kernel's table; default current. */
  table?: SeverityTableName;
  /** pre-5.18 only: /sys/.../tolerant, default 1. */
  tolerant?: number;
  /** boot_cpu_data x86_model / x86_stepping, for the patrol-scrub quirk row. */
  cpu?: { model: number; stepping: number };
  /** CONFIG_MEMORY_FAILURE; default true. */
  memoryFailure?: boolean;
  /** Where to record the row hit; default severityCoverage, null for none. */
  coverage?: SeverityCoverage | null;
}

export interface SeverityResult {
  sev: SeverityLevel;
  msg: string;
  /** Index of the matching row in the table used. */
  rowIndex: number;
  table: SeverityTableName;
}

function rowMatches(s: SeverityRow, m: SeverityRecord, c: SeverityContext): boolean {
  if ((m.status & s.mask) !== s.result) return false;
  if ((m.mcgStatus & s.mcgmask) !== s.mcgres) return false;
  if (s.ser === 'SER' && !c.ser) return false;
  if (s.ser === 'NOSER' && c.ser) return false;
  if (s.context && c.context !== s.context) return false;
  if (s.excp === 'EXCP' && !c.isExcp) return false;
  if (s.excp === 'NOEXCP' && c.isExcp) return false;
  if (s.cpuModel !== undefined && c.cpu?.model !== s.cpuModel) return false;
  if (s.cpuMinStepping !== undefined && (c.cpu?.stepping ?? 0) < s.cpuMinStepping) return false;
  if (s.bankLo !== undefined && (m.bank < s.bankLo || m.bank > (s.bankHi ?? s.bankLo))) return false;
  if (s.memoryFailure && c.memoryFailure === false) return false;
  return true;
}

/**
 * mce_severity_intel(): first matching row wins. With the pre-5.18 table a
 * row graded UC or worse in IN_KERNEL context becomes PANIC when tolerant < 1,
 * with the pre-6.2 table always (the message stays the row's).
 */
export function mceSeverity(m: SeverityRecord, c: SeverityContext): SeverityResult {
  const table = c.table ?? 'current';
  const rows = SEVERITY_TABLES[table];
  const rowIndex = rows.findIndex((s) => rowMatches(s, m, c));
  const row = rows[rowIndex];
  if (!row) throw new Error('severities table has no catch-all row'); // unreachable: last row always matches
  (c.coverage === undefined ? severityCoverage : c.coverage)?.hit(table, rowIndex);
  let sev = row.sev;
  if (table === 'pre-5.18' && sev >= MCE_UC_SEVERITY && c.context === 'IN_KERNEL' && (c.tolerant ?? 1) < 1) sev = MCE_PANIC_SEVERITY;
  if (table === 'pre-6.2' && sev >= MCE_UC_SEVERITY && c.context === 'IN_KERNEL') sev = MCE_PANIC_SEVERITY;
  return { sev, msg: row.msg, rowIndex, table };
}

/** Exception-table fixup type of the interrupted kernel IP (ex_get_fixup_type()). */
export type FixupType = 'none' | 'mce-safe' | 'uaccess' | 'copy';

export interface ErrorContextResult {
  context: ErrorContextKind;
  /** MCE_IN_KERNEL_RECOV: fixup_exception() may recover. */
  inKernelRecov: boolean;
  /** MCE_IN_KERNEL_COPYIN: kernel read user memory (copy_from_user); kill_me_never. */
  inKernelCopyin: boolean;
}

/**
 * error_context(): user mode if the saved CS has RPL 3; kernel code counts as
 * recoverable only with RIPV and EIPV both set and an MCE-safe fixup at the IP
 * (EX_TYPE_{DEFAULT,FAULT}_MCE_SAFE), or a user-access fixup whose instruction
 * reads user memory (is_copy_from_user()).
 */
export function errorContext(cs: number, mcgStatus: bigint, fixup: FixupType = 'none', copyFromUser = false): ErrorContextResult {
  const none = { inKernelRecov: false, inKernelCopyin: false };
  if ((cs & 3) === 3) return { context: 'IN_USER', ...none };
  const both = MCG_STATUS_RIPV | MCG_STATUS_EIPV;
  if ((mcgStatus & both) !== both) return { context: 'IN_KERNEL', ...none };
  if (fixup === 'mce-safe') return { context: 'IN_KERNEL_RECOV', inKernelRecov: true, inKernelCopyin: false };
  if ((fixup === 'uaccess' || fixup === 'copy') && copyFromUser) return { context: 'IN_KERNEL_RECOV', inKernelRecov: true, inKernelCopyin: true };
  return { context: 'IN_KERNEL', ...none };
}
