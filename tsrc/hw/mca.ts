/**
 * Machine-check banks (Intel SDM vol. 3B §15.3): per-CPU banks, and banks
 * shared by every CPU of a socket (the uncore: memory controllers, whose
 * errors every core of the package sees). Each bank holds MCi_CTL, MCi_STATUS,
 * MCi_ADDR, MCi_MISC and MCi_CTL2 (CMCI threshold/enable). Global registers
 * MCG_CAP / MCG_STATUS / MCG_EXT_CTL are per logical CPU.
 *
 * post() is what the hardware does when it detects an error: it applies the
 * SDM overwrite rules when the bank already holds a valid error, keeps the
 * corrected-error count, and says which signal (#MC / CMCI / none) the event
 * raises. write() is the mce-inject / MCE_INJECT path: the kernel's fake MSR
 * values replace the bank verbatim.
 */
import type { Cpus } from './cpu.js';
import {
  MCG_CTL_P, MCI_CTL2_CMCI_EN, MCI_CTL2_CMCI_THRESHOLD_MASK, MCI_STATUS_AR, MCI_STATUS_EN, MCI_STATUS_OVER,
  MCI_STATUS_PCC, MCI_STATUS_S, MCI_STATUS_TES_MASK, MCI_STATUS_TES_YELLOW, MCI_STATUS_UC, MCI_STATUS_VAL,
  MSR_IA32_MCG_CAP, MSR_IA32_MCG_STATUS, U64_MASK, classifyStatus, encodeMcgCap, statusCec, withCec,
} from './msr.js';
import type { ErrorClass } from './msr.js';

export const MSR_IA32_MCG_CTL = 0x17b;
/** IA32_MCG_EXT_CTL: bit 0 LMCE_EN (the OS opts in to local machine checks). */
export const MSR_IA32_MCG_EXT_CTL = 0x4d0;
export const MCG_EXT_CTL_LMCE_EN = 1n;

export interface McaConfig {
  /** Bank count (MCG_CAP[7:0]). */
  banks: number;
  /** MCG_SER_P: software error recovery (S/AR bits meaningful). */
  ser: boolean;
  /** MCG_CMCI_P. */
  cmci: boolean;
  /** MCG_LMCE_P. */
  lmce: boolean;
  /** MCG_TES_P: threshold-based (green/yellow) status. */
  tes: boolean;
  /** Banks shared by all CPUs of a socket (e.g. memory-controller banks). */
  sharedBanks?: number[];
}

export class McaBank {
  /** MCi_CTL: which error types are reported; Linux writes all ones at boot. */
  ctl = U64_MASK;
  status = 0n;
  addr = 0n;
  misc = 0n;
  /** MCi_CTL2: CMCI threshold (14:0) and CMCI_EN (30). */
  ctl2 = 0n;
  constructor(readonly index: number, readonly shared: boolean) {}

  get valid(): boolean {
    return (this.status & MCI_STATUS_VAL) !== 0n;
  }

  /** What software does after logging: MCi_STATUS = 0 (mce_wrmsrl in mce_clear_state). */
  clear(): void {
    this.status = 0n;
    this.addr = 0n;
    this.misc = 0n;
  }
}

export interface ErrorRegs {
  status: bigint;
  addr?: bigint;
  misc?: bigint;
}

export type Signal = 'mce' | 'cmci' | 'none';

export interface PostResult {
  /** 'logged': bank was empty; 'second': new error overwrote; 'first': old error kept. */
  kept: 'logged' | 'second' | 'first';
  /** OVER is now set in the bank. */
  overflow: boolean;
  /** Signal the detected error raises by itself (the machine decides how to deliver it). */
  signal: Signal;
  /** Class of the newly detected error. */
  errorClass: ErrorClass;
}

/** Precedence of the SDM overwrite rules: a higher rank is never overwritten by a lower one. */
const RANK: Record<ErrorClass, number> = { none: -1, disabled: 0, ce: 1, ucna: 2, srao: 2, srar: 2, uc: 3 };

const tesRank = (s: bigint): number => {
  const t = (s & MCI_STATUS_TES_MASK) >> 53n;
  return t === 2n ? 2 : t === 1n ? 1 : 0;
};

export class Mca {
  readonly config: Readonly<McaConfig>;
  readonly mcgCap: bigint;
  private readonly perCpu: McaBank[][];
  private readonly perSocket: Map<number, McaBank>[];
  private readonly mcgStatusRegs: bigint[];
  private readonly mcgExtCtl: bigint[];
  private readonly mcgCtl: bigint[];
  private readonly sharedSet: ReadonlySet<number>;

  constructor(cfg: McaConfig, private readonly cpus: Cpus) {
    if (!Number.isInteger(cfg.banks) || cfg.banks < 1 || cfg.banks > 0xff) throw new RangeError(`banks must be 1..255`);
    for (const b of cfg.sharedBanks ?? []) {
      if (!Number.isInteger(b) || b < 0 || b >= cfg.banks) throw new RangeError(`shared bank ${b} out of range`);
    }
    this.config = { ...cfg, sharedBanks: [...(cfg.sharedBanks ?? [])] };
    this.sharedSet = new Set(cfg.sharedBanks ?? []);
    this.mcgCap = encodeMcgCap({ banks: cfg.banks, ctlP: true, cmci: cfg.cmci, tes: cfg.tes, ser: cfg.ser, lmce: cfg.lmce });
    const n = cpus.count;
    const ctl2 = cfg.cmci ? MCI_CTL2_CMCI_EN | 1n : 0n;
    const mk = (i: number, shared: boolean): McaBank => {
      const b = new McaBank(i, shared);
      b.ctl2 = ctl2;
      return b;
    };
    this.perSocket = [];
    for (let s = 0; s < cpus.topology.sockets; s++) {
      this.perSocket.push(new Map([...this.sharedSet].map((i) => [i, mk(i, true)])));
    }
    this.perCpu = [];
    for (let c = 0; c < n; c++) {
      const row: McaBank[] = [];
      const socket = this.perSocket[cpus.socketOf(c)]!;
      for (let i = 0; i < cfg.banks; i++) row.push(socket.get(i) ?? mk(i, false));
      this.perCpu.push(row);
    }
    this.mcgStatusRegs = new Array<bigint>(n).fill(0n);
    this.mcgExtCtl = new Array<bigint>(n).fill(cfg.lmce ? MCG_EXT_CTL_LMCE_EN : 0n);
    this.mcgCtl = new Array<bigint>(n).fill(U64_MASK);
  }

  get bankCount(): number {
    return this.config.banks;
  }

  isShared(bank: number): boolean {
    return this.sharedSet.has(bank);
  }

  /** The bank object a CPU sees at index `bank` (shared banks are the same object socket-wide). */
  bank(cpu: number, bank: number): McaBank {
    const row = this.perCpu[cpu];
    if (!row) throw new RangeError(`cpu ${cpu} does not exist`);
    const b = row[bank];
    if (!b) throw new RangeError(`bank ${bank} out of range (cpu has ${this.config.banks} banks)`);
    return b;
  }

  /** Indices of banks with MCi_STATUS.VAL set, as machine_check_poll / mce_no_way_out scan them. */
  validBanks(cpu: number): number[] {
    return this.perCpu[cpu]?.filter((b) => b.valid).map((b) => b.index) ?? [];
  }

  mcgStatus(cpu: number): bigint {
    this.bank(cpu, 0);
    return this.mcgStatusRegs[cpu]!;
  }

  setMcgStatus(cpu: number, v: bigint): void {
    this.bank(cpu, 0);
    this.mcgStatusRegs[cpu] = v & U64_MASK;
  }

  /** LMCE is delivered only if supported and the OS set IA32_MCG_EXT_CTL.LMCE_EN. */
  lmceEnabled(cpu: number): boolean {
    return this.config.lmce && ((this.mcgExtCtl[cpu] ?? 0n) & MCG_EXT_CTL_LMCE_EN) !== 0n;
  }

  /** Raw fake-MSR write (mce-inject): the registers take exactly these values. */
  write(cpu: number, bank: number, regs: ErrorRegs): void {
    const b = this.bank(cpu, bank);
    b.status = regs.status & U64_MASK;
    b.addr = (regs.addr ?? 0n) & U64_MASK;
    b.misc = (regs.misc ?? 0n) & U64_MASK;
  }

  /**
   * Hardware error detection into a bank. Rules (SDM "Overwrite Rules for
   * Machine Check Overflow", Tables 15-2 and 15-7):
   *  - enabled errors overwrite disabled ones; UC overwrites CE; a CE never
   *    overwrites a UC; UCR (UC, PCC=0) errors never overwrite UCR errors;
   *    PCC=1 errors overwrite UCR errors and are never overwritten by them
   *    (the result has PCC=1 either way);
   *  - CE over CE: the second wins, except a yellow first one is kept over a
   *    green/no-colour second (the colour stays yellow);
   *  - S and AR are sticky: the result ORs them over both errors;
   *  - whichever wins, all of ADDR/MISC (guarded by ADDRV/MISCV) come from it,
   *    and OVER is set;
   *  - corrected errors increment the 15-bit count in STATUS[52:38].
   * An error type disabled in MCi_CTL (ctl == 0 here) is logged with EN=0 and
   * signals nothing.
   */
  post(cpu: number, bank: number, err: ErrorRegs): PostResult {
    const b = this.bank(cpu, bank);
    const ser = this.config.ser;
    let incoming = (err.status | MCI_STATUS_VAL) & U64_MASK;
    if (b.ctl === 0n) incoming &= ~MCI_STATUS_EN;
    const cls = classifyStatus(incoming, ser);
    const isCe = cls === 'ce';
    const oldCount = b.valid ? statusCec(b.status) : 0;
    const count = isCe ? oldCount + 1 : oldCount;
    let kept: PostResult['kept'];
    if (!b.valid) {
      kept = 'logged';
      b.status = incoming;
      b.addr = err.addr ?? 0n;
      b.misc = err.misc ?? 0n;
    } else {
      const old = b.status;
      const oldCls = classifyStatus(old, ser);
      const rOld = RANK[oldCls];
      const rNew = RANK[cls];
      let second: boolean;
      if (rNew !== rOld) second = rNew > rOld;
      else if (rNew >= 2) second = false; // UC/UCR are never written over by their own kind
      else second = !(tesRank(old) === 2 && tesRank(incoming) < 2);
      let status = second ? incoming : old;
      if ((old & MCI_STATUS_UC) !== 0n && (incoming & MCI_STATUS_UC) !== 0n) {
        status |= (old | incoming) & (MCI_STATUS_S | MCI_STATUS_AR | MCI_STATUS_PCC);
      }
      // The colour is the worse of the two (a yellow is never downgraded).
      if (Math.max(tesRank(old), tesRank(incoming)) === 2) status = (status & ~MCI_STATUS_TES_MASK) | MCI_STATUS_TES_YELLOW;
      if (second) {
        b.addr = err.addr ?? 0n;
        b.misc = err.misc ?? 0n;
      }
      b.status = status | MCI_STATUS_OVER;
      kept = second ? 'second' : 'first';
    }
    // STATUS[52:38] is the corrected-error count only on CMCI-capable parts.
    if (this.config.cmci) b.status = withCec(b.status, count);
    return { kept, overflow: (b.status & MCI_STATUS_OVER) !== 0n, signal: this.signalFor(b, incoming, oldCount, count), errorClass: cls };
  }

  /**
   * Which interrupt an error raises: enabled UC errors raise #MC (with SER only
   * if S=1 — UCNA is signalled through CMCI); corrected errors raise CMCI when
   * the count crosses the bank's CMCI threshold.
   */
  private signalFor(b: McaBank, st: bigint, before: number, after: number): Signal {
    if ((st & MCI_STATUS_EN) === 0n) return 'none';
    const cmciOn = this.config.cmci && (b.ctl2 & MCI_CTL2_CMCI_EN) !== 0n;
    if ((st & MCI_STATUS_UC) !== 0n) {
      if (!this.config.ser || (st & MCI_STATUS_S) !== 0n || (st & MCI_STATUS_PCC) !== 0n) return 'mce';
      return cmciOn ? 'cmci' : 'none';
    }
    if (!cmciOn) return 'none';
    const thr = Math.max(1, Number(b.ctl2 & MCI_CTL2_CMCI_THRESHOLD_MASK));
    return before < thr && after >= thr ? 'cmci' : 'none';
  }

  /** rdmsr: the architectural MSR addresses the kernel uses (mce_rdmsrl). */
  rdmsr(cpu: number, msr: number): bigint {
    switch (msr) {
      case MSR_IA32_MCG_CAP:
        return this.mcgCap;
      case MSR_IA32_MCG_STATUS:
        return this.mcgStatus(cpu);
      case MSR_IA32_MCG_CTL:
        return this.mcgCtl[cpu] ?? 0n;
      case MSR_IA32_MCG_EXT_CTL:
        return this.mcgExtCtl[cpu] ?? 0n;
    }
    const { b, reg } = this.decodeBankMsr(cpu, msr);
    return b[reg];
  }

  /** wrmsr; writes to MCG_CAP or unknown MSRs fault like #GP. */
  wrmsr(cpu: number, msr: number, v: bigint): void {
    const val = v & U64_MASK;
    switch (msr) {
      case MSR_IA32_MCG_STATUS:
        this.setMcgStatus(cpu, val);
        return;
      case MSR_IA32_MCG_CTL:
        if ((this.mcgCap & MCG_CTL_P) === 0n) break;
        this.bank(cpu, 0);
        this.mcgCtl[cpu] = val;
        return;
      case MSR_IA32_MCG_EXT_CTL:
        if (!this.config.lmce) break;
        this.bank(cpu, 0);
        this.mcgExtCtl[cpu] = val & MCG_EXT_CTL_LMCE_EN;
        return;
      case MSR_IA32_MCG_CAP:
        break;
      default: {
        const { b, reg } = this.decodeBankMsr(cpu, msr);
        b[reg] = val;
        return;
      }
    }
    throw new Error(`#GP: wrmsr 0x${msr.toString(16)} on cpu ${cpu}`);
  }

  private decodeBankMsr(cpu: number, msr: number): { b: McaBank; reg: 'ctl' | 'status' | 'addr' | 'misc' | 'ctl2' } {
    const n = this.config.banks;
    if (msr >= 0x400 && msr < 0x400 + 4 * n) {
      const regs = ['ctl', 'status', 'addr', 'misc'] as const;
      return { b: this.bank(cpu, (msr - 0x400) >> 2), reg: regs[(msr - 0x400) & 3]! };
    }
    if (msr >= 0x280 && msr < 0x280 + n) return { b: this.bank(cpu, msr - 0x280), reg: 'ctl2' };
    throw new Error(`#GP: MSR 0x${msr.toString(16)} is reserved or unimplemented on this CPU`);
  }
}
