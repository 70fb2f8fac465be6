/**
 * The simulated machine: CPUs + physical memory + machine-check banks, and the
 * ways an error reaches software. The hardware does not grade severity or
 * panic: raise() puts records into banks and reports, as a plain
 * MachineCheckEvent, which CPUs take which delivery (#MC exception, CMCI,
 * poll) with which MCG_STATUS and frame (context, IP, CS). The kernel's
 * do_machine_check() / machine_check_poll() consume that event and read the
 * live banks through machine.mca (bank(), rdmsr(), wrmsr()).
 */
import { Cpus } from './cpu.js';
import type { CpuContext, RunningTask } from './cpu.js';
import { Mca } from './mca.js';
import type { McaConfig, PostResult } from './mca.js';
import {
  MCG_STATUS_EIPV, MCG_STATUS_LMCES, MCG_STATUS_MCIP, MCG_STATUS_RIPV, MCI_STATUS_AR, MCI_STATUS_PCC,
  MCI_STATUS_S, MCI_STATUS_UC, MCACOD_INSTR, MCACOD,
} from './msr.js';
import { PhysMem } from './phys-mem.js';
import type { RangeInput } from './phys-mem.js';

export interface CpuModel {
  vendor: 'intel';
  family: number;
  model: number;
  stepping: number;
  /** CPUID.1 EAX as printed in the PROCESSOR line of a record dump. */
  cpuid: number;
  microcode: number;
}

export interface MachineConfig {
  sockets: number;
  coresPerSocket: number;
  threadsPerCore: number;
  memoryBytes: bigint | number;
  nodes?: number | RangeInput[];
  holes?: RangeInput[];
  reserved?: RangeInput[];
  mca: McaConfig;
  cpuModel?: CpuModel;
}

export type Delivery = 'exception' | 'poll' | 'cmci';
/**
 * How an exception reaches CPUs:
 * - broadcast: every online CPU that responds takes the #MC (legacy #MC);
 * - local: LMCE, only the CPUs holding a record, MCG_STATUS.LMCES set (falls
 *   back to broadcast when the CPU lacks MCG_LMCE_P or the OS did not enable it);
 * - targeted: only CPUs holding a record, no LMCES — the kernel believes it is
 *   a broadcast and waits for the others (mce-inject NOBROADCAST, or a caller
 *   that synthesizes the other CPUs' records itself).
 */
export type Scope = 'broadcast' | 'local' | 'targeted';
/** hardware: SDM overwrite rules, counts and default MCG_STATUS; raw: fake MSR values as given (mce-inject). */
export type WriteMode = 'hardware' | 'raw';

export interface ErrorRecord {
  cpu: number;
  bank: number;
  status: bigint;
  addr?: bigint;
  misc?: bigint;
  /** MCG_STATUS the CPU shows; hardware default is derived from the error, raw default is 0. */
  mcgStatus?: bigint;
  /** Frame overrides; default is what the CPU is running. */
  ip?: bigint;
  cs?: number;
  context?: CpuContext;
  /** Per-record delivery; default RaiseOptions.delivery. */
  delivery?: Delivery;
}

export interface RaiseOptions {
  delivery?: Delivery;
  scope?: Scope;
  write?: WriteMode;
}

export interface CpuCheck {
  cpu: number;
  delivery: Delivery;
  /** A record was placed on this CPU in this event (false: a broadcast bystander). */
  hasRecord: boolean;
  /** MCG_STATUS at delivery (what do_machine_check reads first). */
  mcgStatus: bigint;
  /** Banks with VAL set at delivery (shared banks included). */
  validBanks: number[];
  context: CpuContext;
  task: RunningTask | null;
  ip: bigint;
  cs: number;
  /** MCIP was already set: real hardware shuts the CPU down (no handler runs). */
  shutdown: boolean;
}

export interface MachineCheckEvent {
  seq: number;
  scope: Scope;
  write: WriteMode;
  /** CPUs that had records, in order of first appearance. */
  origins: number[];
  /** CPUs that take the event, by CPU id. */
  cpus: CpuCheck[];
  /** Online CPUs a broadcast rendezvous will wait for in vain (not responding / not targeted). */
  missing: number[];
  /** Result of each hardware post, in record order (empty in raw mode). */
  posts: { cpu: number; bank: number; result: PostResult }[];
}

export const DEFAULT_CPU_MODEL: CpuModel = {
  vendor: 'intel', family: 6, model: 0x55, stepping: 4, cpuid: 0x50654, microcode: 0x2007006,
};

export type ProfileName = 'intel-ser' | 'intel-ser-nocmci' | 'intel-ser-nolmce' | 'intel-noser' | 'intel-noser-nocmci';
export const PROFILE_NAMES: readonly ProfileName[] = ['intel-ser', 'intel-ser-nocmci', 'intel-ser-nolmce', 'intel-noser', 'intel-noser-nocmci'];

const GiB = 1n << 30n;

/**
 * intel-ser: a Skylake-SP-like 2-socket part (20 banks, banks 13-18 are the
 * socket's memory controllers, SER + CMCI + LMCE + TES). intel-noser: a
 * pre-SER Nehalem-like part (9 banks, 7-8 shared memory controller, CMCI, no
 * LMCE). Both have 4 CPUs so the mce-test data (CPU 0..3) validates.
 */
export function profileConfig(name: ProfileName, overrides: Partial<MachineConfig> = {}): MachineConfig {
  const ser = name.startsWith('intel-ser');
  const base: MachineConfig = {
    sockets: 2, coresPerSocket: 1, threadsPerCore: 2,
    memoryBytes: 8n * GiB,
    nodes: 2,
    holes: [{ start: 3n * GiB, end: 4n * GiB, name: 'pci-hole' }],
    reserved: [{ start: 0n, end: 1n << 20n, name: 'low-1MiB' }],
    mca: ser
      ? { banks: 20, ser: true, cmci: name !== 'intel-ser-nocmci', lmce: name !== 'intel-ser-nolmce', tes: true, sharedBanks: [13, 14, 15, 16, 17, 18] }
      : { banks: 9, ser: false, cmci: name !== 'intel-noser-nocmci', lmce: false, tes: false, sharedBanks: [7, 8] },
    cpuModel: ser ? DEFAULT_CPU_MODEL : { vendor: 'intel', family: 6, model: 0x2e, stepping: 6, cpuid: 0x206e6, microcode: 0xd },
  };
  return { ...base, ...overrides, mca: { ...base.mca, ...(overrides.mca ?? {}) } };
}

export class Machine {
  readonly config: Readonly<MachineConfig>;
  readonly cpus: Cpus;
  readonly mem: PhysMem;
  readonly mca: Mca;
  readonly cpuModel: CpuModel;
  private readonly unresponsive = new Set<number>();
  private held = new Map<number, ErrorRecord>();
  private seq = 0;

  constructor(cfg: MachineConfig) {
    this.config = cfg;
    this.cpus = new Cpus({ sockets: cfg.sockets, coresPerSocket: cfg.coresPerSocket, threadsPerCore: cfg.threadsPerCore });
    this.mem = new PhysMem({ memoryBytes: cfg.memoryBytes, nodes: cfg.nodes ?? 1, holes: cfg.holes ?? [], reserved: cfg.reserved ?? [] });
    this.mca = new Mca(cfg.mca, this.cpus);
    this.cpuModel = cfg.cpuModel ?? DEFAULT_CPU_MODEL;
  }

  static fromProfile(name: ProfileName, overrides: Partial<MachineConfig> = {}): Machine {
    return new Machine(profileConfig(name, overrides));
  }

  /** A CPU that will not answer a broadcast rendezvous (stuck with #MC/NMI blocked). */
  setResponding(cpu: number, responding: boolean): void {
    this.cpus.get(cpu);
    if (responding) this.unresponsive.delete(cpu);
    else this.unresponsive.add(cpu);
  }

  isResponding(cpu: number): boolean {
    return !this.unresponsive.has(cpu);
  }

  /** Keep a record for a later raise() (one per CPU; a later hold replaces it), like mce-inject HOLD. */
  hold(rec: ErrorRecord): void {
    this.checkRecord(rec);
    this.held.set(rec.cpu, rec);
  }

  heldRecords(): ErrorRecord[] {
    return [...this.held.values()];
  }

  /**
   * Put the held records plus `records` into banks simultaneously and deliver
   * them. Returns what each CPU sees; does not run any handler.
   */
  raise(records: ErrorRecord[], opts: RaiseOptions = {}): MachineCheckEvent {
    const all = [...this.held.values(), ...records];
    this.held = new Map();
    for (const r of all) this.checkRecord(r);
    const write = opts.write ?? 'hardware';
    const defDelivery = opts.delivery ?? 'exception';
    let scope = opts.scope ?? 'broadcast';
    const deliveryOf = (r: ErrorRecord): Delivery => {
      const d = r.delivery ?? defDelivery;
      return d === 'cmci' && !this.mca.config.cmci ? 'poll' : d;
    };
    const origins = [...new Set(all.map((r) => r.cpu))];
    const byCpu = new Map<number, ErrorRecord[]>();
    for (const r of all) byCpu.set(r.cpu, [...(byCpu.get(r.cpu) ?? []), r]);
    const anyExc = all.some((r) => deliveryOf(r) === 'exception');
    if (scope === 'local' && anyExc && !origins.every((c) => this.mca.lmceEnabled(c))) scope = 'broadcast';

    // 1. Errors land in the banks.
    const posts: MachineCheckEvent['posts'] = [];
    for (const r of all) {
      const regs = { status: r.status, addr: r.addr ?? 0n, misc: r.misc ?? 0n };
      if (write === 'raw') this.mca.write(r.cpu, r.bank, regs);
      else posts.push({ cpu: r.cpu, bank: r.bank, result: this.mca.post(r.cpu, r.bank, regs) });
    }

    // 2. Who takes what.
    const entering = new Map<number, Delivery>();
    for (const r of all) {
      const d = deliveryOf(r);
      const prev = entering.get(r.cpu);
      if (prev !== 'exception') entering.set(r.cpu, d);
    }
    const missing: number[] = [];
    if (anyExc && scope !== 'local') {
      for (const c of this.cpus.onlineIds()) {
        const responds = this.isResponding(c);
        if (scope === 'broadcast' && responds) entering.set(c, 'exception');
        else if (entering.get(c) !== 'exception' || !responds) missing.push(c);
      }
    }
    for (const c of missing) if (entering.get(c) === 'exception') entering.delete(c);

    // 3. MCG_STATUS and frame per entering CPU.
    const cpus: CpuCheck[] = [];
    for (const cpu of [...entering.keys()].sort((a, b) => a - b)) {
      const delivery = entering.get(cpu)!;
      const recs = byCpu.get(cpu) ?? [];
      const st = this.cpus.get(cpu);
      let shutdown = false;
      if (delivery === 'exception') {
        const prev = this.mca.mcgStatus(cpu);
        shutdown = (prev & MCG_STATUS_MCIP) !== 0n;
        const explicit = recs.find((r) => r.mcgStatus !== undefined)?.mcgStatus;
        let mcg: bigint;
        if (explicit !== undefined) mcg = explicit;
        else if (write === 'raw' && recs.length > 0) mcg = 0n;
        else mcg = hardwareMcgStatus(recs.filter((r) => deliveryOf(r) === 'exception').map((r) => r.status), this.mca.config.ser);
        if (scope === 'local' && explicit === undefined && write === 'hardware') mcg |= MCG_STATUS_LMCES;
        if (!shutdown) this.mca.setMcgStatus(cpu, mcg);
      } else if (write === 'raw') {
        const explicit = recs.find((r) => r.mcgStatus !== undefined)?.mcgStatus;
        if (explicit !== undefined) this.mca.setMcgStatus(cpu, explicit);
      }
      const context = recs.find((r) => r.context !== undefined)?.context ?? st.context;
      const cs = recs.find((r) => r.cs !== undefined)?.cs ?? (context === 'user' ? 0x33 : 0x10);
      cpus.push({
        cpu, delivery, hasRecord: recs.length > 0,
        mcgStatus: this.mca.mcgStatus(cpu),
        validBanks: this.mca.validBanks(cpu),
        context, task: st.task,
        ip: recs.find((r) => r.ip !== undefined)?.ip ?? st.ip,
        cs, shutdown,
      });
    }
    return { seq: ++this.seq, scope: anyExc ? scope : 'targeted', write, origins, cpus, missing, posts };
  }

  private checkRecord(r: ErrorRecord): void {
    if (!this.cpus.exists(r.cpu)) throw new RangeError(`cpu ${r.cpu} does not exist`);
    if (!this.cpus.isOnline(r.cpu)) throw new Error(`cpu ${r.cpu} not online`);
    if (!Number.isInteger(r.bank) || r.bank < 0 || r.bank >= this.mca.bankCount) {
      throw new RangeError(`bank ${r.bank} out of range (${this.mca.bankCount} banks)`);
    }
  }
}

/**
 * MCG_STATUS the hardware presents for an #MC (SDM tables "MCG_STATUS flag
 * indication for SRAO/SRAR errors"): a CPU with no error of its own (or only
 * SRAO) can restart (RIPV=1, EIPV=0); SRAR data load reports RIPV=EIPV=1,
 * SRAR instruction fetch RIPV=0/EIPV=1; PCC leaves neither IP valid; a non-SER
 * uncorrected error keeps both valid.
 */
export function hardwareMcgStatus(statuses: bigint[], ser: boolean): bigint {
  let ripv = true;
  let eipv = false;
  for (const s of statuses) {
    if ((s & MCI_STATUS_UC) === 0n) continue;
    if ((s & MCI_STATUS_PCC) !== 0n) return MCG_STATUS_MCIP;
    if (!ser) {
      eipv = true;
    } else if ((s & (MCI_STATUS_S | MCI_STATUS_AR)) === (MCI_STATUS_S | MCI_STATUS_AR)) {
      eipv = true;
      if ((s & MCACOD) === MCACOD_INSTR) ripv = false;
    }
  }
  return MCG_STATUS_MCIP | (ripv ? MCG_STATUS_RIPV : 0n) | (eipv ? MCG_STATUS_EIPV : 0n);
}
