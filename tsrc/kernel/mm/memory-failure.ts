// mm/memory-failure.c: what Linux does when a page is declared corrupted (hwpoison), for the
// kernel version the machine runs (kernel-model.md §2–5, §9–11; the profile switches in
// ../profiles.ts). Entry points: memoryFailure(), unpoisonMemory(), softOfflinePage(),
// memoryFailureQueue().
import type { Kernel } from '../kernel.js';
import { EBUSY, EFAULT, EHWPOISON, EIO, ENXIO, EOPNOTSUPP } from '../errno.js';
import { canWriteback, hasErrorRemoveFolio, Inode, isShmemFs, mappingSetError } from '../fs.js';
import { hexPfn } from '../printk.js';
import { BUS_MCEERR_AO, BUS_MCEERR_AR, PF_MCE_EARLY, PF_MCE_PROCESS, SIGKILL, type Process, type Task } from '../sched.js';
import { AnonVma, PAGE_SIZE } from './mm.js';
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
}

export const hooks: MemoryFailureHooks = {};

export interface ToKill {
  task: Task;
  addr: number;
  /** -EFAULT address: no user address found. */
  addrValid: boolean;
  sizeShift: number;
}

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
  const counted = type !== 'ALREADY_POISONED' || k.profile.alreadyPoisoned === 'already-poisoned-counted';
  if (counted) {
    k.numPoisonedPages++;
    const nid = k.alloc.layout.nodeOf(pfn);
    const st = k.mfStats(nid);
    st.total++;
    st[result.toLowerCase() as 'ignored' | 'failed' | 'delayed' | 'recovered']++;
  }
  k.coverage.errorStates.add(type);
  mfLog(k, pfn, `recovery action for ${typeString(k, type)}: ${result}`);
  k.trail('action_result', `${typeString(k, type)}: ${result}`, { pfn: hexPfn(pfn), type, result });
  return result === 'Recovered' || result === 'Delayed' ? 0 : -EBUSY;
}

// ---- who gets signalled ---------------------------------------------------------------------

/** task_early_kill() / find_early_kill_thread() (≥5.9): the thread that gets an AO, if any. */
export function taskEarlyKill(k: Kernel, proc: Process, forceEarly: boolean): Task | undefined {
  if (!proc.mm || !proc.alive || proc.exiting) return undefined;
  const cur = k.current;
  if (forceEarly && cur && cur.group.mm === proc.mm) return cur;
  for (const t of proc.threads) {
    if (t.flags & PF_MCE_PROCESS) {
      if (t.flags & PF_MCE_EARLY) return t;
    } else if (k.sysctl.earlyKill) {
      return t;
    }
  }
  return undefined;
}

/**
 * collect_procs(): one to-kill entry per VMA of a selected process that maps the page. Anon:
 * only VMAs where the page is really mapped; file/shmem: every VMA covering the offset, even
 * where the pte was never populated.
 */
export function collectProcs(k: Kernel, page: Page, forceEarly: boolean): ToKill[] {
  const folio = page.folio();
  if (!folio.mapping) return [];
  if (folio.ksm && hooks.collectKsm) return hooks.collectKsm(k, page, forceEarly);
  const anon = folio.mapping instanceof AnonVma;
  const mappers = vmasCovering(page).filter((m) => !anon || m.mapped);
  const shift = sizeShiftOf(folio);
  const out: ToKill[] = [];
  const chosen = new Map<Process, Task | undefined>();
  // for_each_process order: processes in creation order; then VMAs in the order the rmap walk finds them.
  const byProc = new Map<Process, typeof mappers>();
  for (const m of mappers) {
    const proc = k.procOfMm(m.vma.mm);
    if (!proc) continue;
    const list = byProc.get(proc) ?? [];
    list.push(m);
    byProc.set(proc, list);
  }
  const procs = [...byProc.keys()].sort((a, b) => a.pid - b.pid);
  for (const proc of procs) {
    if (!chosen.has(proc)) chosen.set(proc, taskEarlyKill(k, proc, forceEarly));
    const t = chosen.get(proc);
    if (!t) {
      k.trail('collect_procs', `${proc.comm}:${proc.pid} not collected (late kill)`);
      continue;
    }
    for (const m of byProc.get(proc)!) {
      out.push({ task: t, addr: m.addr, addrValid: true, sizeShift: shift });
      k.trail('collect_procs', `collected ${t.comm}:${t.tid} at ${hexPfn(m.addr)}`, { early: !forceEarly || t !== k.current });
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
  } else {
    k.sendSigMceerr(t, BUS_MCEERR_AO, tk.addr, tk.sizeShift);
  }
}

/** kill_procs(): signal every collected entry when forcekill, else drop the list. */
export function killProcs(k: Kernel, tokill: ToKill[], forcekill: boolean, unmapFailed: boolean, pfn: number, flags: number): void {
  if (!forcekill) {
    if (tokill.length) k.trail('kill_procs', 'forcekill is false: nobody signalled');
    return;
  }
  for (const tk of tokill) {
    // Before 6.11 a failed unmap killed every collected process with SIGKILL.
    if (!tk.addrValid || (unmapFailed && !k.profile.unmapFailureSigbus)) {
      mfLog(k, pfn, `forcibly killing ${tk.task.comm}:${tk.task.tid} because of failure to unmap corrupted page`);
      k.sendSignal(tk.task, { signo: SIGKILL, code: 0x80 }, true);
    } else {
      killProc(k, tk, pfn, flags);
    }
  }
}

/** kill_accessing_process(): AR on an already-poisoned page, to where current maps it. */
function killAccessingProcess(k: Kernel, pfn: number, flags: number): number {
  const cur = k.current;
  if (!cur?.group.mm) return -EFAULT;
  const mm = cur.group.mm;
  let found: { addr: number; shift: number } | undefined;
  for (const [vpn, pte] of [...mm.ptes.entries()].sort((a, b) => a[0] - b[0])) {
    if ((pte.kind === 'present' || pte.kind === 'hwpoison') && pte.pfn === pfn) {
      const vma = mm.findVma(vpn * PAGE_SIZE);
      const shift = vma?.pageShift ?? 12;
      const addr = shift > 12 ? Math.floor((vpn * PAGE_SIZE) / 2 ** shift) * 2 ** shift : vpn * PAGE_SIZE;
      found = { addr, shift };
      break;
    }
  }
  if (!found) return 0;
  killProc(k, { task: cur, addr: found.addr, addrValid: true, sizeShift: found.shift }, pfn, flags);
  return -EHWPOISON;
}

// ---- unmapping --------------------------------------------------------------------------------

/** hwpoison_user_mappings(): collect, unmap, decide forcekill, signal. Returns "unmap succeeded". */
function hwpoisonUserMappings(k: Kernel, page: Page, pfn: number, flags: number): boolean {
  const folio = page.folio();
  if (folio.test(PG.reserved) || folio.test(PG.slab) || folio.kind === 'pgtable') return true;
  if (!(folio.test(PG.lru) || folio.hugetlb)) return true;
  if (folio.mapcount === 0) {
    k.trail('hwpoison_user_mappings', 'page not mapped: nobody to signal');
    return true;
  }
  const tokill = collectProcs(k, page, (flags & MF_ACTION_REQUIRED) !== 0);
  const ok = unmapPoisonedFolio(k, folio, pfn, (flags & MF_MUST_KILL) !== 0);
  if (!ok) mfLog(k, pfn, `failed to unmap page (folio mapcount=${folio.mapcount})`);
  const forcekill = folio.test(PG.dirty) || (flags & MF_MUST_KILL) !== 0 || !ok;
  k.trail('hwpoison_user_mappings', `forcekill=${forcekill}`, { dirty: folio.test(PG.dirty), mustKill: (flags & MF_MUST_KILL) !== 0, unmapped: ok });
  killProcs(k, tokill, forcekill, !ok, pfn, flags);
  return ok;
}

/** unmap_poisoned_folio(). */
function unmapPoisonedFolio(k: Kernel, folio: Page, pfn: number, mustKill: boolean): boolean {
  let hwpoisonEntries = true;
  if (folio.test(PG.swapcache)) {
    mfLog(k, pfn, 'keeping poisoned page in swap cache');
    hwpoisonEntries = false;
  }
  const mapping = folio.mapping instanceof Inode ? folio.mapping : null;
  if (!mustKill && !folio.test(PG.dirty) && mapping && canWriteback(mapping.sb)) {
    if (folioMkclean(folio)) {
      folio.set(PG.dirty);
    } else {
      hwpoisonEntries = false;
      mfLog(k, pfn, 'corrupted page was clean: dropped without side effects', 'info');
    }
  }
  if (folio.pinned > 0 && !folio.hugetlb) {
    // A page pinned by GUP cannot lose its mappings in our model of try_to_unmap.
    return false;
  }
  tryToUnmap(k, folio, hwpoisonEntries);
  return folio.mapcount === 0;
}

// ---- identify_page_state and the handlers ------------------------------------------------------

function hasExtraRefcount(k: Kernel, ps: ErrorState, page: Page, extraPins: boolean): boolean {
  const count = page.refcount - 1 - (extraPins ? page.folio().nrPages() : 0);
  if (count > 0) {
    mfLog(k, page.pfn, `${typeString(k, ps.type)} still referenced by ${count} users`);
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

function meKernel(): MfResult {
  return 'Ignored';
}

function meUnknown(k: Kernel, _ps: ErrorState, page: Page): MfResult {
  mfLog(k, page.pfn, 'Unknown page state');
  return k.profile.meUnknownResult;
}

function meHugePage(k: Kernel, _ps: ErrorState, page: Page): MfResult {
  if (hooks.meHugePage) return hooks.meHugePage(k, page);
  return 'Failed';
}

/** truncate_error_folio(). */
function truncateErrorFolio(k: Kernel, page: Page, inode: Inode): MfResult {
  const sb = inode.sb;
  if (hasErrorRemoveFolio(sb)) {
    if (isShmemFs(sb) || sb.fs === 'hugetlbfs') {
      // shmem_error_remove_folio / hugetlbfs: returns 0 without removing: the page stays in the
      // file, poisoned, so later reads and faults see the poison.
      return 'Recovered';
    }
    // generic_error_remove_folio: a temporary hole punch of a regular file.
    removeFromPageCache(k, page, inode);
    return 'Recovered';
  }
  // No error_remove_folio (ramfs, block device cache): mapping_evict_folio.
  if (!page.test(PG.dirty) && !page.test(PG.writeback) && page.mapcount === 0 && !inode.unevictable && page.refcount <= 2) {
    removeFromPageCache(k, page, inode);
    return 'Recovered';
  }
  mfLog(k, page.pfn, 'Failed to invalidate', 'info');
  return 'Failed';
}

function removeFromPageCache(k: Kernel, page: Page, inode: Inode): void {
  if (inode.cache.get(page.index) === page) {
    inode.cache.delete(page.index);
    page.refcount--;
  }
  page.mapping = null;
  page.clear(PG.dirty);
  k.trail('truncate_error_folio', `removed index ${page.index} of inode ${inode.ino} from the page cache`);
}

/** me_pagecache_clean(). */
function mePagecacheClean(k: Kernel, ps: ErrorState, page: Page): MfResult {
  deleteFromLruCache(page);
  if (page.isAnon()) return 'Recovered';
  const mapping = page.mapping;
  if (!(mapping instanceof Inode)) return 'Failed';
  let ret = truncateErrorFolio(k, page, mapping);
  const extraPins = isShmemFs(mapping.sb);
  if (hasExtraRefcount(k, ps, page, extraPins)) ret = 'Failed';
  return ret;
}

/** me_pagecache_dirty(): record the lost write in the mapping, then as clean. */
function mePagecacheDirty(k: Kernel, ps: ErrorState, page: Page): MfResult {
  const mapping = page.mapping;
  if (mapping instanceof Inode) mappingSetError(mapping);
  if (k.profile.pgError) page.set(PG.error);
  return mePagecacheClean(k, ps, page);
}

/** me_swapcache_dirty(): keep it in the swap cache, so a later swap-in finds the poison. */
function meSwapcacheDirty(k: Kernel, ps: ErrorState, page: Page): MfResult {
  page.clear(PG.dirty | PG.uptodate);
  const extraPins = deleteFromLruCache(page);
  if (hasExtraRefcount(k, ps, page, extraPins)) return 'Failed';
  return extraPins ? 'Delayed' : 'Failed';
}

/** me_swapcache_clean(): drop it from the swap cache; the swap device has a good copy. */
function meSwapcacheClean(k: Kernel, ps: ErrorState, page: Page): MfResult {
  k.swap.deleteFromSwapCache(page);
  deleteFromLruCache(page);
  if (hasExtraRefcount(k, ps, page, false)) return 'Failed';
  return 'Recovered';
}

function matchState(flags: number): ErrorState {
  for (const ps of ERROR_STATES) if ((flags & ps.mask) === ps.res) return ps;
  return ERROR_STATES[ERROR_STATES.length - 1]!;
}

/** identify_page_state(): current flags first; on the catch-all, the snapshot | current dirty. */
function identifyPageState(k: Kernel, pfn: number, page: Page, snapshot: number): number {
  let ps = matchState(page.flags);
  if (ps.mask === 0) ps = matchState(snapshot | (page.flags & PG.dirty));
  k.trail('identify_page_state', `matched error_states row "${MF_MSG[ps.type]}" -> ${ps.handlerName}`, { flags: page.flags, snapshot });
  const result = ps.handler(k, ps, page);
  return actionResult(k, pfn, ps.type, result);
}

// ---- memory_failure ------------------------------------------------------------------------

/** HWPoisonHandlable(). */
function handlable(page: Page, flags: number): boolean {
  if (page.test(PG.slab)) return false;
  return page.test(PG.lru) || page.test(PG.buddy) || ((flags & MF_SOFT_OFFLINE) !== 0 && page.kind !== 'reserved' && page.kind !== 'zero' && page.kind !== 'kernel' && page.kind !== 'pgtable');
}

/**
 * get_hwpoison_page() / get_any_page(): 1 = reference taken on a handlable in-use page; 0 = free
 * page; <0 = unhandlable (logged "unhandlable page.").
 */
export function getHwpoisonPage(k: Kernel, page: Page, flags: number): number {
  const folio = page.folio();
  if (folio.test(PG.buddy) && folio.refcount === 0) return 0;
  if (!handlable(folio, flags) || folio.refcount === 0) {
    mfLog(k, page.pfn, 'unhandlable page.');
    k.trail('get_hwpoison_page', `unhandlable ${folio.kind} page`);
    return -EIO;
  }
  folio.refcount++;
  return 1;
}

export class KernelPanic extends Error {}

/** memory_failure(pfn, flags): returns 0 or -errno. */
export function memoryFailure(k: Kernel, pfn: number, flags: number): number {
  if (k.sysctl.recovery === 0) {
    k.panic(`Memory failure on page ${pfn.toString(16)}`);
  }
  if (!(flags & MF_SW_SIMULATED)) k.hwMemoryFailure = true;
  k.trail('memory_failure', `pfn ${hexPfn(pfn)} flags ${describeFlags(flags)}`);
  const p = k.alloc.pfnToPage(pfn);
  if (!p) {
    mfLog(k, pfn, 'memory outside kernel control');
    return -ENXIO;
  }
  return memoryFailureOnPage(k, pfn, p, flags, true);
}

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

function memoryFailureOnPage(k: Kernel, pfn: number, p: Page, flags: number, firstTry: boolean): number {
  if (hooks.hugetlb) {
    const r = hooks.hugetlb(k, pfn, p, flags);
    if (r !== undefined) return r;
  }
  // TestSetPageHWPoison
  if (p.test(PG.hwpoison)) {
    k.trail('memory_failure', 'page already poisoned');
    if (k.profile.alreadyPoisoned === 'already-hardware-poisoned') {
      mfLog(k, pfn, 'already hardware poisoned');
      return flags & MF_ACTION_REQUIRED ? killAccessingProcess(k, pfn, flags) : -EHWPOISON;
    }
    let res = -EHWPOISON;
    if (flags & MF_ACTION_REQUIRED) res = killAccessingProcess(k, pfn, flags);
    actionResult(k, pfn, 'ALREADY_POISONED', 'Failed');
    return res;
  }
  p.set(PG.hwpoison);
  if (!(flags & MF_COUNT_INCREASED)) {
    const r = getHwpoisonPage(k, p, flags);
    if (r === 0) {
      if (k.alloc.takeOffBuddy(p)) {
        p.refcount++;
        k.trail('memory_failure', 'free buddy page taken off the free lists');
        return actionResult(k, pfn, 'BUDDY', 'Recovered');
      }
      if (firstTry) {
        p.clear(PG.hwpoison);
        return memoryFailureOnPage(k, pfn, p, flags, false);
      }
      return actionResult(k, pfn, 'BUDDY', 'Failed');
    }
    if (r < 0) return actionResult(k, pfn, 'GET_HWPOISON', 'Ignored');
  }
  const folio = p.folio();
  // hwpoison_filter(): with PG_hwpoison and PG_locked set on the raw page.
  const filterFirst = k.profile.filterBeforeThpSplit || folio.order === 0;
  if (filterFirst && k.hwpoisonFilter(p, true)) {
    p.clear(PG.hwpoison);
    folio.refcount--;
    k.trail('hwpoison_filter', 'page rejected by the filter: -EOPNOTSUPP');
    return -EOPNOTSUPP;
  }
  if (folio.order > 0 && !folio.hugetlb) {
    folio.hasHwpoisoned = true;
    const err = hooks.splitThp ? hooks.splitThp(k, p) : -EBUSY;
    if (err) {
      if (k.profile.thpUnsplitSignals) {
        const tokill = collectProcs(k, p, (flags & MF_ACTION_REQUIRED) !== 0);
        killProcs(k, tokill, true, false, pfn, flags);
        actionResult(k, pfn, 'UNSPLIT_THP', 'Failed');
        return -EHWPOISON;
      }
      mfLog(k, pfn, 'thp split failed');
      p.clear(PG.hwpoison);
      return actionResult(k, pfn, 'UNSPLIT_THP', 'Ignored');
    }
    if (!filterFirst && k.hwpoisonFilter(p, true)) {
      p.clear(PG.hwpoison);
      p.refcount--;
      return -EOPNOTSUPP;
    }
  }
  const page = p.folio();
  // shake_folio(): pages in per-CPU LRU-add batches become LRU pages; the model keeps them on the LRU.
  const snapshot = page.flags;
  if (!page.test(PG.lru) && !page.test(PG.writeback)) return identifyPageState(k, pfn, page, snapshot);
  if (page.test(PG.writeback)) {
    // folio_wait_writeback(): the write completes, the page is clean now.
    page.clear(PG.writeback | PG.dirty);
  }
  if (!hwpoisonUserMappings(k, p, pfn, flags)) {
    return actionResult(k, pfn, 'UNMAP_FAILED', k.profile.unmapFailureSigbus ? 'Failed' : 'Ignored');
  }
  if (page.test(PG.lru) && !page.test(PG.swapcache) && page.mapping === null) {
    return actionResult(k, pfn, 'TRUNCATED_LRU', 'Ignored');
  }
  return identifyPageState(k, pfn, page, snapshot);
}

/** memory_failure_queue(): a per-CPU fifo of 16 entries drained by a work item. */
export function memoryFailureQueue(k: Kernel, pfn: number, flags: number, cpu: number): void {
  const q = k.mfQueue(cpu);
  if (q.length >= 16) {
    k.log.print('err', `buffer overflow when queuing memory failure at ${hexPfn(pfn)}`);
    return;
  }
  q.push({ pfn, flags });
  k.scheduleWork(() => memoryFailureWorkFunc(k, cpu));
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

function unpoisonLog(k: Kernel, pfn: number, newText: string, oldText: string): void {
  const text = k.profile.unpoisonMsgNew ? `Unpoison: ${hexPfn(pfn)}: ${newText}` : `Unpoison: ${oldText} ${hexPfn(pfn)}`;
  k.log.printRatelimited('unpoison', k.now, 5, 10, 'info', text);
}

/** unpoison_memory(pfn) (kernel-model.md §10). */
export function unpoisonMemory(k: Kernel, pfn: number): number {
  const p = k.alloc.pfnToPage(pfn);
  if (!p) return -EIO;
  const folio = p.folio();
  if (k.hwMemoryFailure && k.profile.unpoisonDisabledAfterHw) {
    unpoisonLog(k, pfn, 'disabled after HW memory failure', 'Disabled after HW memory failure');
    return -EOPNOTSUPP;
  }
  const poisonedPage = folio.hugetlb ? folio : p;
  if (!poisonedPage.test(PG.hwpoison)) {
    unpoisonLog(k, pfn, 'page was already unpoisoned', 'Page was already unpoisoned');
    return -EBUSY;
  }
  if (folio.hugetlb && hooks.hugetlb) {
    // hugetlb unpoison is owned by hugetlb.ts through the same hook table.
  }
  if (folio.refcount > 1) {
    unpoisonLog(k, pfn, 'someone grabs the hwpoison page', 'Someone grabs the hwpoison page');
    return -EBUSY;
  }
  if (folio.test(PG.slab) || folio.kind === 'pgtable' || folio.test(PG.reserved) || folio.kind === 'zero' || folio.kind === 'kernel') return -EBUSY;
  if (folio.mapcount > 0) {
    unpoisonLog(k, pfn, 'someone maps the hwpoison page', 'Someone maps the hwpoison page');
    return -EBUSY;
  }
  if (folio.mapping instanceof Inode || folio.test(PG.swapcache)) {
    unpoisonLog(k, pfn, 'the hwpoison page has non-NULL mapping', 'the hwpoison page has non-NULL mapping');
    return -EBUSY;
  }
  if (folio.private === MAGIC_HWPOISON) {
    k.alloc.putBackBuddy(folio);
  } else {
    folio.clear(PG.hwpoison);
    folio.refcount = 0;
    k.alloc.free(folio);
  }
  k.numPoisonedPages--;
  unpoisonLog(k, folio.pfn, 'software-unpoisoned page', 'Software-unpoisoned page');
  k.trail('unpoison_memory', `pfn ${hexPfn(pfn)} unpoisoned`);
  return 0;
}

// ---- soft offline ---------------------------------------------------------------------------

function softLog(k: Kernel, pfn: number, text: string): void {
  k.log.print('info', `Soft offline: ${hexPfn(pfn)}: ${text}`);
}

/** page_handle_poison(): mark the old page poisoned and count it. */
function pageHandlePoison(k: Kernel, page: Page): void {
  page.set(PG.hwpoison);
  k.numPoisonedPages++;
}

/** soft_offline_page(pfn, flags) (kernel-model.md §9). */
export function softOfflinePage(k: Kernel, pfn: number, flags: number): number {
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= k.alloc.layout.maxPfn) return -ENXIO;
  const page = k.alloc.pfnToPage(pfn);
  if (!page) return -EIO;
  const max = k.profile.enableSoftOfflineMax;
  if (max !== undefined) {
    const v = k.sysctl.enableSoftOffline;
    if (!(v & 1)) {
      k.log.printOnce('info', 'Soft offline: disabled by /proc/sys/vm/enable_soft_offline');
      return -EOPNOTSUPP;
    }
    if (v & 2 && page.folio().hugetlb) {
      k.log.printOnce('info', 'Soft offline: disabled for HugeTLB pages by /proc/sys/vm/enable_soft_offline');
      return -EOPNOTSUPP;
    }
  }
  if (page.test(PG.hwpoison)) {
    if (k.profile.softOfflineMsgNew) softLog(k, pfn, 'page already poisoned');
    else k.log.print('info', `soft_offline_page: ${hexPfn(pfn)} page already poisoned`);
    return 0;
  }
  const folio = page.folio();
  let r: number;
  if (flags & MF_COUNT_INCREASED) r = 1;
  else r = getHwpoisonPage(k, page, flags | MF_SOFT_OFFLINE);
  if (k.hwpoisonFilter(page, false)) {
    if (r > 0 && !(flags & MF_COUNT_INCREASED)) folio.refcount--;
    return -EOPNOTSUPP;
  }
  if (r === 0) {
    if (k.alloc.takeOffBuddy(page)) {
      page.refcount++;
      pageHandlePoison(k, page);
      k.trail('soft_offline_page', 'free page taken off buddy');
      return 0;
    }
    return -EBUSY;
  }
  if (r < 0) return r;
  if (!(flags & MF_COUNT_INCREASED)) folio.refcount--;
  return softOfflineInUsePage(k, page);
}

/** soft_offline_in_use_page(): invalidate a clean unmapped page-cache page, else migrate. */
function softOfflineInUsePage(k: Kernel, page: Page): number {
  const pfn = page.pfn;
  const folio = page.folio();
  if (folio.order > 0 && !folio.hugetlb) {
    const err = hooks.splitThp ? hooks.splitThp(k, page) : -EBUSY;
    if (err) {
      softLog(k, pfn, 'thp split failed');
      return -EBUSY;
    }
  }
  const mapping = page.mapping;
  if (mapping instanceof Inode && !page.test(PG.swapcache) && !page.test(PG.dirty) && page.mapcount === 0 && canWriteback(mapping.sb) && !folio.hugetlb) {
    removeFromPageCache(k, page, mapping);
    deleteFromLruCache(page);
    softLog(k, pfn, 'invalidated');
    page.refcount = 1;
    pageHandlePoison(k, page);
    return 0;
  }
  const ret = k.migratePage(page);
  if (ret !== 0) {
    softLog(k, pfn, `page migration failed ${ret}, type ${pgFlagsString(page)}`);
    return ret > 0 ? -EBUSY : ret;
  }
  pageHandlePoison(k, page);
  k.trail('soft_offline_page', `pfn ${hexPfn(pfn)} migrated`);
  return 0;
}

/** %pGp: flags as 0x<hex>(name|name|...). */
export function pgFlagsString(page: Page): string {
  const names = Object.entries(PG)
    .filter(([, bit]) => page.test(bit))
    .map(([n]) => n);
  return `0x${page.flags.toString(16)}(${names.join('|')}|node=${page.nid}|zone=2)`;
}

export { PAGE_SIZE };
