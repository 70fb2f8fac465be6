/**
 * One machine-check record of mce-inject's input language: the `struct mce`
 * fields mce-inject fills (mce.h) plus its per-record injection flags
 * (`enum mceflags` and `inject_flags`' MCJ_CTX_* / MCJ_EXCEPTION). Every
 * field not given in the input is 0 / false, as mce-inject's init_mce()
 * memset does.
 */

/** MCJ_CTX_RANDOM / MCJ_CTX_PROCESS (IN_PROC) / MCJ_CTX_IRQ (IN_IRQ). */
export type InjectContext = 'random' | 'process' | 'irq';
/** MCE_RAISE_MODE unset ('default': UC → exception, else poll), POLL, EXCP. */
export type RaiseMode = 'default' | 'poll' | 'excp';

export interface MceRecord {
  cpu: number;
  bank: number;
  status: bigint;
  mcgStatus: bigint;
  addr: bigint;
  misc: bigint;
  ip: bigint;
  cs: number;
  tsc: bigint;
  time: bigint;
  socketId: number;
  apicId: number;
  mcgCap: bigint;
  cpuVendor: number;
  cpuid: number;
  context: InjectContext;
  raise: RaiseMode;
  hold: boolean;
  noBroadcast: boolean;
  irqBroadcast: boolean;
  nmiBroadcast: boolean;
}

export function emptyRecord(): MceRecord {
  return {
    cpu: 0, bank: 0, status: 0n, mcgStatus: 0n, addr: 0n, misc: 0n, ip: 0n, cs: 0, tsc: 0n, time: 0n,
    socketId: 0, apicId: 0, mcgCap: 0n, cpuVendor: 0, cpuid: 0,
    context: 'random', raise: 'default', hold: false, noBroadcast: false, irqBroadcast: false, nmiBroadcast: false,
  };
}

/** Width in bits of the `struct mce` field each narrow record field lands in. */
export const FIELD_BITS = { cpu: 32, bank: 8, cs: 8, cpuVendor: 8, cpuid: 32, socketId: 32, apicId: 32 } as const;

const MCI_STATUS_UC = 1n << 61n;

/**
 * Whether mce-inject raises the record as a #MC exception (inject_mce()):
 * EXCP / POLL decide; otherwise records with UC set are exceptions.
 */
export function isException(r: MceRecord): boolean {
  if (r.raise === 'excp') return true;
  if (r.raise === 'poll') return false;
  return (r.status & MCI_STATUS_UC) !== 0n;
}

/** One write to /dev/mcelog batch: the held records plus the record that triggered them. */
export interface Injection {
  /** Held records (one per CPU, a later HOLD on the same CPU replaced an earlier one) then the trigger. */
  records: MceRecord[];
  trigger: MceRecord;
}

/**
 * Group records the way mce-inject submits them: a HOLD record is remembered
 * for its CPU; the next non-HOLD record is injected together with everything
 * held. Held records with no later trigger are never injected (returned in
 * `leftover`).
 */
export function groupInjections(records: readonly MceRecord[]): { injections: Injection[]; leftover: MceRecord[] } {
  const injections: Injection[] = [];
  let held = new Map<number, MceRecord>();
  for (const r of records) {
    if (r.hold) {
      held.set(r.cpu, r);
      continue;
    }
    injections.push({ records: [...[...held.values()].filter((h) => h.cpu !== r.cpu), r], trigger: r });
    held = new Map();
  }
  return { injections, leftover: [...held.values()] };
}
