// Tasks and thread groups (include/linux/sched.h), their PR_MCE_KILL flags and SIGBUS handling.
import type { MM } from './mm/mm.js';

/** Task flags (include/linux/sched.h). */
export const PF_MCE_PROCESS = 0x00000080;
export const PF_MCE_EARLY = 0x08000000;

export const SIGBUS = 7;
export const SIGKILL = 9;
export const SIGSEGV = 11;

/** si_code values (include/uapi/asm-generic/siginfo.h). */
export const BUS_ADRERR = 2;
export const BUS_OBJERR = 3;
export const BUS_MCEERR_AR = 4;
export const BUS_MCEERR_AO = 5;
export const SEGV_MAPERR = 1;
export const SI_KERNEL = 0x80;
export const SI_USER = 0;

export const SIG_NAMES: Record<number, 'SIGBUS' | 'SIGKILL' | 'SIGSEGV'> = { [SIGBUS]: 'SIGBUS', [SIGKILL]: 'SIGKILL', [SIGSEGV]: 'SIGSEGV' };
export const SI_CODE_NAMES: Record<string, Record<number, string>> = {
  SIGBUS: { [BUS_ADRERR]: 'BUS_ADRERR', [BUS_OBJERR]: 'BUS_OBJERR', [BUS_MCEERR_AR]: 'BUS_MCEERR_AR', [BUS_MCEERR_AO]: 'BUS_MCEERR_AO', [SI_KERNEL]: 'SI_KERNEL', [SI_USER]: 'SI_USER' },
  SIGSEGV: { [SEGV_MAPERR]: 'SEGV_MAPERR', [SI_KERNEL]: 'SI_KERNEL' },
  SIGKILL: { [SI_KERNEL]: 'SI_KERNEL', [SI_USER]: 'SI_USER' },
};

export type Disposition = 'default' | 'handler' | 'ignore' | 'block';

export interface SigInfo {
  signo: number;
  code: number;
  addr?: number;
  lsb?: number;
}

/** A signal as it was delivered: what the process saw and what became of it. */
export interface DeliveredSignal extends SigInfo {
  pid: number;
  tid: number;
  /** The signal terminated the process. */
  fatal: boolean;
  /** Still pending (blocked) when the case ended. */
  pending?: boolean;
}

export class Task {
  flags = 0;
  /** Signals queued for delivery on return to user space. */
  pending: { info: SigInfo; force: boolean }[] = [];
  cpu = 0;
  constructor(
    readonly tid: number,
    public comm: string,
    readonly group: Process,
    /** Name of the thread in the case ("main" for the leader). */
    readonly name: string,
  ) {}
}

export class Process {
  readonly threads: Task[] = [];
  alive = true;
  exiting = false;
  killedBy: number | undefined;
  /** Signals the process's handler received (siginfo recorded by the workload). */
  readonly received: SigInfo[] = [];
  sigbus: Disposition = 'handler';
  memcgIno = 0;
  /** Open files: fd -> file description. */
  readonly files = new Map<number, OpenFile>();
  nextFd = 3;
  constructor(
    readonly pid: number,
    public comm: string,
    public mm: MM | null,
    readonly parent: Process | null,
    /** Name of the process in the case. */
    readonly name: string,
  ) {}
  get leader(): Task {
    return this.threads[0]!;
  }
}

/** struct file: per-open file description state (f_wb_err for errseq). */
export interface OpenFile {
  inodeIno: number;
  /** errseq value sampled at open / last fsync (file->f_wb_err). */
  wbErrSeen: number;
}
