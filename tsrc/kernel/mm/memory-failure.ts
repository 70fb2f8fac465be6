// mm/memory-failure.c: what Linux does when a page is declared corrupted (hwpoison), for the
// kernel version the machine runs (kernel-model.md §2–5, §9–11; the profile switches in
// ../profiles.ts). Entry points: memoryFailure(), unpoisonMemory(), softOfflinePage(),
// memoryFailureQueue(). Every decision is recorded with k.trail() for `hwpsim explain`.
import type { Kernel } from '../kernel.js';
import { EBUSY, EFAULT, EHWPOISON, EIO, ENXIO, EOPNOTSUPP } from '../errno.js';
import { canWriteback, hasErrorRemoveFolio, Inode, isShmemFs, mappingSetError } from '../fs.js';
import { hex, hexPfn } from '../printk.js';
import { BUS_MCEERR_AO, BUS_MCEERR_AR, PF_MCE_EARLY, PF_MCE_PROCESS, SIGKILL, SI_KERNEL, type Process, type Task } from '../sched.js';
import { AnonVma, PAGE_SIZE, VM_LOCKED, type MM } from './mm.js';
import { MAGIC_HWPOISON, PG, type Page } from './page.js';
import { folioMkclean, tryToUnmap, vmasCovering } from './rmap.js';

/** enum mf_flags (include/linux/mm.h). */
export const MF_COUNT_INCREASED = 1 << 0;
export const MF_ACTION_REQUIRED = 1 << 1;
export const MF_MUST_KILL = 1 << 2;
export const MF_SOFT_OFFLINE = 1 << 3;
export const MF_UNPOISON = 1 << 4;
export const MF_SW_SIMULATED = 1 << 5;
export const MF_NO_RETRY = 1 << 6;
export const MF_MEM_PRE_REMOVE = 1 << 7;

/** enum mf_result and action_name[]. */
export type MfResult = 'Ignored' | 'Failed' | 'Delayed' | 'Recovered';

/** enum mf_action_page_type -> action_page_types[] (the profile may rename a few). */
export const MF_MSG = {
  KERNEL: 'reserved kernel page',
  KERNEL_HIGH_ORDER: 'high-order kernel page',
  HUGE: 'huge page',
  FREE_HUGE: 'free huge page',
  GET_HWPOISON: 'get hwpoison page',
  UNMAP_FAILED: 'unmapping failed page',
  DIRTY_SWAPCACHE: 'dirty swapcache page',
  CLEAN_SWAPCACHE: 'clean swapcache page',
  DIRTY_MLOCKED_LRU: 'dirty mlocked LRU page',
  CLEAN_MLOCKED_LRU: 'clean mlocked LRU page',
  DIRTY_UNEVICTABLE_LRU: 'dirty unevictable LRU page',
  CLEAN_UNEVICTABLE_LRU: 'clean unevictable LRU page',
  DIRTY_LRU: 'dirty LRU page',
  CLEAN_LRU: 'clean LRU page',
  TRUNCATED_LRU: 'already truncated LRU page',
  BUDDY: 'free buddy page',
  DAX: 'dax page',
  UNSPLIT_THP: 'unsplit thp',
  /** MF_MSG_NON_PMD_HUGE, 4.x–6.0 (profile hugetlbNonPmdIgnored). */
  NON_PMD_HUGE: 'non-pmd-sized huge page',
  ALREADY_POISONED: 'already poisoned page',
  UNKNOWN: 'unknown page',
} as const;
export type MfMsg = keyof typeof MF_MSG;

type Handler = (k: Kernel, ps: ErrorState, page: Page) => MfResult;

/** One row of error_states[]: (flags & mask) == res selects the type and handler. */
export interface ErrorState {
  mask: number;
  res: number;
  type: MfMsg;
  handler: Handler;
  /** Name of the handler function, for the decision trail and coverage. */
  handlerName: string;
}

const sc = PG.swapcache | PG.swapbacked;
const dirty = PG.dirty;
const unevict = PG.unevictable;
const mlock = PG.mlocked;
const lru = PG.lru;
const head = PG.head;
const reserved = PG.reserved;

/**
 * error_states[] (mm/memory-failure.c), current kernels: first matching row wins; the last row
 * is the catch-all. Kept as data: one row per kernel row, with the kernel's names.
 */
export const ERROR_STATES: readonly ErrorState[] = [
  { mask: reserved, res: reserved, type: 'KERNEL', handler: meKernel, handlerName: 'me_kernel' },
  { mask: head, res: head, type: 'HUGE', handler: meHugePage, handlerName: 'me_huge_page' },
  { mask: sc | dirty, res: sc | dirty, type: 'DIRTY_SWAPCACHE', handler: meSwapcacheDirty, handlerName: 'me_swapcache_dirty' },
  { mask: sc | dirty, res: sc, type: 'CLEAN_SWAPCACHE', handler: meSwapcacheClean, handlerName: 'me_swapcache_clean' },
  { mask: mlock | dirty, res: mlock | dirty, type: 'DIRTY_MLOCKED_LRU', handler: mePagecacheDirty, handlerName: 'me_pagecache_dirty' },
  { mask: mlock | dirty, res: mlock, type: 'CLEAN_MLOCKED_LRU', handler: mePagecacheClean, handlerName: 'me_pagecache_clean' },
  { mask: unevict | dirty, res: unevict | dirty, type: 'DIRTY_UNEVICTABLE_LRU', handler: mePagecacheDirty, handlerName: 'me_pagecache_dirty' },
  { mask: unevict | dirty, res: unevict, type: 'CLEAN_UNEVICTABLE_LRU', handler: mePagecacheClean, handlerName: 'me_pagecache_clean' },
  { mask: lru | dirty, res: lru | dirty, type: 'DIRTY_LRU', handler: mePagecacheDirty, handlerName: 'me_pagecache_dirty' },
  { mask: lru | dirty, res: lru, type: 'CLEAN_LRU', handler: mePagecacheClean, handlerName: 'me_pagecache_clean' },
  { mask: 0, res: 0, type: 'UNKNOWN', handler: meUnknown, handlerName: 'me_unknown' },
];

/** Hooks that other parts of mm (hugetlb, THP, KSM) register, so this file stays the flow. */
export interface MemoryFailureHooks {
  /** try_memory_failure_hugetlb(): returns undefined when the page is not hugetlb. */
  hugetlb?: (k: Kernel, pfn: number, page: Page, flags: number) => number | undefined;
  /** try_to_split_thp_page(): 0 on success. */
  splitThp?: (k: Kernel, page: Page) => number;
  /** me_huge_page(). */
  meHugePage?: (k: Kernel, page: Page) => MfResult;
  /** collect_procs_ksm(). */
  collectKsm?: (k: Kernel, page: Page, forceEarly: boolean) => ToKill[];
  /**
   * unpoison_memory() of a hugetlb folio: folio_free_raw_hwp(); returns how many raw error pages
   * were released (0 = refuse with -EBUSY). HardwareCorrupted drops by that count.
   */
  unpoisonHugetlb?: (k: Kernel, folio: Page) => number;
  /** kill_accessing_process() for a hugetlb / PMD mapping: {addr, shift} where current maps pfn. */
  findHugeMapping?: (k: Kernel, task: Task, pfn: number) => { addr: number; shift: number } | undefined;
  /** soft_offline_page() of a hugetlb page (dissolve a free one, migrate an in-use one). */
  softOfflineHugetlb?: (k: Kernel, page: Page, flags: number) => number;
}

export const hooks: MemoryFailureHooks = {};

export interface ToKill {
  task: Task;
  addr: number;
  /** -EFAULT address: no user address found. */
  addrValid: boolean;
  sizeShift: number;
}

/**
 * Points where a real kernel can race with memory_failure() (§3.2, §3.3, §21.3, §21.29). A
 * deterministic model exposes them as callbacks a test or case can use to make the race happen.
 */
export interface MfRaces {
  /** The free page gets allocated between the buddy check and take_page_off_buddy(). */
  beforeTakeOffBuddy?: (page: Page) => void;
  /** get_hwpoison_page() saw a free page, which then left the free lists (high-order allocation). */
  afterGetFreePage?: (page: Page) => void;
  /** Reclaim/migration isolates the page from the LRU just before classification starts. */
  beforeLock?: (page: Page) => void;
  /** The page is truncated concurrently after it was unmapped. */
  afterUnmap?: (page: Page) => void;
}

/**
 * Model knobs that are not kernel-version switches (kernel-model.md §22).
 * mlockedState: how an mlocked page looks when identify_page_state() runs.
 *   'munlocked' (default, what 6.1/6.12 show): munlock batching has put it back on the evictable
 *   LRU → `dirty/clean LRU page`; 'unevictable': still on the unevictable LRU →
 *   `… unevictable LRU page`; 'batched': off the LRU in the mlock batch, so the first pass hits the
 *   catch-all and the snapshot pass picks `… mlocked LRU page`.
 */
export interface MfTunables {
  mlockedState: 'munlocked' | 'unevictable' | 'batched';
  races: MfRaces;
}

const tunablesByKernel = new WeakMap<Kernel, MfTunables>();

export function mfTunables(k: Kernel): MfTunables {
  let t = tunablesByKernel.get(k);
  if (!t) {
    t = { mlockedState: 'munlocked', races: {} };
    tunablesByKernel.set(k, t);
  }
  return t;
}

/** Pfns unpoison_memory() released (for the "unpoisoned page is usable again" invariant). */
const unpoisonedByKernel = new WeakMap<Kernel, Set<number>>();

export function unpoisonedPfns(k: Kernel): Set<number> {
  let s = unpoisonedByKernel.get(k);
  if (!s) {
    s = new Set();
    unpoisonedByKernel.set(k, s);
  }
  return s;
}

/** pr_err/pr_info with pr_fmt "Memory failure: ". */
function mfLog(k: Kernel, pfn: number, text: string, level: 'err' | 'info' = 'err'): void {
  k.log.print(level, `Memory failure: ${hexPfn(pfn)}: ${text}`);
}

/** The type string as this kernel version prints it. */
function typeString(k: Kernel, type: MfMsg): string {
  if (type === 'GET_HWPOISON') return k.profile.getHwpoisonType;
  if (type === 'ALREADY_POISONED' && k.profile.alreadyPoisoned === 'already-poisoned-counted') return 'already poisoned';
  return MF_MSG[type];
}

/** action_result(): the "recovery action" line, counters, and the return value. */
export function actionResult(k: Kernel, pfn: number, type: MfMsg, result: MfResult): number {
  // ≤ ≈6.1 (hwCorruptedAtTestSet): counted at TestSetPageHWPoison time instead (countAtTestSet()).
  const counted = !k.profile.hwCorruptedAtTestSet && (type !== 'ALREADY_POISONED' || k.profile.alreadyPoisoned === 'already-poisoned-counted');
  if (counted) {
    // num_poisoned_pages_inc(); update_per_node_mf_stats() only exists since 6.3.
    k.numPoisonedPages++;
    if (k.profile.mfStats) {
      const nid = k.alloc.layout.nodeOf(pfn);
      const st = k.mfStats(nid);
      st.total++;
      st[result.toLowerCase() as 'ignored' | 'failed' | 'delayed' | 'recovered']++;
    }
  }
  k.coverage.errorStates.add(type);
  mfLog(k, pfn, `recovery action for ${typeString(k, type)}: ${result}`);
  const ret = result === 'Recovered' || result === 'Delayed' ? 0 : -EBUSY;
  k.trail('action_result', `${typeString(k, type)}: ${result} -> ${ret === 0 ? '0' : '-EBUSY'}${counted ? ' (HardwareCorrupted +4 kB)' : k.profile.hwCorruptedAtTestSet ? ' (counted at TestSetPageHWPoison)' : ' (not counted)'}`, { pfn: hexPfn(pfn), type, result });
  return ret;
}

/**
 * ≤ ≈6.1: num_poisoned_pages_inc() right after TestSetPageHWPoison (delta +1), or
 * num_poisoned_pages_dec() when the filter / a lost buddy race clears PG_hwpoison again (-1).
 * No-op on kernels that count in action_result().
 */
export function countAtTestSet(k: Kernel, pfn: number, delta: 1 | -1, why: string): void {
  if (!k.profile.hwCorruptedAtTestSet) return;
  k.numPoisonedPages += delta;
  k.trail('num_poisoned_pages', `${delta > 0 ? 'HardwareCorrupted +4 kB' : 'HardwareCorrupted -4 kB'} (${why})`, { pfn: hexPfn(pfn) });
}

// ---- who gets signalled ---------------------------------------------------------------------

function policyOf(k: Kernel, t: Task): string {
  if (t.flags & PF_MCE_PROCESS) return t.flags & PF_MCE_EARLY ? 'PR_MCE_KILL_EARLY' : 'PR_MCE_KILL_LATE';
  return `default (vm.memory_failure_early_kill=${k.sysctl.earlyKill})`;
}

/**
 * task_early_kill() / find_early_kill_thread() (≥5.9): the thread that gets the signal, if any,
 * and why (for the decision trail).
 */
export function taskEarlyKillWhy(k: Kernel, proc: Process, forceEarly: boolean): { task: Task | undefined; why: string } {
  if (!proc.mm || !proc.alive || proc.exiting) return { task: undefined, why: 'no mm (exiting or kernel thread)' };
  const cur = k.current;
  if (forceEarly && cur && cur.group.mm === proc.mm) return { task: cur, why: `MF_ACTION_REQUIRED: current thread ${cur.comm}:${cur.tid} consumed the error` };
  for (const t of proc.threads) {
    if (t.flags & PF_MCE_PROCESS) {
      if (t.flags & PF_MCE_EARLY) return { task: t, why: `thread ${t.comm}:${t.tid} (${t.name}) set PR_MCE_KILL_EARLY` };
    } else if (k.sysctl.earlyKill) {
      return { task: t, why: `thread ${t.comm}:${t.tid} (${t.name}) follows vm.memory_failure_early_kill=1` };
    }
  }
  const policies = proc.threads.map((t) => `${t.name}: ${policyOf(k, t)}`).join(', ');
  return { task: undefined, why: `late kill: no thread is early (${policies})` };
}

/** task_early_kill(). */
export function taskEarlyKill(k: Kernel, proc: Process, forceEarly: boolean): Task | undefined {
  return taskEarlyKillWhy(k, proc, forceEarly).task;
}

/**
 * collect_procs(): for_each_process (creation order), the early-kill thread of the process, then
 * one to-kill entry per VMA of the folio's rmap that belongs to that thread's mm. Anon: only VMAs
 * where the page is really mapped; file/shmem: every VMA covering the offset, even where the pte
 * was never populated. Processes sharing an mm (CLONE_VM) are each visited (§21.26).
 */
export function collectProcs(k: Kernel, page: Page, forceEarly: boolean): ToKill[] {
  const folio = page.folio();
  if (!folio.mapping) {
    k.trail('collect_procs', 'folio has no mapping: nobody collected');
    return [];
  }
  if (folio.ksm && hooks.collectKsm) return hooks.collectKsm(k, page, forceEarly);
  const anon = folio.mapping instanceof AnonVma;
  const mappers = vmasCovering(page).filter((m) => !anon || m.mapped);
  const shift = sizeShiftOf(folio);
  const out: ToKill[] = [];
  // The rmap's VMAs by mm (rmap order kept), then only the processes owning those mms: the cost
  // grows with the mappers, not with every process. A shared mm (users > 1) visits every process.
  const byMm = new Map<MM, typeof mappers>();
  for (const m of mappers) {
    const list = byMm.get(m.vma.mm);
    if (list) list.push(m);
    else byMm.set(m.vma.mm, [m]);
  }
  let candidates: Process[] = [];
  for (const mm of byMm.keys()) {
    const owner = mm.users <= 1 ? k.procOfMm(mm) : undefined;
    if (!owner || owner.mm !== mm) {
      candidates = [...k.processes.values()];
      break;
    }
    candidates.push(owner);
  }
  const procs = candidates.filter((p) => p.alive).sort((a, b) => a.pid - b.pid);
  for (const proc of procs) {
    if (!proc.mm) continue;
    const mine = byMm.get(proc.mm) ?? [];
    if (mine.length === 0) continue;
    const { task: t, why } = taskEarlyKillWhy(k, proc, forceEarly);
    if (!t) {
      if (k.tracing) k.trail('collect_procs', `${proc.comm}:${proc.pid} not collected: ${why}`, { pid: proc.pid });
      continue;
    }
    for (const m of mine) {
      out.push({ task: t, addr: m.addr, addrValid: true, sizeShift: shift });
      if (k.tracing) k.trail('collect_procs', `collected ${t.comm}:${t.tid} at ${hexPfn(m.addr)} lsb ${shift}: ${why}`, { pid: proc.pid, tid: t.tid, addr: hexPfn(m.addr) });
    }
  }
  return out;
}

function sizeShiftOf(folio: Page): number {
  if (folio.hugetlb) return folio.hugetlb.size;
  return 12 + folio.order;
}

/** kill_proc(): the "Sending SIGBUS" line and an AR (to current) or AO signal. */
function killProc(k: Kernel, tk: ToKill, pfn: number, flags: number): void {
  const t = tk.task;
  mfLog(k, pfn, `${k.profile.killProcVerb} ${t.comm}:${t.tid} due to hardware memory corruption`);
  if (flags & MF_ACTION_REQUIRED && t === k.current) {
    k.forceSigMceerr(t, BUS_MCEERR_AR, tk.addr, tk.sizeShift);
    if (k.tracing) k.trail('kill_proc', `SIGBUS BUS_MCEERR_AR (forced) to ${t.comm}:${t.tid} si_addr ${hexPfn(tk.addr)} lsb ${tk.sizeShift}: it is current and MF_ACTION_REQUIRED`, { tid: t.tid });
  } else {
    k.sendSigMceerr(t, BUS_MCEERR_AO, tk.addr, tk.sizeShift);
    if (k.tracing) k.trail('kill_proc', `SIGBUS BUS_MCEERR_AO to ${t.comm}:${t.tid} si_addr ${hexPfn(tk.addr)} lsb ${tk.sizeShift}${flags & MF_ACTION_REQUIRED ? ': not the consuming thread' : ': action optional'}`, { tid: t.tid });
  }
}

/** kill_procs(): signal every collected entry when forcekill, else drop the list. */
export function killProcs(k: Kernel, tokill: ToKill[], forcekill: boolean, unmapFailed: boolean, pfn: number, flags: number): void {
  if (!forcekill) {
    if (tokill.length) k.trail('kill_procs', `forcekill is false (clean page, not MF_MUST_KILL, unmapped): ${tokill.length} collected entr${tokill.length === 1 ? 'y' : 'ies'} dropped, nobody signalled`);
    return;
  }
  for (const tk of tokill) {
    // ≤6.10: a failed unmap kills every collected process with SIGKILL; always for -EFAULT addresses.
    if (!tk.addrValid || (unmapFailed && !k.profile.unmapFailureSigbus)) {
      mfLog(k, pfn, `forcibly killing ${tk.task.comm}:${tk.task.tid} because of failure to unmap corrupted page`);
      k.sendSignal(tk.task, { signo: SIGKILL, code: SI_KERNEL }, true);
      k.trail('kill_procs', `SIGKILL to ${tk.task.comm}:${tk.task.tid}: ${tk.addrValid ? 'unmap failed (kernel < 6.11)' : 'no user address (-EFAULT)'}`, { tid: tk.task.tid });
    } else {
      killProc(k, tk, pfn, flags);
    }
  }
}

/**
 * kill_accessing_process(): AR on an already-poisoned page, to where current maps it (present
 * pte or hwpoison entry for pfn; PMD THP / hugetlb entries through hooks.findHugeMapping).
 * Returns -EHWPOISON when signalled, 0 when current does not map it (after the 2025 stable fix;
 * 6.1.y and 6.12.y have it), -EFAULT without an mm.
 */
function killAccessingProcess(k: Kernel, pfn: number, flags: number): number {
  const cur = k.current;
  if (!cur?.group.mm) {
    k.trail('kill_accessing_process', 'current has no mm: -EFAULT');
    return -EFAULT;
  }
  const mm = cur.group.mm;
  let found: { addr: number; shift: number } | undefined;
  const entries = [...mm.ptes.entries()].sort((a, b) => a[0] - b[0]);
  for (const [vpn, pte] of entries) {
    if ((pte.kind === 'present' || pte.kind === 'hwpoison') && pte.pfn === pfn) {
      const vma = mm.findVma(vpn * PAGE_SIZE);
      if (vma && vma.pageShift > 12) continue; // hugetlb VMAs are walked by the hugetlb hook
      found = { addr: vpn * PAGE_SIZE, shift: 12 };
      break;
    }
  }
  if (hooks.findHugeMapping) {
    const h = hooks.findHugeMapping(k, cur, pfn);
    if (h && (!found || h.addr < found.addr)) found = h;
  }
  if (!found) {
    const ret = k.profile.killAccessingNotMappedRet;
    k.trail('kill_accessing_process', `${cur.comm}:${cur.tid} does not map pfn ${hexPfn(pfn)}: no signal, return ${ret === 0 ? '0' : '-EFAULT'}`);
    return ret;
  }
  k.trail('kill_accessing_process', `${cur.comm}:${cur.tid} maps pfn ${hexPfn(pfn)} at ${hexPfn(found.addr)}`);
  killProc(k, { task: cur, addr: found.addr, addrValid: true, sizeShift: found.shift }, pfn, flags);
  return -EHWPOISON;
}

// ---- unmapping --------------------------------------------------------------------------------

/** hwpoison_user_mappings(): collect, unmap, decide forcekill, signal. Returns "unmap succeeded". */
function hwpoisonUserMappings(k: Kernel, page: Page, pfn: number, flags: number): boolean {
  const folio = page.folio();
  if (folio.test(PG.reserved) || folio.test(PG.slab) || folio.kind === 'pgtable' || folio.test(PG.pgtable) || folio.test(PG.offline)) return true;
  if (!(folio.test(PG.lru) || folio.hugetlb)) return true;
  if (folio.mapcount === 0) {
    k.trail('hwpoison_user_mappings', 'page not mapped: nothing to unmap, nobody signalled (late kill only)');
    return true;
  }
  if (folio.ksm && !k.profile.ksmSupported) {
    // ≤ ≈6.3: KSM pages are refused before anything is unmapped.
    mfLog(k, pfn, "can't handle KSM pages.");
    k.trail('hwpoison_user_mappings', 'KSM page: not supported by this kernel, left mapped');
    return false;
  }
  const mlocked = folio.test(PG.mlocked);
  let ttuHwpoison = true;
  if (folio.test(PG.swapcache)) {
    mfLog(k, pfn, 'keeping poisoned page in swap cache');
    ttuHwpoison = false;
  }
  // Propagate the dirty bit from the ptes first: a clean disk-backed page can simply be dropped.
  const mapping = folio.mapping instanceof Inode ? folio.mapping : null;
  if (!(flags & MF_MUST_KILL) && !folio.test(PG.dirty) && mapping && canWriteback(mapping.sb)) {
    if (folioMkclean(folio)) {
      folio.set(PG.dirty);
      k.trail('hwpoison_user_mappings', 'folio_mkclean found a dirty pte: the data was modified, page is dirty');
    } else {
      ttuHwpoison = false;
      mfLog(k, pfn, 'corrupted page was clean: dropped without side effects', 'info');
    }
  }
  const tokill = collectProcs(k, page, (flags & MF_ACTION_REQUIRED) !== 0);
  const ok = unmapPoisonedFolio(k, folio, ttuHwpoison);
  if (!ok) mfLog(k, pfn, `failed to unmap page (${k.profile.unmapFailedFolioMsg ? 'folio mapcount' : 'mapcount'}=${folio.mapcount})`);
  if (mlocked) applyMlockedState(k, folio);
  const forcekill = folio.test(PG.dirty) || (flags & MF_MUST_KILL) !== 0 || !ok;
  const why = [folio.test(PG.dirty) ? 'page dirty' : 'page clean', flags & MF_MUST_KILL ? 'MF_MUST_KILL' : '', ok ? '' : 'unmap failed'].filter(Boolean).join(', ');
  k.trail('hwpoison_user_mappings', `unmap ${ok ? 'succeeded' : 'failed'}${ttuHwpoison ? ' (ptes -> hwpoison entries)' : ''}; forcekill=${forcekill} (${why})`, { dirty: folio.test(PG.dirty), mustKill: (flags & MF_MUST_KILL) !== 0, unmapped: ok });
  killProcs(k, tokill, forcekill, !ok, pfn, flags);
  return ok;
}

/**
 * After try_to_unmap() of an mlocked folio and the second shake: where munlock left it
 * (kernel-model.md §3.8, §22; mfTunables().mlockedState).
 */
function applyMlockedState(k: Kernel, folio: Page): void {
  const state = mfTunables(k).mlockedState;
  if (state === 'unevictable') {
    folio.clear(PG.mlocked);
    folio.set(PG.unevictable);
  } else if (state === 'batched') {
    folio.clear(PG.mlocked | PG.unevictable | PG.lru);
  } else {
    // munlock drained: back on the evictable LRU, no PG_mlocked.
    folio.clear(PG.mlocked | PG.unevictable);
  }
  k.trail('hwpoison_user_mappings', `mlocked folio after munlock: ${state}`);
}

/** try_to_unmap(folio, TTU_IGNORE_MLOCK | TTU_SYNC [| TTU_HWPOISON]); true when no longer mapped. */
function unmapPoisonedFolio(k: Kernel, folio: Page, hwpoisonEntries: boolean): boolean {
  if (folio.pinned > 0 && !folio.hugetlb && folio.isAnon()) {
    // try_to_unmap_one() cannot unshare a possibly DMA-pinned anon-exclusive page: it stays mapped.
    k.trail('try_to_unmap', `folio is pinned (${folio.pinned}): try_to_unmap_one bails out, still mapped`);
    return false;
  }
  tryToUnmap(k, folio, hwpoisonEntries);
  return folio.mapcount === 0;
}

// ---- identify_page_state and the handlers ------------------------------------------------------

/** has_extra_refcount(). */
function hasExtraRefcount(k: Kernel, ps: ErrorState, page: Page, extraPins: boolean): boolean {
  const count = page.refcount - 1 - (extraPins ? page.folio().nrPages() : 0);
  if (count > 0) {
    mfLog(k, page.pfn, `${typeString(k, ps.type)} still referenced by ${count} users`);
    k.trail(ps.handlerName, `${count} extra reference(s): result forced to Failed`);
    return true;
  }
  return false;
}

/** delete_from_lru_cache(): isolate from the LRU, clear active/unevictable, uncharge. */
function deleteFromLruCache(page: Page): boolean {
  if (!page.test(PG.lru)) return false;
  page.clear(PG.lru | PG.active | PG.unevictable | PG.mlocked);
  page.memcgIno = 0;
  return true;
}

/** me_kernel(). */
function meKernel(k: Kernel): MfResult {
  k.trail('me_kernel', 'kernel page: nothing can be done');
  return 'Ignored';
}

/** me_unknown(). */
function meUnknown(k: Kernel, _ps: ErrorState, page: Page): MfResult {
  mfLog(k, page.pfn, 'Unknown page state');
  return k.profile.meUnknownResult;
}

/** me_huge_page() (hugetlb.ts implements it through the hook). */
function meHugePage(k: Kernel, _ps: ErrorState, page: Page): MfResult {
  if (hooks.meHugePage) return hooks.meHugePage(k, page);
  k.trail('me_huge_page', 'no hugetlb support registered');
  return 'Failed';
}

/** truncate_error_folio(): per filesystem (error_remove_folio, or mapping_evict_folio). */
function truncateErrorFolio(k: Kernel, page: Page, inode: Inode): MfResult {
  const sb = inode.sb;
  if (hasErrorRemoveFolio(sb)) {
    if ((isShmemFs(sb) && k.profile.shmemKeepsPoisonedPage) || sb.fs === 'hugetlbfs') {
      // shmem_error_remove_folio / hugetlbfs: returns 0 without removing: the page stays in the
      // file, poisoned, so later reads and faults see the poison.
      k.trail('truncate_error_folio', `${sb.fs}: page kept in the page cache (error_remove_folio returns 0)`);
      return 'Recovered';
    }
    // generic_error_remove_folio: a temporary hole punch of a regular file. Before 5.16 shmem
    // used it too: the page leaves the file and its data is lost (later reads give zeros).
    if (isShmemFs(sb)) k.trail('truncate_error_folio', `${sb.fs} before 5.16: generic_error_remove_page truncates the page, its data is silently lost`);
    removeFromPageCache(k, page, inode);
    return 'Recovered';
  }
  // No error_remove_folio (ramfs, block device cache): mapping_evict_folio().
  if (!page.test(PG.dirty) && !page.test(PG.writeback) && page.mapcount === 0 && page.refcount <= 2) {
    removeFromPageCache(k, page, inode);
    return 'Recovered';
  }
  mfLog(k, page.pfn, 'Failed to invalidate', 'info');
  k.trail('truncate_error_folio', `${sb.fs} has no error_remove_folio and mapping_evict_folio failed (${page.test(PG.dirty) ? 'dirty' : 'referenced'})`);
  return 'Failed';
}

function removeFromPageCache(k: Kernel, page: Page, inode: Inode): void {
  if (inode.cache.get(page.index) === page) {
    inode.cache.delete(page.index);
    page.refcount--;
  }
  page.mapping = null;
  page.clear(PG.dirty);
  k.trail('truncate_error_folio', `removed index ${page.index} of ${inode.sb.fs} inode ${inode.ino} from the page cache (next read comes from disk)`);
}

/** me_pagecache_clean(). */
function mePagecacheClean(k: Kernel, ps: ErrorState, page: Page): MfResult {
  deleteFromLruCache(page);
  if (page.isAnon()) {
    k.trail('me_pagecache_clean', 'anonymous page: only memory_failure holds it now');
    return 'Recovered';
  }
  const mapping = page.mapping;
  if (!(mapping instanceof Inode)) {
    k.trail('me_pagecache_clean', 'page has no mapping (torn down meanwhile)');
    return 'Failed';
  }
  // v5.16 (with shmem_error_remove_page): the page cache's reference of a kept shmem page.
  const extraPins = isShmemFs(mapping.sb) && k.profile.shmemKeepsPoisonedPage;
  let ret = truncateErrorFolio(k, page, mapping);
  if (hasExtraRefcount(k, ps, page, extraPins)) ret = 'Failed';
  return ret;
}

/** me_pagecache_dirty(): record the lost write in the mapping, then as clean. */
function mePagecacheDirty(k: Kernel, ps: ErrorState, page: Page): MfResult {
  const mapping = page.mapping;
  if (mapping instanceof Inode) {
    mappingSetError(mapping);
    k.trail('me_pagecache_dirty', `mapping_set_error(-EIO) on inode ${mapping.ino}: fsync reports EIO${canWriteback(mapping.sb) ? '' : ' (not on tmpfs/ramfs)'}`);
  }
  // 6.1: SetPageError() on every page this handler sees (KPF_ERROR afterwards, §23 K2).
  if (k.profile.pgError) page.set(PG.error);
  return mePagecacheClean(k, ps, page);
}

/** me_swapcache_dirty(): keep it in the swap cache, so a later swap-in finds the poison. */
function meSwapcacheDirty(k: Kernel, ps: ErrorState, page: Page): MfResult {
  page.clear(PG.dirty | PG.uptodate);
  const isolated = deleteFromLruCache(page);
  let ret: MfResult = isolated ? 'Delayed' : 'Failed';
  if (hasExtraRefcount(k, ps, page, isolated)) ret = 'Failed';
  k.trail('me_swapcache_dirty', 'kept in the swap cache without PG_uptodate: the next swap-in of this entry gets SIGBUS');
  return ret;
}

/** me_swapcache_clean(): drop it from the swap cache; the swap device has a good copy. */
function meSwapcacheClean(k: Kernel, ps: ErrorState, page: Page): MfResult {
  k.swap.deleteFromSwapCache(page);
  let ret: MfResult = deleteFromLruCache(page) ? 'Recovered' : 'Failed';
  if (hasExtraRefcount(k, ps, page, false)) ret = 'Failed';
  k.trail('me_swapcache_clean', 'deleted from the swap cache: the next access swaps in the good copy');
  return ret;
}

function matchState(flags: number): ErrorState {
  for (const ps of ERROR_STATES) if ((flags & ps.mask) === ps.res) return ps;
  return ERROR_STATES[ERROR_STATES.length - 1]!;
}

function flagNames(flags: number): string {
  const names = Object.entries(PG)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([n]) => n);
  return names.length ? names.join('|') : '0';
}

/** identify_page_state(): current flags first; on the catch-all, the snapshot | current dirty. */
function identifyPageState(k: Kernel, pfn: number, page: Page, snapshot: number): number {
  let ps = matchState(page.flags);
  let pass = 'current flags';
  if (ps.mask === 0) {
    ps = matchState(snapshot | (page.flags & PG.dirty));
    pass = 'saved flags (first pass hit the catch-all)';
  }
  k.trail('identify_page_state', `page state ${flagNames(page.flags)} -> error_states row "${MF_MSG[ps.type]}" (${pass}) -> ${ps.handlerName}`, { flags: page.flags, snapshot });
  const result = ps.handler(k, ps, page);
  return actionResult(k, pfn, ps.type, result);
}

// ---- memory_failure ------------------------------------------------------------------------

/** HWPoisonHandlable(): LRU or free buddy pages (movable_ops pages are not modelled). */
function handlable(page: Page): boolean {
  if (page.test(PG.slab)) return false;
  return page.test(PG.lru) || (page.test(PG.buddy) && page.refcount === 0);
}

/**
 * get_hwpoison_page() / get_any_page(): 1 = reference taken on a handlable in-use page; 0 = free
 * page; <0 = unhandlable (logged "unhandlable page.", with pr_fmt "Memory failure: " also when
 * called from soft offline).
 */
export function getHwpoisonPage(k: Kernel, page: Page, _flags: number): number {
  const folio = page.folio();
  if (folio.test(PG.buddy) && folio.refcount === 0) {
    k.trail('get_hwpoison_page', 'refcount 0, free buddy page (per-CPU lists drained)');
    return 0;
  }
  if (!handlable(folio) || folio.refcount === 0) {
    mfLog(k, page.pfn, 'unhandlable page.');
    k.trail('get_hwpoison_page', `unhandlable ${folio.kind} page (not LRU, not free): -EIO after 3 retries`);
    return -EIO;
  }
  folio.refcount++;
  k.trail('get_hwpoison_page', `took a reference on an in-use ${folio.kind} LRU page`);
  return 1;
}

export class KernelPanic extends Error {}

function describeFlags(flags: number): string {
  const names: [number, string][] = [
    [MF_COUNT_INCREASED, 'MF_COUNT_INCREASED'],
    [MF_ACTION_REQUIRED, 'MF_ACTION_REQUIRED'],
    [MF_MUST_KILL, 'MF_MUST_KILL'],
    [MF_SOFT_OFFLINE, 'MF_SOFT_OFFLINE'],
    [MF_SW_SIMULATED, 'MF_SW_SIMULATED'],
  ];
  const s = names.filter(([f]) => flags & f).map(([, n]) => n);
  return s.length ? s.join('|') : '0';
}

/** memory_failure(pfn, flags): returns 0 or -errno (kernel-model.md §3.1). */
export function memoryFailure(k: Kernel, pfn: number, flags: number): number {
  if (k.sysctl.recovery === 0) {
    k.trail('memory_failure', 'vm.memory_failure_recovery=0: panic');
    k.panic(`Memory failure on page ${hex(pfn)}`);
  }
  // hw_memory_failure only exists since ≈5.19 (with MF_SW_SIMULATED).
  if (k.profile.swSimulated && !(flags & MF_SW_SIMULATED)) {
    if (!k.hwMemoryFailure) k.trail('memory_failure', 'hardware-originated memory failure: unpoison is disabled from now on');
    k.hwMemoryFailure = true;
  }
  k.trail('memory_failure', `pfn ${hexPfn(pfn)} flags ${describeFlags(flags)}`);
  const p = k.alloc.pfnToPage(pfn);
  if (!p) {
    mfLog(k, pfn, 'memory outside kernel control');
    k.trail('memory_failure', 'pfn is not online RAM: -ENXIO');
    return -ENXIO;
  }
  return memoryFailureOnPage(k, pfn, p, flags, true);
}

/** put_ref_page(): drop the caller's (madvise's) reference on early exits. */
function putRefPage(k: Kernel, p: Page, flags: number): void {
  if (flags & MF_COUNT_INCREASED) {
    const f = p.folio();
    if (f.refcount > 0) f.refcount--;
    void k;
  }
}

function memoryFailureOnPage(k: Kernel, pfn: number, p: Page, flags: number, firstTry: boolean): number {
  if (hooks.hugetlb) {
    const r = hooks.hugetlb(k, pfn, p, flags);
    if (r !== undefined) return r;
  }
  // TestSetPageHWPoison
  if (p.test(PG.hwpoison)) return alreadyPoisoned(k, pfn, p, flags);
  p.set(PG.hwpoison);
  countAtTestSet(k, pfn, 1, 'TestSetPageHWPoison');
  if (!(flags & MF_COUNT_INCREASED)) {
    const r = getHwpoisonPage(k, p, flags);
    if (r === 0) {
      mfTunables(k).races.afterGetFreePage?.(p);
      if (p.test(PG.buddy) && p.refcount === 0) {
        mfTunables(k).races.beforeTakeOffBuddy?.(p);
        if (k.alloc.takeOffBuddy(p)) {
          p.refcount++;
          k.trail('memory_failure', 'free buddy page taken off the free lists for good');
          return actionResult(k, pfn, 'BUDDY', 'Recovered');
        }
        if (firstTry) {
          k.trail('memory_failure', 'lost the race with an allocation: PG_hwpoison cleared, retrying once as an in-use page');
          p.clear(PG.hwpoison);
          countAtTestSet(k, pfn, -1, 'lost the buddy race, retrying');
          return memoryFailureOnPage(k, pfn, p, flags, false);
        }
        return actionResult(k, pfn, 'BUDDY', 'Failed');
      }
      k.trail('memory_failure', 'page left the free lists inside a higher-order allocation');
      return actionResult(k, pfn, 'KERNEL_HIGH_ORDER', 'Ignored');
    }
    if (r < 0) return actionResult(k, pfn, 'GET_HWPOISON', 'Ignored');
  }
  let folio = p.folio();
  const isThp = folio.order > 0 && !folio.hugetlb;
  // v6.11+: hwpoison_filter() before the THP split, on the raw page, folio locked.
  if (k.profile.filterBeforeThpSplit && filterRejects(k, p, flags)) return -EOPNOTSUPP;
  if (isThp) {
    folio.hasHwpoisoned = true;
    const err = hooks.splitThp ? hooks.splitThp(k, p) : -EBUSY;
    if (err) {
      k.trail('memory_failure', `THP split failed (${err})`);
      if (k.profile.thpUnsplitSignals) {
        // kill_procs_now(): collect and signal with forcekill, lsb of the whole folio.
        const tokill = collectProcs(k, p, (flags & MF_ACTION_REQUIRED) !== 0);
        killProcs(k, tokill, true, false, pfn, flags);
        putRefPage(k, p, MF_COUNT_INCREASED);
        actionResult(k, pfn, 'UNSPLIT_THP', 'Failed');
        return -EHWPOISON;
      }
      // ≤6.10: try_to_split_thp_page() drops the reference; before 6.1 it also logged
      // "Memory Failure: %#lx: thp split failed" (6.1 kept that line for soft offline only).
      if (k.profile.mfThpSplitMsg) k.log.print('info', `${k.profile.mfPrFmt ? 'Memory failure: ' : ''}Memory Failure: ${hexPfn(pfn)}: thp split failed`);
      putRefPage(k, p, MF_COUNT_INCREASED);
      return actionResult(k, pfn, 'UNSPLIT_THP', 'Ignored');
    }
    folio = p.folio();
    k.trail('memory_failure', 'THP split: handling the 4 KiB page alone');
  }
  // ≤6.10: the filter runs after the split (and after shake_page/lock).
  if (!k.profile.filterBeforeThpSplit && filterRejects(k, p, flags)) return -EOPNOTSUPP;
  const page = p.folio();
  // shake_folio(): pages in per-CPU LRU-add batches become LRU pages; the model keeps them on the LRU.
  mfTunables(k).races.beforeLock?.(page);
  const snapshot = page.flags;
  if (!page.test(PG.lru) && !page.test(PG.writeback)) {
    k.trail('memory_failure', 'not an LRU page: classified by its flags without unmapping');
    return identifyPageState(k, pfn, page, snapshot);
  }
  if (page.test(PG.writeback)) {
    // folio_wait_writeback(): the write completes; the page is clean and on disk now.
    page.clear(PG.writeback | PG.dirty);
    if (page.mapping instanceof Inode) page.mapping.disk.set(page.index, page.data);
    k.trail('memory_failure', 'waited for writeback: the page is clean now');
  }
  if (!hwpoisonUserMappings(k, p, pfn, flags)) {
    return actionResult(k, pfn, 'UNMAP_FAILED', k.profile.unmapFailureSigbus ? 'Failed' : 'Ignored');
  }
  mfTunables(k).races.afterUnmap?.(page);
  if (page.test(PG.lru) && !page.test(PG.swapcache) && page.mapping === null) {
    k.trail('memory_failure', 'page was truncated concurrently');
    return actionResult(k, pfn, 'TRUNCATED_LRU', 'Ignored');
  }
  return identifyPageState(k, pfn, page, snapshot);
}

/** hwpoison_filter() inside memory_failure: PG_hwpoison and PG_locked are set while it runs. */
function filterRejects(k: Kernel, p: Page, _flags: number): boolean {
  const folio = p.folio();
  const wasLocked = folio.test(PG.locked);
  folio.set(PG.locked);
  const rejected = k.hwpoisonFilter(p, true);
  if (!wasLocked) folio.clear(PG.locked);
  if (!rejected) return false;
  p.clear(PG.hwpoison);
  countAtTestSet(k, p.pfn, -1, 'filtered: TestClearPageHWPoison');
  if (folio.refcount > 0) folio.refcount--;
  k.trail('hwpoison_filter', 'page rejected by the corrupt-filter (evaluated with PG_hwpoison|PG_locked): PG_hwpoison cleared, -EOPNOTSUPP, nothing logged');
  return true;
}

/** The TestSetPageHWPoison() path: the page already had PG_hwpoison (§3.1 step 6, §23 K1). */
function alreadyPoisoned(k: Kernel, pfn: number, p: Page, flags: number): number {
  const style = k.profile.alreadyPoisoned;
  k.trail('memory_failure', `page already poisoned (${style})`);
  let res = -EHWPOISON;
  if (style === 'already-hardware-poisoned' || style === 'already-poisoned-counted') {
    mfLog(k, pfn, 'already hardware poisoned');
  }
  if (flags & MF_ACTION_REQUIRED) res = killAccessingProcess(k, pfn, flags);
  putRefPage(k, p, flags);
  if (style !== 'already-hardware-poisoned') actionResult(k, pfn, 'ALREADY_POISONED', 'Failed');
  return res;
}

/** memory_failure_queue(): a per-CPU fifo of 16 entries drained by a work item. */
export function memoryFailureQueue(k: Kernel, pfn: number, flags: number, cpu: number): void {
  const q = k.mfQueue(cpu);
  if (q.length >= 16) {
    k.log.print('err', `Memory failure: buffer overflow when queuing memory failure at ${hexPfn(pfn)}`);
    k.trail('memory_failure_queue', `cpu ${cpu} fifo full (16 entries): pfn ${hexPfn(pfn)} dropped`);
    return;
  }
  q.push({ pfn, flags });
  k.trail('memory_failure_queue', `pfn ${hexPfn(pfn)} queued on cpu ${cpu} (${q.length}/16)`);
  if (q.length === 1) k.scheduleWork(() => memoryFailureWorkFunc(k, cpu));
}

/** memory_failure_work_func(). */
function memoryFailureWorkFunc(k: Kernel, cpu: number): void {
  const q = k.mfQueue(cpu);
  while (q.length) {
    const e = q.shift()!;
    if (e.flags & MF_SOFT_OFFLINE) softOfflinePage(k, e.pfn, e.flags);
    else memoryFailure(k, e.pfn, e.flags);
  }
}

// ---- unpoison -------------------------------------------------------------------------------

/** unpoison_pr_info(): "Unpoison: %#lx: text" (≥ ≈6.2) or 6.1's "Unpoison: Text %#lx"; 5 s / 10 lines. */
function unpoisonLog(k: Kernel, pfn: number, newText: string, oldText: string): void {
  const text = k.profile.unpoisonMsgNew ? `Unpoison: ${hexPfn(pfn)}: ${newText}` : `Unpoison: ${oldText} ${hexPfn(pfn)}`;
  k.log.printRatelimited('unpoison', k.now, 5, 10, 'info', text);
}

/** unpoison_memory(pfn) (kernel-model.md §10): checks in the kernel's order, first failure decides. */
export function unpoisonMemory(k: Kernel, pfn: number): number {
  const p = k.alloc.pfnToPage(pfn);
  if (!p) {
    k.trail('unpoison_memory', `pfn ${hexPfn(pfn)} is not online RAM: -EIO`);
    return -EIO;
  }
  const folio = p.folio();
  // ≤5.18 (unpoisonLegacy): every refusal returns 0.
  const legacy = k.profile.unpoisonLegacy;
  const refuse = (why: string, ret = -EBUSY): number => {
    const r = legacy ? 0 : ret;
    k.trail('unpoison_memory', `refused: ${why}${legacy && ret !== 0 ? ' (returns 0 before 5.19)' : ''}`, { pfn: hexPfn(pfn) });
    return r;
  };
  if (k.hwMemoryFailure && k.profile.unpoisonDisabledAfterHw) {
    unpoisonLog(k, pfn, 'disabled after HW memory failure', 'Disabled after HW memory failure');
    return refuse('a hardware memory failure happened since boot', -EOPNOTSUPP);
  }
  if (!p.test(PG.hwpoison)) {
    unpoisonLog(k, pfn, 'page was already unpoisoned', 'Page was already unpoisoned');
    return refuse(folio.hugetlb && folio !== p ? 'PG_hwpoison lives on the hugetlb head page' : 'page not poisoned');
  }
  // The shared zero page is not refcounted by its mappings.
  const refs = folio.kind === 'zero' ? 1 : folio.refcount;
  if (refs > 1) {
    unpoisonLog(k, pfn, 'someone grabs the hwpoison page', 'Someone grabs the hwpoison page');
    return refuse(`refcount ${folio.refcount}: still held (page cache, swap cache, pin, or still mapped)`);
  }
  if (folio.test(PG.slab) || folio.kind === 'pgtable' || folio.test(PG.pgtable) || folio.test(PG.reserved) || folio.test(PG.offline)) {
    return refuse(`${folio.kind} page (silent)`);
  }
  if (folio.mapcount > 0) {
    unpoisonLog(k, pfn, 'someone maps the hwpoison page', 'Someone maps the hwpoison page');
    return refuse('still mapped');
  }
  if (folio.mapping instanceof Inode || folio.test(PG.swapcache)) {
    unpoisonLog(k, pfn, 'the hwpoison page has non-NULL mapping', 'the hwpoison page has non-NULL mapping');
    return refuse('still in the page cache or swap cache');
  }
  if (legacy && !folio.hugetlb && folio.order > 0) {
    // ≤5.18: a THP here means memory_failure() is still working on it.
    unpoisonLog(k, pfn, '', 'Memory failure is now running on');
    return refuse('THP: memory_failure() is running on it');
  }
  if (legacy && p.refcount === 0 && p.private !== MAGIC_HWPOISON) {
    // ≤5.18: get_hwpoison_page() == 0 (a free page that still has PG_hwpoison).
    p.clear(PG.hwpoison);
    k.numPoisonedPages--;
    unpoisonedPfns(k).add(p.pfn);
    unpoisonLog(k, pfn, '', 'Software-unpoisoned free page');
    k.trail('unpoison_memory', `free page ${hexPfn(pfn)} unpoisoned (HardwareCorrupted -4 kB)`);
    return 0;
  }
  let count = 1;
  if (folio.hugetlb) {
    // folio_free_raw_hwp(): hugetlb.ts owns the raw error list.
    count = hooks.unpoisonHugetlb ? hooks.unpoisonHugetlb(k, folio) : 0;
    if (count === 0) return refuse('hugetlb raw error list empty or unreliable');
  } else if (p.private === MAGIC_HWPOISON) {
    // get_hwpoison_page(MF_UNPOISON) == -EHWPOISON: put_page_back_buddy().
    if (!k.alloc.putBackBuddy(p)) return refuse('could not put the page back to buddy');
    k.trail('unpoison_memory', 'taken-off free page returned to the buddy allocator');
  } else {
    // In-use page held only by memory_failure's reference: clear the flag and free it.
    p.clear(PG.hwpoison);
    if (p.refcount > 0) {
      p.refcount = 0;
      k.alloc.free(p);
      k.trail('unpoison_memory', `${p.kind === 'free' ? '' : p.kind + ' '}page freed to the buddy allocator`);
    }
  }
  k.numPoisonedPages -= count;
  unpoisonedPfns(k).add(p.pfn);
  unpoisonLog(k, p.pfn, 'software-unpoisoned page', 'Software-unpoisoned page');
  k.trail('unpoison_memory', `pfn ${hexPfn(pfn)} unpoisoned (HardwareCorrupted -${4 * count} kB; mf_stats unchanged)`);
  return 0;
}

// ---- soft offline ---------------------------------------------------------------------------

/** Soft offline lines: 6.12 "Soft offline: %#lx: text"; 6.1 has per-call-site prefixes. */
function softLog(k: Kernel, pfn: number, text: string, old: string): void {
  k.log.print('info', k.profile.softOfflineMsgNew ? `Soft offline: ${hexPfn(pfn)}: ${text}` : old);
}

/** page_handle_poison(): mark the old page poisoned, keep a reference, count it (no mf_stats). */
function pageHandlePoison(k: Kernel, page: Page): void {
  page.set(PG.hwpoison);
  k.numPoisonedPages++;
  k.trail('page_handle_poison', `pfn ${hexPfn(page.pfn)} poisoned (HardwareCorrupted +4 kB)`);
}

/** soft_offline_page(pfn, flags) (kernel-model.md §9). With MF_COUNT_INCREASED the caller's reference is consumed. */
export function softOfflinePage(k: Kernel, pfn: number, flags: number): number {
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= k.alloc.layout.maxPfn) return -ENXIO;
  const page = k.alloc.pfnToPage(pfn);
  if (!page) return -EIO;
  const putRef = (): void => putRefPage(k, page, flags);
  if (k.profile.enableSoftOfflineMax !== undefined) {
    const v = k.sysctl.enableSoftOffline;
    if (!(v & 1)) {
      k.log.printOnce('info', 'Soft offline: disabled by /proc/sys/vm/enable_soft_offline');
      k.trail('soft_offline_page', 'vm.enable_soft_offline=0: -EOPNOTSUPP');
      putRef();
      return -EOPNOTSUPP;
    }
    if (v & 2 && page.folio().hugetlb) {
      k.log.printOnce('info', 'Soft offline: disabled for HugeTLB pages by /proc/sys/vm/enable_soft_offline');
      k.trail('soft_offline_page', 'vm.enable_soft_offline bit 1: hugetlb pages refused');
      putRef();
      return -EOPNOTSUPP;
    }
  }
  if (page.test(PG.hwpoison)) {
    softLog(k, pfn, 'page already poisoned', `soft_offline_page: ${hexPfn(pfn)} page already poisoned`);
    k.trail('soft_offline_page', 'page already poisoned: nothing to do, 0');
    putRef();
    return 0;
  }
  if (page.folio().hugetlb && hooks.softOfflineHugetlb) return hooks.softOfflineHugetlb(k, page, flags);
  let f = flags;
  for (let attempt = 0; ; attempt++) {
    let r: number;
    if (f & MF_COUNT_INCREASED) {
      // get_any_page() with the caller's reference: a page it cannot handle is put and re-got.
      if (handlable(page.folio()) || page.folio().hugetlb) r = 1;
      else {
        putRefPage(k, page, f);
        f &= ~MF_COUNT_INCREASED;
        r = getHwpoisonPage(k, page, f | MF_SOFT_OFFLINE);
      }
    } else {
      r = getHwpoisonPage(k, page, f | MF_SOFT_OFFLINE);
    }
    if (k.hwpoisonFilter(page, false)) {
      if (r > 0) page.folio().refcount--;
      k.trail('soft_offline_page', 'rejected by the hwpoison filter: -EOPNOTSUPP');
      return -EOPNOTSUPP;
    }
    if (r > 0) return softOfflineInUsePage(k, page);
    if (r < 0) return r;
    // A free page: dissolve (hugetlb) and take it off buddy.
    if (k.alloc.takeOffBuddy(page)) {
      page.refcount++;
      pageHandlePoison(k, page);
      k.trail('soft_offline_page', 'free page taken off the buddy allocator');
      return 0;
    }
    if (attempt > 0) return -EBUSY;
    f &= ~MF_COUNT_INCREASED;
  }
}

/** soft_offline_in_use_page(): invalidate a clean unmapped page-cache page, else migrate. */
function softOfflineInUsePage(k: Kernel, page: Page): number {
  const pfn = page.pfn;
  let folio = page.folio();
  const huge = folio.hugetlb !== null;
  if (!huge && folio.order > 0) {
    const err = hooks.splitThp ? hooks.splitThp(k, page) : -EBUSY;
    if (err) {
      if (k.profile.softOfflineMsgNew) softLog(k, pfn, 'thp split failed', '');
      else k.log.print('info', `${k.profile.mfPrFmt ? 'Memory failure: ' : ''}soft offline: ${hexPfn(pfn)}: thp split failed`);
      folio.refcount--;
      k.trail('soft_offline_page', 'THP could not be split: -EBUSY');
      return -EBUSY;
    }
    folio = page.folio();
  }
  // mapping_evict_folio() for a clean, unmapped, unreferenced page-cache page.
  const mapping = page.mapping;
  if (!huge && mapping instanceof Inode && !page.test(PG.swapcache) && page.test(PG.lru) && !page.test(PG.dirty) && !page.test(PG.writeback) && page.mapcount === 0 && page.refcount <= 2 && canWriteback(mapping.sb)) {
    removeFromPageCache(k, page, mapping);
    deleteFromLruCache(page);
    softLog(k, pfn, 'invalidated', `soft_offline: ${hexPfn(pfn)}: invalidated`);
    page.refcount = 1;
    pageHandlePoison(k, page);
    return 0;
  }
  // mf_isolate_folio() drops the get_any_page() reference; migrate_pages() moves the data.
  folio.refcount--;
  const ret = k.migratePage(page);
  if (ret !== 0) {
    const kind = huge ? 'hugepage' : 'page';
    // 5.x: "type %lx (%pGp)"; 6.x: "type %pGp".
    const type = k.profile.softOfflineTypeHex ? `${page.flags.toString(16)} (${pgFlagsString(page)})` : pgFlagsString(page);
    softLog(k, pfn, `${kind} migration failed ${ret}, type ${type}`, `soft offline: ${hexPfn(pfn)}: ${kind} migration failed ${ret}, type ${type}`);
    k.trail('soft_offline_page', `migration failed (${ret})`);
    return ret > 0 ? -EBUSY : ret;
  }
  pageHandlePoison(k, page);
  k.trail('soft_offline_page', `pfn ${hexPfn(pfn)} migrated to a new page; no signal, data intact`);
  return 0;
}

/** %pGp: flags as 0x<hex>(name|name|...|node=N|zone=M). */
export function pgFlagsString(page: Page): string {
  const names = Object.entries(PG)
    .filter(([, bit]) => page.test(bit))
    .map(([n]) => n);
  return `0x${page.flags.toString(16)}(${[...names, `node=${page.nid}`, 'zone=2'].join('|')})`;
}

/** Is this VMA mlocked (used by tests and the trail). */
export function vmaLocked(flags: number): boolean {
  return (flags & VM_LOCKED) !== 0;
}

export { PAGE_SIZE };
