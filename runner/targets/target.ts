// The system-under-test interface (after LTP kirk's SUT): the runner hands a loaded case to a
// target and gets back what happened. The built-in simulator and the QEMU/real-kernel target
// implement it; the checker compares the observation with the case's expectations without
// knowing which target produced it.
import type { LoadedCase } from '../case/load.js';

/** One signal as the target saw it delivered (or queued) to a task. */
export interface ObservedSignal {
  /** Process name from the case (workload process or forked child). */
  proc: string;
  /** Thread name from the case, when the signal was thread-directed to a non-main thread. */
  thread?: string;
  pid: number;
  tid: number;
  signo: 'SIGBUS' | 'SIGKILL' | 'SIGSEGV';
  code?: string;
  /** si_addr as an unsigned hex string ("0x7f..."), absent for SI_KERNEL/SIGKILL. */
  addr?: string;
  lsb?: number;
  /** Whether the signal terminated the process (default disposition / forced). */
  fatal: boolean;
}

/** A decision the model took, for `hwpsim explain` and failure diagnostics. */
export interface TrailEvent {
  /** Kernel function that took the decision, e.g. "memory_failure", "mce_severity". */
  fn: string;
  msg: string;
  data?: Record<string, string | number | boolean>;
}

/** What one step did. */
export interface StepObservation {
  index: number;
  /** Return value of the step's syscall-like action (negative errno on failure). */
  ret?: number;
  /** Kernel log lines printed while the step ran (and deferred work it triggered). */
  log: string[];
  signals: ObservedSignal[];
  /** Set when the kernel panicked during the step (the panic message). */
  panic?: string;
  /** Decision trail (sim target only). */
  trail: TrailEvent[];
  /** The severity grade of an MCE step: name and message of the matched row. */
  severity?: { level: string; msg: string };
  /** Answers to the queries the step's expectations need (see queries.ts). */
  answers: QueryAnswers;
  /** Set when the step did not run (machine stopped after a panic). */
  notRun?: string;
}

export interface ProcessState {
  alive: boolean;
  /** The signal that killed the process, when it was killed. */
  killedBy?: string;
}

/** Values read from the system to check expectations that are not events. */
export interface QueryAnswers {
  meminfo?: Record<string, number>;
  mfStats?: Record<string, Record<string, number>>;
  processes?: Record<string, ProcessState>;
  /** kpageflags of each referenced page, as a decimal string of the u64. */
  kpageflags?: Record<string, string>;
  /** Outcome of reading each referenced page. */
  data?: Record<string, 'intact' | 'lost' | 'zero' | 'old'>;
  pagemap?: Record<string, 'present' | 'hwpoison' | 'swap' | 'none'>;
  /** Resolved values for log templates: ref -> pfn / virtual address / physical address (hex). */
  refs?: Record<string, { pfn?: string; addr?: string; phys?: string; pid?: number; tid?: number; comm?: string }>;
  poisonedPfns?: number;
  softOfflined?: string[];
  /** Logged MCE records in canonical mce-inject form, and the injected ones. */
  records?: { logged: string[]; injected: string[] };
  prctl?: number;
}

export interface CaseObservation {
  target: string;
  /** Kernel version the target ran (profile for sim, uname -r for qemu). */
  kernel: string;
  setup: { log: string[]; error?: string };
  steps: StepObservation[];
  /** End-of-case answers and the whole log. */
  final: { log: string[]; signals: ObservedSignal[]; answers: QueryAnswers; panic?: string };
  /** Coverage: error_states[] rows and severity rows the case hit (sim target). */
  coverage?: { errorStates: string[]; severities: string[] };
}

export interface RunContext {
  /** Per-case timeout in ms. */
  timeoutMs: number;
  /** Check model invariants after every step. */
  checkInvariants: boolean;
  /** Kernel profile that overrides the case's (from --kernel). */
  kernel?: string;
  seed: number;
  /** Record the model's decision trail (sim target). Off for speed; the runner turns it on to
   *  rerun a failing case for its diagnostic. Default on. */
  trace?: boolean;
}

/** Why a target cannot run a case (becomes a TAP skip). */
export class TargetSkip extends Error {}

export interface SystemUnderTest {
  readonly name: string;
  /** The target can record the model's decision trail (ctx.trace). */
  readonly traces?: boolean;
  /** Returns a reason string if this target cannot run the case at all (TAP skip). */
  cannotRun(c: LoadedCase, ctx: RunContext): string | undefined;
  run(c: LoadedCase, ctx: RunContext): Promise<CaseObservation>;
  /** Release whatever the target holds (QEMU processes, temp dirs). */
  close(): Promise<void>;
}
