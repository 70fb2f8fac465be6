// Shared helpers for the memory-failure tests: build a World from a small case, drive it through
// the same entry points the sim target uses (debugfs, sysfs, madvise, prctl, accesses), and read
// back log lines, signals and counters.
import '../../runner/targets/sim/builtin-extensions.js';
import type { CaseConfig, MachineConfig, MappingConfig, ProcessConfig } from '../../runner/case/schema.js';
import { World } from '../../runner/targets/sim/world.js';
import { writeHwpoisonDebugfs } from '../../tsrc/kernel/mm/hwpoison-inject.js';
import { madviseInjectError, MADV_HWPOISON, MADV_SOFT_OFFLINE } from '../../tsrc/kernel/mm/madvise.js';
import { hardOfflinePageStore, softOfflinePageStore } from '../../tsrc/kernel/drivers/base/memory.js';
import { readKpageflags, KPF } from '../../tsrc/kernel/fs/proc/page.js';
import { PAGE_SIZE } from '../../tsrc/kernel/mm/mm.js';
import { checkInvariants, watchInvariants } from '../../tsrc/kernel/invariants.js';
import type { DeliveredSignal } from '../../tsrc/kernel/sched.js';
import type { Kernel } from '../../tsrc/kernel/kernel.js';

export type Cfg = CaseConfig;

export function world(cfg: Cfg, kernel?: string): World {
  const w = new World(cfg, kernel);
  watchInvariants(w.k);
  return w;
}

/** A world with one process `p` (comm "victim") owning one mapping `buf` (4 anon pages by default). */
export function simple(kernel: string, mapping: Partial<MappingConfig> = {}, machine: MachineConfig = {}, proc: Partial<ProcessConfig> = {}): World {
  return world({
    machine: { kernel, ...machine },
    workload: { processes: [{ name: 'p', comm: 'victim', ...proc, mappings: [{ name: 'buf', kind: 'anon', pages: 4, ...mapping }] }] },
  });
}

export interface StepResult {
  ret: number;
  log: string[];
  signals: DeliveredSignal[];
}

/** Runs an action the way the sim target does (syscall, return to user) and returns what it did. */
export function step(w: World, fn: () => number): StepResult {
  const k = w.k;
  const mark = k.log.mark();
  const sig = k.delivered.length;
  const ret = fn();
  k.runWork();
  k.returnToUser();
  return { ret, log: k.log.since(mark), signals: k.delivered.slice(sig) };
}

export function pfnOf(w: World, ref: string): number {
  return w.pfnOf(ref);
}

export function corruptPfn(w: World, ref: string | number): StepResult {
  const v = typeof ref === 'number' ? `0x${ref.toString(16)}` : `0x${w.pfnOf(ref).toString(16)}`;
  return step(w, () => w.k.syscall(null, () => writeHwpoisonDebugfs(w.k, 'corrupt-pfn', v), 0));
}

export function debugfs(w: World, file: string, value: string): StepResult {
  return step(w, () => w.k.syscall(null, () => writeHwpoisonDebugfs(w.k, file, value), 0));
}

export function unpoison(w: World, ref: string | number): StepResult {
  const v = typeof ref === 'number' ? `0x${ref.toString(16)}` : `0x${w.pfnOf(ref).toString(16)}`;
  return step(w, () => w.k.syscall(null, () => writeHwpoisonDebugfs(w.k, 'unpoison-pfn', v), 0));
}

export function madvise(w: World, proc: string, ref: string, advice: 'hwpoison' | 'soft-offline' = 'hwpoison', len = PAGE_SIZE, addrDelta = 0): StepResult {
  const task = w.task(proc);
  const r = w.resolve(ref);
  return step(w, () => w.k.syscall(task, () => madviseInjectError(w.k, task, r.addr! + addrDelta, len, advice === 'hwpoison' ? MADV_HWPOISON : MADV_SOFT_OFFLINE), 0));
}

export function hardOffline(w: World, ref: string | number, offset = 0): StepResult {
  const pfn = typeof ref === 'number' ? ref : w.pfnOf(ref);
  return step(w, () => w.k.syscall(null, () => hardOfflinePageStore(w.k, `0x${(pfn * PAGE_SIZE + offset).toString(16)}`), 0));
}

export function softOffline(w: World, ref: string | number): StepResult {
  const pfn = typeof ref === 'number' ? ref : w.pfnOf(ref);
  return step(w, () => w.k.syscall(null, () => softOfflinePageStore(w.k, `0x${(pfn * PAGE_SIZE).toString(16)}`), 0));
}

export function touch(w: World, proc: string, ref: string, write = false): StepResult {
  const task = w.task(proc);
  const r = w.resolve(ref);
  return step(w, () => {
    const res = w.k.access(task, r.addr!, write);
    return res.kind === 'ok' ? 0 : -14;
  });
}

export function hc(k: Kernel): number {
  return k.meminfo().HardwareCorrupted ?? 0;
}

export function kpf(k: Kernel, pfn: number, name: keyof typeof KPF): boolean {
  return (readKpageflags(k, pfn) & (1n << BigInt(KPF[name]))) !== 0n;
}

export function mf(pfn: number, text: string): string {
  return `Memory failure: ${pfn === 0 ? '0' : '0x' + pfn.toString(16)}: ${text}`;
}

export function hx(n: number): string {
  return n === 0 ? '0' : `0x${n.toString(16)}`;
}

export function sig(s: DeliveredSignal): string {
  const code = s.code === 4 ? 'AR' : s.code === 5 ? 'AO' : String(s.code);
  return `${s.signo === 9 ? 'SIGKILL' : s.signo === 7 ? 'SIGBUS' : s.signo}:${code}@${s.tid}:${s.addr === undefined ? '-' : hx(s.addr)}:${s.lsb ?? '-'}${s.fatal ? ':fatal' : ''}`;
}

export function invariantsOk(w: World): string | undefined {
  return checkInvariants(w.k);
}

export { PAGE_SIZE };
