/**
 * Model of arch/x86/kernel/cpu/mce/internal.h and asm/mce.h bits the handler
 * needs: `struct mce` (the record), kflags, mca_config.
 */
import type { SeverityLevel } from './severity.js';

/** struct mce (the fields the Intel handler fills). */
export interface Mce {
  status: bigint;
  misc: bigint;
  addr: bigint;
  mcgstatus: bigint;
  ip: bigint;
  tsc: bigint;
  /** Wall-clock seconds. */
  time: bigint;
  cpuvendor: number;
  cpuid: number;
  cs: number;
  bank: number;
  /** extcpu: the logical CPU that read the bank. */
  cpu: number;
  socketid: number;
  apicid: number;
  mcgcap: bigint;
  microcode: number;
  severity: SeverityLevel;
  kflags: number;
}

// kflags (asm/mce.h)
export const MCE_HANDLED_CEC = 1 << 0;
export const MCE_HANDLED_UC = 1 << 1;
export const MCE_HANDLED_EXTLOG = 1 << 2;
export const MCE_HANDLED_NFIT = 1 << 3;
export const MCE_HANDLED_EDAC = 1 << 4;
export const MCE_HANDLED_MCELOG = 1 << 5;
export const MCE_IN_KERNEL_RECOV = 1 << 6;
export const MCE_IN_KERNEL_COPYIN = 1 << 7;

export const X86_VENDOR_INTEL = 0;
export const KERNEL_CS = 0x10;

/** struct mca_config: the knobs the handler reads. */
export interface McaCfg {
  /** MCG_SER_P seen at boot. */
  ser: boolean;
  /** µs; 0 = no rendezvous. */
  monarchTimeout: number;
  /** x86 tolerant (kernels < 5.18 only; undefined when the kernel has no such knob). */
  tolerant: number | undefined;
  dontLogCe: boolean;
  printAll: boolean;
  ignoreCe: boolean;
  /** mce=no_cmci. */
  cmciDisabled: boolean;
  /** mce=no_lmce. */
  lmceDisabled: boolean;
}

export const MCACOD_DATA = 0x0134n;
export const MCACOD_INSTR = 0x0150n;

/** printk's %llx. */
export const hx = (v: bigint | number): string => v.toString(16);
