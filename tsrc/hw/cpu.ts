/**
 * CPU topology and per-CPU execution state of the simulated machine.
 *
 * Logical CPU numbering is socket-major: cpu = (socket * coresPerSocket + core)
 * * threadsPerCore + thread, so SMT siblings are adjacent. The APIC ID is built
 * the way Intel packs x2APIC IDs (thread bits, then core bits, then package),
 * which is what the kernel prints as `APIC` in a record dump.
 *
 * What a CPU is executing decides the #MC frame the kernel sees: the saved CS
 * (user 0x33 vs kernel 0x10, error_context()'s `(cs & 3) == 3`), the IP, and
 * whether that IP sits in a machine-check-safe copy (IN_KERNEL_RECOV).
 */

/**
 * - user: ring 3 code of `task`.
 * - kernel: ordinary kernel code (process context of `task`, or a kernel thread).
 * - kernel-recov: kernel code inside a machine-check-safe copy (copy_mc_*,
 *   copy_from_user): the exception table has an MCE-safe fixup for the IP.
 * - irq: kernel code in interrupt context.
 * - idle: the idle task (kernel context, no user mm).
 */
export type CpuContext = 'user' | 'kernel' | 'kernel-recov' | 'irq' | 'idle';

export interface RunningTask {
  pid: number;
  comm: string;
}

/** Flat kernel/user code segments of x86-64 Linux (__KERNEL_CS, __USER_CS). */
export const KERNEL_CS = 0x10;
export const USER_CS = 0x33;

export interface CpuTopology {
  sockets: number;
  coresPerSocket: number;
  threadsPerCore: number;
}

export interface CpuState {
  readonly id: number;
  readonly socket: number;
  readonly core: number;
  readonly thread: number;
  readonly apicId: number;
  online: boolean;
  /** Task whose context the CPU is in (null: idle/kernel thread with no user task). */
  task: RunningTask | null;
  context: CpuContext;
  /** Instruction pointer the #MC frame would carry. */
  ip: bigint;
}

const bitsFor = (n: number): number => (n <= 1 ? 0 : Math.ceil(Math.log2(n)));

export class Cpus {
  readonly topology: Readonly<CpuTopology>;
  private readonly cpus: CpuState[];

  constructor(t: CpuTopology) {
    for (const [k, v] of Object.entries(t)) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer, got ${String(v)}`);
    }
    this.topology = { ...t };
    const threadBits = bitsFor(t.threadsPerCore);
    const coreBits = bitsFor(t.coresPerSocket);
    this.cpus = [];
    for (let s = 0; s < t.sockets; s++) {
      for (let c = 0; c < t.coresPerSocket; c++) {
        for (let th = 0; th < t.threadsPerCore; th++) {
          this.cpus.push({
            id: this.cpus.length,
            socket: s,
            core: c,
            thread: th,
            apicId: (((s << coreBits) | c) << threadBits) | th,
            online: true,
            task: null,
            context: 'idle',
            ip: 0n,
          });
        }
      }
    }
  }

  /** Number of possible CPUs (nr_cpu_ids). */
  get count(): number {
    return this.cpus.length;
  }

  exists(cpu: number): boolean {
    return Number.isInteger(cpu) && cpu >= 0 && cpu < this.cpus.length;
  }

  get(cpu: number): CpuState {
    const c = this.cpus[cpu];
    if (!c) throw new RangeError(`cpu ${cpu} does not exist (${this.cpus.length} CPUs)`);
    return c;
  }

  all(): readonly CpuState[] {
    return this.cpus;
  }

  isOnline(cpu: number): boolean {
    return this.exists(cpu) && this.get(cpu).online;
  }

  onlineIds(): number[] {
    return this.cpus.filter((c) => c.online).map((c) => c.id);
  }

  /** Hot-(un)plug. The last online CPU cannot go offline (the kernel refuses too). */
  setOnline(cpu: number, online: boolean): void {
    const c = this.get(cpu);
    if (!online && c.online && this.onlineIds().length === 1) throw new Error(`cannot offline cpu ${cpu}: last online CPU`);
    c.online = online;
    if (!online) {
      c.task = null;
      c.context = 'idle';
      c.ip = 0n;
    }
  }

  /** Say what a CPU is executing; `ip` defaults to a plausible address for the context. */
  run(cpu: number, context: CpuContext, task: RunningTask | null = null, ip?: bigint): void {
    const c = this.get(cpu);
    if (!c.online) throw new Error(`cpu ${cpu} is offline`);
    if (context === 'user' && !task) throw new Error(`user context on cpu ${cpu} needs a task`);
    c.context = context;
    c.task = task;
    c.ip = ip ?? (context === 'user' ? 0x401000n : 0xffffffff81000000n);
  }

  /** CS the #MC frame would hold for the CPU's context. */
  csOf(cpu: number): number {
    return this.get(cpu).context === 'user' ? USER_CS : KERNEL_CS;
  }

  socketOf(cpu: number): number {
    return this.get(cpu).socket;
  }

  /** SMT siblings of a CPU (itself included), thread_siblings in sysfs. */
  siblings(cpu: number): number[] {
    const c = this.get(cpu);
    return this.cpus.filter((o) => o.socket === c.socket && o.core === c.core).map((o) => o.id);
  }

  cpusOfSocket(socket: number): number[] {
    return this.cpus.filter((c) => c.socket === socket).map((c) => c.id);
  }
}
