// mm/hugetlb.c and fs/hugetlbfs/inode.c: the huge page pools (struct hstate), MAP_HUGETLB
// mappings, hugetlbfs files, the hugetlb fault path (hugetlb_fault / hugetlb_no_page /
// hugetlb_wp), and hugetlb's part of hwpoison handling: try_memory_failure_hugetlb(),
// __get_huge_page_for_hwpoison(), the raw error list, me_huge_page(), dissolve_free_hugetlb_folio(),
// soft offline (migration to another pool page) and unpoison of hugetlb folios
// (kernel-model.md §6, §18.1, §18.3, §23 K5/K7/K8).
import type { Kernel } from '../kernel.js';
import { EBUSY, EFAULT, EHWPOISON, EIO, ENOMEM, EOPNOTSUPP } from '../errno.js';
import { Inode, type SuperBlock } from '../fs.js';
import { hexPfn } from '../printk.js';
import { BUS_ADRERR, SIGBUS, type Process, type Task } from '../sched.js';
import { actionResult, collectProcs, countAtTestSet, hooks, killProcs, MF_ACTION_REQUIRED, MF_COUNT_INCREASED, MF_MUST_KILL, MF_NO_RETRY, pgFlagsString, type MfResult } from './memory-failure.js';
import { doSigbus, type AccessResult } from './memory.js';
import { AnonVma, PAGE_SHIFT, PAGE_SIZE, VM_HUGETLB, VM_SHARED, type MM, type Vma } from './mm.js';
import { MAGIC_HWPOISON, PG, type Page } from './page.js';
import { tryToUnmap, vmasCovering } from './rmap.js';

export type HugeShift = 21 | 30;

/** struct hstate: one pool per huge page size. */
export class Hstate {
  /** nr_hugepages (HugePages_Total). */
  nrHugePages = 0;
  /** free_huge_pages (HugePages_Free). */
  freeHugePages = 0;
  /** hugepage_freelists: free folios, most recently freed last (dequeued first). */
  readonly freeList: Page[] = [];
  constructor(readonly shift: HugeShift) {}
  get order(): number {
    return this.shift - PAGE_SHIFT;
  }
  get nrPages(): number {
    return 2 ** this.order;
  }
  /** Size in kB (Hugepagesize). */
  get kb(): number {
    return 2 ** (this.shift - 10);
  }
}

interface HugetlbState {
  hstates: Map<HugeShift, Hstate>;
  /** The internal hugetlbfs mount backing MAP_SHARED|MAP_HUGETLB (hugetlb_file_setup). */
  sb: SuperBlock;
}

const states = new WeakMap<Kernel, HugetlbState>();

/** hugetlb_init(): the per-kernel hugetlb state; installs the fault and free hooks. */
export function hugetlbState(k: Kernel): HugetlbState {
  let st = states.get(k);
  if (!st) {
    st = { hstates: new Map([[21, new Hstate(21)], [30, new Hstate(30)]]), sb: k.mountDevice('hugetlbfs-internal', 'hugetlbfs', 0, 0) };
    // The internal mount is not a device the case named.
    k.superblocks.delete('hugetlbfs-internal');
    states.set(k, st);
    k.hugetlbFault = (task, vma, addr, write) => hugetlbFault(k, task, vma, addr, write);
    k.alloc.freeHugeFolio = (folio) => freeHugeFolio(k, folio);
  }
  return st;
}

export function hstate(k: Kernel, shift: number): Hstate {
  const h = hugetlbState(k).hstates.get(shift === 30 ? 30 : 21);
  return h!;
}

function hstateOf(k: Kernel, folio: Page): Hstate {
  return hstate(k, folio.hugetlb?.size ?? 21);
}

function mfLog(k: Kernel, pfn: number, text: string, level: 'err' | 'info' = 'err'): void {
  k.log.print(level, `Memory failure: ${hexPfn(pfn)}: ${text}`);
}

// ---- pools ------------------------------------------------------------------------------------

/** alloc_pool_huge_folio(): a fresh huge page from the buddy allocator, into the free pool. */
function allocPoolFolio(k: Kernel, h: Hstate): boolean {
  const nid = k.alloc.layout.nodes.length > 1 ? (h.nrHugePages % k.alloc.layout.nodes.length) : 0;
  const head = k.alloc.allocContig(h.order, nid) ?? (nid !== 0 ? k.alloc.allocContig(h.order, 0) : undefined);
  if (!head) return false;
  head.kind = 'hugetlb';
  head.hugetlb = { free: true, size: h.shift, rawErrors: [] };
  head.refcount = 0;
  h.nrHugePages++;
  h.freeHugePages++;
  h.freeList.push(head);
  return true;
}

/**
 * set_max_huge_pages(): writing nr_hugepages grows the pool from the buddy allocator or shrinks
 * it by dissolving free huge pages. Returns the resulting pool size.
 */
export function hugetlbSetPool(k: Kernel, shift: number, count: number): number {
  const h = hstate(k, shift);
  while (h.nrHugePages < count) if (!allocPoolFolio(k, h)) break;
  while (h.nrHugePages > count) {
    const f = h.freeList.find((x) => !x.test(PG.hwpoison));
    if (!f || dissolveFreeHugetlbFolio(k, f) !== 0) break;
  }
  k.trail('hugetlb', `nr_hugepages (${h.kb} kB) = ${h.nrHugePages}`);
  return h.nrHugePages;
}

/** dequeue_hugetlb_folio_nodemask(): a free pool folio, never a poisoned one. */
function dequeueHugeFolio(k: Kernel, h: Hstate): Page | undefined {
  for (let i = h.freeList.length - 1; i >= 0; i--) {
    const f = h.freeList[i]!;
    if (f.test(PG.hwpoison)) continue;
    h.freeList.splice(i, 1);
    h.freeHugePages--;
    f.hugetlb!.free = false;
    f.refcount = 0;
    f.flags = PG.head | PG.uptodate;
    // clear_huge_page(): the new page reads as zeros.
    f.data = 0;
    for (const t of k.alloc.materialisedTails(f)) t.data = 0;
    return f;
  }
  return undefined;
}

/**
 * alloc_migrate_hugetlb_folio() (alloc_migrate_huge_page() on 6.1): the migration-target
 * allocator alloc_hugetlb_folio_nodemask() falls back to a fresh huge page from the buddy
 * allocator when the pool has no free page. Neither vm.nr_overcommit_hugepages nor the surplus
 * count is consulted (the page is "temporary", counted in nr_huge_pages while it lives);
 * gigantic pages cannot be allocated this way. After migration move_hugetlb_state() hands the
 * temporary status to the old page, which goes back to the buddy allocator when freed: net
 * HugePages_Total is unchanged. Checked on 6.12.117: soft offline with an empty pool succeeds.
 */
function allocMigrateHugetlbFolio(k: Kernel, h: Hstate): Page | undefined {
  if (h.shift === 30) return undefined;
  const head = k.alloc.allocContig(h.order, 0);
  if (!head) return undefined;
  head.kind = 'hugetlb';
  head.hugetlb = { free: false, size: h.shift, rawErrors: [] };
  head.refcount = 0;
  head.flags = PG.head | PG.uptodate;
  h.nrHugePages++;
  k.trail('alloc_migrate_hugetlb_folio', `no free ${h.kb} kB pool page: fresh temporary huge page ${hexPfn(head.pfn)}`);
  return head;
}

/** free_huge_folio(): the last reference went; the folio returns to its pool's free list. */
export function freeHugeFolio(k: Kernel, folio: Page): void {
  const h = hstateOf(k, folio);
  if (!folio.hugetlb || folio.hugetlb.free) return;
  folio.hugetlb.free = true;
  folio.refcount = 0;
  folio.mapcount = 0;
  folio.mapping = null;
  folio.index = 0;
  folio.memcgIno = 0;
  folio.flags &= PG.head | PG.hwpoison;
  h.freeHugePages++;
  h.freeList.push(folio);
  k.trail('free_huge_folio', `huge page ${hexPfn(folio.pfn)} back in the ${h.kb} kB pool`);
}

/**
 * dissolve_free_hugetlb_folio(): turn a free pool folio back into buddy pages; PG_hwpoison moves
 * from the head to the recorded raw error pages (folio_clear_hugetlb_hwpoison with move_flag).
 * 0 = dissolved or not hugetlb at all; -EBUSY = in use.
 */
export function dissolveFreeHugetlbFolio(k: Kernel, folio: Page): number {
  if (!folio.hugetlb) return 0;
  if (!folio.hugetlb.free || folio.refcount !== 0) return -EBUSY;
  const h = hstateOf(k, folio);
  const i = h.freeList.indexOf(folio);
  if (i >= 0) h.freeList.splice(i, 1);
  h.nrHugePages--;
  h.freeHugePages--;
  const raw = folio.hugetlb.unreliable ? [] : folio.hugetlb.rawErrors;
  folio.clear(PG.hwpoison);
  folio.hugetlb = null;
  folio.kind = 'free';
  for (const pfn of raw) k.alloc.pfnToPage(pfn)!.set(PG.hwpoison);
  k.alloc.freeCompound(folio);
  k.trail('dissolve_free_hugetlb_folio', `huge page ${hexPfn(folio.pfn)} dissolved into buddy pages; pool (${h.kb} kB) now ${h.nrHugePages}`, { rawErrors: raw.length });
  return 0;
}

/**
 * __page_handle_poison(): dissolve the (free) huge page and take the raw page off buddy.
 * > 0 on success.
 */
function pageHandlePoisonHuge(k: Kernel, p: Page): number {
  const folio = p.folio();
  if (dissolveFreeHugetlbFolio(k, folio) !== 0) return 0;
  // The raw page was moved out of circulation by the dissolve (it carries PG_hwpoison).
  if (p.private === MAGIC_HWPOISON) return 1;
  return k.alloc.takeOffBuddy(p) ? 1 : 0;
}

/** HugePages_* lines of /proc/meminfo (the default 2 MiB hstate) and Hugetlb (all sizes, kB). */
export function hugetlbMeminfo(k: Kernel): Record<string, number> {
  const st = states.get(k);
  if (!st) return { HugePages_Total: 0, HugePages_Free: 0, HugePages_Rsvd: 0, HugePages_Surp: 0, Hugepagesize: 2048, Hugetlb: 0 };
  const h = st.hstates.get(21)!;
  let total = 0;
  for (const x of st.hstates.values()) total += x.nrHugePages * x.kb;
  return { HugePages_Total: h.nrHugePages, HugePages_Free: h.freeHugePages, HugePages_Rsvd: 0, HugePages_Surp: 0, Hugepagesize: h.kb, Hugetlb: total };
}

/** /sys/kernel/mm/hugepages/hugepages-<size>kB/{nr,free}_hugepages. */
export function hugetlbSysfs(k: Kernel, shift: number): { nr_hugepages: number; free_hugepages: number } {
  const h = hstate(k, shift);
  return { nr_hugepages: h.nrHugePages, free_hugepages: h.freeHugePages };
}

// ---- mappings and files ------------------------------------------------------------------------

/** mmap(MAP_HUGETLB [| MAP_SHARED]): a private (anon) or shared (internal hugetlbfs file) mapping. */
export function mmapHugetlb(k: Kernel, proc: Process, opts: { pages: number; shared: boolean; shift: number; name: string; segment?: 'SYSV' | 'memfd' }): Vma {
  const st = hugetlbState(k);
  const h = hstate(k, opts.shift);
  const pages = Math.ceil(opts.pages / h.nrPages) * h.nrPages;
  let file: Inode | undefined;
  if (opts.shared) {
    // hugetlb_file_setup(): "anon_hugepage" for MAP_SHARED|MAP_HUGETLB, "SYSV%08x" for
    // shmget(SHM_HUGETLB) (ipc/shm.c newseg), "memfd:" for memfd_create(MFD_HUGETLB).
    const base = opts.segment === 'SYSV' ? 'SYSV' : opts.segment === 'memfd' ? 'memfd' : 'anon_hugepage';
    file = k.createFile(st.sb, `${base}-${proc.pid}-${opts.name}`, pages);
    file.hugeShift = h.shift;
    // A SysV segment / memfd outlives its mappings (until IPC_RMID / close): only the anonymous
    // MAP_SHARED file is released with its last mapping.
    if (!opts.segment) file.onLastUnmap = (inode) => releaseHugetlbInode(k, inode);
  }
  return k.mmap(proc, { pages, shared: opts.shared, ...(file ? { file, pgoff: 0 } : {}), name: opts.name, pageShift: h.shift, align: 2 ** h.shift });
}

/** mmap() of a hugetlbfs file (shared by default; MAP_PRIVATE gets copy-on-write huge pages). */
export function mmapHugetlbfs(k: Kernel, proc: Process, inode: Inode, opts: { pages: number; shared: boolean; offset?: number; name: string }): Vma {
  hugetlbState(k);
  const h = hstate(k, inode.hugeShift > PAGE_SHIFT ? inode.hugeShift : 21);
  if (inode.hugeShift <= PAGE_SHIFT) inode.hugeShift = h.shift;
  const pages = Math.ceil(opts.pages / h.nrPages) * h.nrPages;
  const pgoff = Math.floor((opts.offset ?? 0) / h.nrPages) * h.nrPages;
  return k.mmap(proc, { pages, shared: opts.shared, file: inode, pgoff, name: opts.name, pageShift: h.shift, align: 2 ** h.shift });
}

/**
 * The internal file of a MAP_SHARED|MAP_HUGETLB region is released with its last mapping
 * (remove_inode_hugepages): pages leave the page cache; a poisoned one is still held by
 * memory_failure's reference, so it is neither dissolved nor returned (§23 K8).
 */
function releaseHugetlbInode(k: Kernel, inode: Inode): void {
  for (const [idx, folio] of [...inode.cache]) {
    inode.cache.delete(idx);
    folio.mapping = null;
    k.alloc.put(folio);
  }
  k.trail('hugetlbfs', `released the internal file of a shared hugetlb mapping (${inode.name})`);
}

/** hugetlbfs page cache lookup: the folio covering a base-page index (cache keyed by its head index). */
function cacheFolio(inode: Inode, index: number): { folio: Page | undefined; head: number } {
  const n = 2 ** (inode.hugeShift - PAGE_SHIFT);
  const head = Math.floor(index / n) * n;
  return { folio: inode.cache.get(head), head };
}

/** is_raw_hwpoison_page_in_hugepage(). */
export function isRawHwpoison(folio: Page, pfn: number): boolean {
  if (!folio.hugetlb) return folio.test(PG.hwpoison);
  if (!folio.test(PG.hwpoison)) return false;
  if (folio.hugetlb.unreliable) return true;
  return folio.hugetlb.rawErrors.includes(pfn);
}

/**
 * hugetlbfs_read_iter() for pread of `pages` base pages at `page`: holes read as zeros; a
 * poisoned folio is read up to its first raw error subpage (≥6.5, adjust_range_hwpoison) or not
 * at all (before), -EIO when nothing of that folio could be read (even after earlier folios).
 */
export function hugetlbfsRead(k: Kernel, inode: Inode, page: number, pages: number): number {
  const n = 2 ** (inode.hugeShift - PAGE_SHIFT);
  let done = 0;
  let i = page;
  const end = Math.min(page + pages, inode.sizePages);
  while (i < end) {
    const { folio, head } = cacheFolio(inode, i);
    const nr = Math.min(end, head + n) - i;
    if (!folio) {
      done += nr * PAGE_SIZE;
      i += nr;
      continue;
    }
    let want = nr;
    if (folio.test(PG.hwpoison)) {
      if (!k.profile.hugetlbfsShortRead) return -EIO;
      want = 0;
      while (want < nr && !isRawHwpoison(folio, folio.pfn + (i - head) + want)) want++;
      if (want === 0) return -EIO;
    }
    done += want * PAGE_SIZE;
    i += want;
    if (want < nr) break;
  }
  return done;
}

/** What reading one base page of a hugetlbfs file gives: its data token or -EIO. */
export function hugetlbfsReadPage(k: Kernel, inode: Inode, index: number): { data: number } | { err: number } {
  const { folio, head } = cacheFolio(inode, index);
  if (!folio) return { data: 0 };
  const pfn = folio.pfn + (index - head);
  if (folio.test(PG.hwpoison) && (!k.profile.hugetlbfsShortRead || isRawHwpoison(folio, pfn))) return { err: -EIO };
  return { data: k.alloc.pfnToPage(pfn)?.data ?? 0 };
}

// ---- faults -----------------------------------------------------------------------------------

/** Maps a huge folio with one huge pte (set_huge_pte_at + hugetlb_add_*_rmap). */
function mapHuge(vma: Vma, at: number, folio: Page, writable: boolean, dirty: boolean): void {
  vma.mm.setPte(at, { kind: 'present', pfn: folio.pfn, dirty, writable });
  folio.mapcount++;
  folio.refcount++;
}

function newAnonHuge(k: Kernel, h: Hstate, vma: Vma, at: number): Page | undefined {
  const folio = dequeueHugeFolio(k, h);
  if (!folio) return undefined;
  folio.mapping = vma.anonVma;
  folio.index = vma.pgoffOf(at);
  folio.set(PG.anonExclusive);
  return folio;
}

/** Copies the data tokens of every subpage (copy_user_large_folio). */
function copyHugeData(k: Kernel, from: Page, to: Page): void {
  to.data = from.data;
  for (const t of k.alloc.materialisedTails(from)) k.alloc.pfnToPage(to.pfn + (t.pfn - from.pfn))!.data = t.data;
}

/** VM_FAULT_SIGBUS (no huge page could be allocated): a plain SIGBUS, BUS_ADRERR. */
function faultSigbus(k: Kernel, task: Task, addr: number): AccessResult {
  k.forceSig(task, { signo: SIGBUS, code: BUS_ADRERR, addr, lsb: 0 });
  k.trail('hugetlb_fault', `no free huge page: VM_FAULT_SIGBUS at ${hexPfn(addr)}`);
  return { kind: 'sigbus', addr, lsb: 0 };
}

/**
 * hugetlb_fault(): a load or store in a hugetlb VMA. A hwpoison huge pte or a poisoned folio in
 * the page cache gives VM_FAULT_HWPOISON_LARGE: SIGBUS AR at the exact address, lsb = huge shift.
 */
export function hugetlbFault(k: Kernel, task: Task, vma: Vma, addr: number, write: boolean): AccessResult {
  const h = hstate(k, vma.pageShift);
  const mm = vma.mm;
  const at = vma.entryAddr(addr);
  const sub = Math.floor((addr - at) / PAGE_SIZE);
  let pte = mm.pte(at);
  if (pte?.kind === 'hwpoison') return doSigbus(k, task, addr, h.shift);
  if (pte && pte.kind !== 'present') return doSigbus(k, task, addr, h.shift);
  if (!pte) {
    // hugetlb_no_page()
    if (vma.file) {
      const inode = vma.file;
      const idx = vma.pgoffOf(at);
      let cached = inode.cache.get(idx);
      if (cached?.test(PG.hwpoison)) return doSigbus(k, task, addr, h.shift);
      if (!cached) {
        cached = dequeueHugeFolio(k, h);
        if (!cached) return faultSigbus(k, task, addr);
        // hugetlb_add_to_page_cache(): the page cache holds a reference; the folio is dirty.
        cached.mapping = inode;
        cached.index = idx;
        cached.set(PG.dirty);
        cached.refcount++;
        inode.cache.set(idx, cached);
      }
      if (vma.has(VM_SHARED)) mapHuge(vma, at, cached, true, write);
      else if (write) {
        const copy = newAnonHuge(k, h, vma, at);
        if (!copy) return faultSigbus(k, task, addr);
        copyHugeData(k, cached, copy);
        mapHuge(vma, at, copy, true, true);
      } else mapHuge(vma, at, cached, false, false);
    } else {
      const folio = newAnonHuge(k, h, vma, at);
      if (!folio) return faultSigbus(k, task, addr);
      // make_huge_pte(): a writable private mapping gets a dirty, writable huge pte.
      mapHuge(vma, at, folio, true, true);
    }
    pte = mm.pte(at)!;
  }
  if (pte.kind !== 'present') return doSigbus(k, task, addr, h.shift);
  let folio = k.alloc.pfnToPage(pte.pfn)!;
  if (write && !pte.writable) {
    if (vma.has(VM_SHARED)) pte.writable = true;
    else if (folio.mapping instanceof AnonVma && folio.mapcount === 1) pte.writable = true;
    else {
      // hugetlb_wp(): copy on write.
      const copy = newAnonHuge(k, h, vma, at);
      if (!copy) return faultSigbus(k, task, addr);
      copyHugeData(k, folio, copy);
      folio.mapcount--;
      mm.setPte(at, undefined);
      k.alloc.put(folio);
      mapHuge(vma, at, copy, true, true);
      folio = copy;
      pte = mm.pte(at)!;
    }
  }
  const page = k.alloc.pfnToPage(folio.pfn + sub)!;
  if (write) {
    if (pte.kind === 'present') pte.dirty = true;
    page.data = k.newDataToken();
    if (folio.mapping instanceof Inode) folio.set(PG.dirty);
  }
  return { kind: 'ok', pfn: page.pfn, data: page.data };
}

/** The huge entry of mm that maps pfn (a subpage of it), ascending by address (hwpoison_hugetlb_range). */
export function findHugeMapping(mm: MM, pfn: number): { addr: number; shift: number } | undefined {
  const vmas = mm.vmas.filter((v) => v.has(VM_HUGETLB)).sort((a, b) => a.start - b.start);
  for (const v of vmas) {
    const span = 2 ** (v.pageShift - PAGE_SHIFT);
    for (const addr of mm.entriesIn(v.start, v.end)) {
      const pte = mm.pte(addr);
      if ((pte?.kind === 'present' || pte?.kind === 'hwpoison') && pfn >= pte.pfn && pfn < pte.pfn + span) return { addr, shift: v.pageShift };
    }
  }
  return undefined;
}

// ---- memory_failure ----------------------------------------------------------------------------

/**
 * folio_set_hugetlb_hwpoison() / hugetlb_update_hwpoison(): sets PG_hwpoison on the folio and
 * records the raw page. Returns 0 (folio newly poisoned), 'folio' (MF_HUGETLB_FOLIO_PRE_POISONED:
 * the folio was poisoned already, this raw page is new or the list is unreliable) or 'page'
 * (MF_HUGETLB_PAGE_PRE_POISONED: this exact raw page is recorded). Before the mf_stats fix
 * (a148a2040191, in 6.12.117 stable: the 'already-poisoned-page' style) a new raw page of an
 * already poisoned folio is counted here (num_poisoned_pages_inc) and both cases are -EHWPOISON;
 * with it, action_result(MF_MSG_HUGE) counts it.
 */
function setHugetlbHwpoison(k: Kernel, folio: Page, page: Page): 0 | 'folio' | 'page' {
  const was = folio.test(PG.hwpoison);
  folio.set(PG.hwpoison);
  const hs = folio.hugetlb!;
  if (hs.unreliable) return 'folio';
  if (hs.rawErrors.includes(page.pfn)) return 'page';
  // ≤6.0: no raw error list: TestSetPageHWPoison(head) decides, any subpage of a poisoned folio
  // is "already hardware poisoned".
  if (was && k.profile.hugetlbNonPmdIgnored) return 'page';
  hs.rawErrors.push(page.pfn);
  if (was && k.profile.alreadyPoisoned !== 'already-poisoned-page') {
    k.numPoisonedPages++;
    k.trail('folio_set_hugetlb_hwpoison', `new raw error page ${hexPfn(page.pfn)} on an already poisoned huge page: HardwareCorrupted +4 kB`);
  }
  return was ? 'folio' : 0;
}

/** folio_clear_hugetlb_hwpoison() without move_flag (filter rejection). */
function clearHugetlbHwpoison(folio: Page): void {
  folio.clear(PG.hwpoison);
  if (folio.hugetlb) folio.hugetlb.rawErrors = [];
}

/**
 * __get_huge_page_for_hwpoison(): 0 = free pool page, 1 = in use (reference taken, or the
 * caller's with MF_COUNT_INCREASED), -EHWPOISON = already poisoned (this raw page recorded).
 */
function getHugePageForHwpoison(k: Kernel, folio: Page, page: Page, flags: number): number {
  let ret: number;
  let countIncreased = false;
  if (flags & MF_COUNT_INCREASED) {
    ret = 1;
    countIncreased = true;
  } else if (folio.hugetlb!.free) {
    ret = 0;
  } else {
    // folio_test_hugetlb_migratable(): an allocated huge page; folio_try_get().
    folio.refcount++;
    ret = 1;
    countIncreased = true;
  }
  const pre = setHugetlbHwpoison(k, folio, page);
  if (pre) {
    if (countIncreased) folio.refcount--;
    return pre === 'folio' && k.profile.alreadyPoisoned === 'already-poisoned-page' ? FOLIO_PRE_POISONED : -EHWPOISON;
  }
  return ret;
}

/** kill_accessing_process(current, folio_pfn(folio)) for an already poisoned hugetlb folio. */
function killAccessingHuge(k: Kernel, headPfn: number, flags: number): number {
  const cur = k.current;
  if (!cur?.group.mm) return -EFAULT;
  const found = findHugeMapping(cur.group.mm, headPfn);
  if (!found) {
    const ret = k.profile.killAccessingNotMappedRet;
    k.trail('kill_accessing_process', `${cur.comm}:${cur.tid} does not map huge page ${hexPfn(headPfn)}: no signal, return ${ret === 0 ? '0' : '-EFAULT'}`);
    return ret;
  }
  killProcs(k, [{ task: cur, addr: found.addr, addrValid: true, sizeShift: found.shift }], true, false, headPfn, flags);
  return -EHWPOISON;
}

/**
 * hwpoison_user_mappings() for a hugetlb folio: collect (6.12 with the raw page, so the raw
 * subpage address; 6.1 with the head, §23 K7), unmap every huge pte into a hwpoison entry, and
 * signal if the folio is dirty (hugetlbfs folios always are; a written private one by its pte).
 */
function hugetlbUserMappings(k: Kernel, folio: Page, p: Page, pfn: number, flags: number): boolean {
  if (folio.mapcount === 0) {
    k.trail('hwpoison_user_mappings', 'huge page not mapped: nobody to signal');
    return true;
  }
  const tokill = collectProcs(k, k.profile.hugetlbSignalRawAddr ? p : folio, (flags & MF_ACTION_REQUIRED) !== 0);
  tryToUnmap(k, folio, true);
  const ok = folio.mapcount === 0;
  if (!ok) mfLog(k, pfn, `failed to unmap page (${k.profile.unmapFailedFolioMsg ? 'folio mapcount' : 'mapcount'}=${folio.mapcount})`);
  const forcekill = folio.test(PG.dirty) || (flags & MF_MUST_KILL) !== 0 || !ok;
  k.trail('hwpoison_user_mappings', `whole huge page unmapped (huge ptes -> hwpoison entries); forcekill=${forcekill}`);
  killProcs(k, tokill, forcekill, !ok, pfn, flags);
  return ok;
}

/**
 * me_huge_page(): a hugetlbfs (or shared MAP_HUGETLB) folio stays in its page cache, poisoned;
 * an anonymous one is freed (all its mappings are gone) and dissolved, the raw page taken off.
 */
export function meHugePage(k: Kernel, p: Page): MfResult {
  const folio = p.folio();
  let res: MfResult;
  let extraPins = false;
  if (folio.mapping instanceof Inode) {
    // truncate_error_folio() -> hugetlbfs_error_remove_folio() returns 0: kept in the file.
    res = 'Recovered';
    extraPins = true;
    k.trail('me_huge_page', 'hugetlbfs folio kept in the page cache, poisoned');
  } else {
    k.alloc.put(folio);
    if (pageHandlePoisonHuge(k, p) > 0) {
      p.refcount++;
      res = 'Recovered';
    } else res = 'Failed';
  }
  // has_extra_refcount(): the page cache's reference does not count (kernel: nr_pages refs).
  const f = p.folio();
  const count = f.refcount - 1 - (extraPins ? 1 : 0);
  if (count > 0) {
    mfLog(k, p.pfn, `huge page still referenced by ${count} users`);
    res = 'Failed';
  }
  return res;
}

/** getHugePageForHwpoison(): MF_HUGETLB_FOLIO_PRE_POISONED (kernels with hugetlb_update_hwpoison()). */
const FOLIO_PRE_POISONED = 3;

/** try_memory_failure_hugetlb(): undefined when the page is not part of a hugetlb folio. */
export function tryMemoryFailureHugetlb(k: Kernel, pfn: number, p: Page, flags: number): number | undefined {
  const folio = p.folio();
  if (!folio.hugetlb) return undefined;
  let f = flags;
  let res = getHugePageForHwpoison(k, folio, p, f);
  if (res === -EBUSY && !(f & MF_NO_RETRY)) {
    f |= MF_NO_RETRY;
    res = getHugePageForHwpoison(k, folio, p, f);
  }
  if (res === FOLIO_PRE_POISONED) {
    // hugetlb_update_hwpoison() recorded a new raw page of an already poisoned folio: counted
    // by action_result(MF_MSG_HUGE, MF_FAILED), -EHWPOISON (checked on 6.12.117).
    k.trail('memory_failure', 'new raw error page in an already poisoned huge page (MF_HUGETLB_FOLIO_PRE_POISONED)');
    if (f & MF_ACTION_REQUIRED) {
      const r = killAccessingHuge(k, folio.pfn, f);
      actionResult(k, pfn, 'HUGE', 'Failed');
      return r;
    }
    actionResult(k, pfn, 'HUGE', 'Failed');
    return -EHWPOISON;
  }
  if (res === -EHWPOISON) {
    const style = k.profile.alreadyPoisoned;
    k.trail('memory_failure', `huge page already poisoned (${style})`);
    if (style !== 'already-poisoned-page') mfLog(k, pfn, 'already hardware poisoned');
    let ret = -EHWPOISON;
    if (f & MF_ACTION_REQUIRED) ret = killAccessingHuge(k, folio.pfn, f);
    if (style !== 'already-hardware-poisoned') actionResult(k, pfn, 'ALREADY_POISONED', 'Failed');
    return ret;
  }
  countAtTestSet(k, pfn, 1, 'TestSetPageHWPoison(head)');
  if (res === -EBUSY) return actionResult(k, pfn, 'GET_HWPOISON', 'Ignored');
  // hwpoison_filter() on the raw page, with the folio locked.
  const wasLocked = folio.test(PG.locked);
  folio.set(PG.locked);
  const rejected = k.hwpoisonFilter(p, true);
  if (!wasLocked) folio.clear(PG.locked);
  if (rejected) {
    clearHugetlbHwpoison(folio);
    countAtTestSet(k, pfn, -1, 'filtered: TestClearPageHWPoison(head)');
    if (res === 1) folio.refcount--;
    k.trail('hwpoison_filter', 'huge page rejected by the filter: -EOPNOTSUPP');
    return -EOPNOTSUPP;
  }
  if (res === 0) {
    k.trail('memory_failure', 'free huge page: dissolve it and take the raw page off buddy');
    const r: MfResult = pageHandlePoisonHuge(k, p) > 0 ? 'Recovered' : 'Failed';
    if (r === 'Recovered') p.refcount++;
    return actionResult(k, pfn, 'FREE_HUGE', r);
  }
  if (k.profile.hugetlbNonPmdIgnored && folio.hugetlb.size > 21) {
    // ≤6.0: "hwpoison for pud-sized hugetlb doesn't work right now, so simply disable it".
    k.trail('memory_failure_hugetlb', 'huge page larger than a PMD: not handled by this kernel (before 6.1)');
    return actionResult(k, pfn, 'NON_PMD_HUGE', 'Ignored');
  }
  if (!hugetlbUserMappings(k, folio, p, pfn, f)) {
    return actionResult(k, pfn, 'UNMAP_FAILED', k.profile.unmapFailureSigbus ? 'Failed' : 'Ignored');
  }
  // identify_page_state(): a hugetlb head always matches the "huge page" row.
  k.coverage.errorStates.add('HUGE');
  k.trail('identify_page_state', 'matched error_states row "huge page" -> me_huge_page');
  return actionResult(k, pfn, 'HUGE', meHugePage(k, p));
}

/**
 * unpoison_memory() of a hugetlb head: folio_free_raw_hwp() releases the raw error list; the
 * folio loses PG_hwpoison and, if memory_failure's reference was the last, goes back into the
 * free pool (§23 K8). Returns the number of raw error pages released (0 = refuse).
 */
export function unpoisonHugetlb(k: Kernel, folio: Page): number {
  const hs = folio.hugetlb;
  if (!hs || hs.unreliable) return 0;
  const count = hs.rawErrors.length;
  if (count === 0) return 0;
  hs.rawErrors = [];
  folio.clear(PG.hwpoison);
  if (folio.refcount > 0) k.alloc.put(folio);
  return count;
}

/**
 * soft_offline_page() for a hugetlb page: a free one is dissolved and its page taken off buddy;
 * an in-use one is migrated to another pool page (-ENOMEM when the pool has none), then the old
 * one is freed, dissolved and its page taken off (pool −1). No signal.
 */
export function softOfflineHugetlb(k: Kernel, page: Page, flags: number): number {
  const folio = page.folio();
  const pfn = page.pfn;
  const putRef = (): void => {
    if (flags & MF_COUNT_INCREASED && folio.refcount > 0) folio.refcount--;
  };
  if (k.hwpoisonFilter(page, false)) {
    putRef();
    return -EOPNOTSUPP;
  }
  const done = (): number => {
    page.set(PG.hwpoison);
    page.refcount++;
    k.numPoisonedPages++;
    k.trail('page_handle_poison', `pfn ${hexPfn(pfn)} poisoned (HardwareCorrupted +4 kB)`);
    return 0;
  };
  if (folio.hugetlb!.free) {
    if (pageHandlePoisonHuge(k, page) <= 0) return -EBUSY;
    page.clear(PG.hwpoison);
    return done();
  }
  putRef();
  const h = hstateOf(k, folio);
  const dst = dequeueHugeFolio(k, h) ?? allocMigrateHugetlbFolio(k, h);
  if (!dst) {
    const msg = `hugepage migration failed ${-ENOMEM}, type ${pgFlagsString(folio)}`;
    k.log.print('info', k.profile.softOfflineMsgNew ? `Soft offline: ${hexPfn(pfn)}: ${msg}` : `soft offline: ${hexPfn(pfn)}: ${msg}`);
    k.trail('soft_offline_page', 'no free huge page to migrate to: -ENOMEM');
    return -ENOMEM;
  }
  migrateHugeFolio(k, folio, dst);
  if (pageHandlePoisonHuge(k, page) <= 0) return -EBUSY;
  page.clear(PG.hwpoison);
  return done();
}

/** migrate_pages() of a hugetlb folio: mappings, page cache slot and data move to dst. */
function migrateHugeFolio(k: Kernel, old: Page, dst: Page): void {
  copyHugeData(k, old, dst);
  dst.mapping = old.mapping;
  dst.index = old.index;
  dst.flags = (old.flags & ~(PG.hwpoison | PG.locked)) | PG.head;
  for (const m of vmasCovering(old)) {
    if (!m.mapped) continue;
    const pte = m.vma.mm.pte(m.pteAddr);
    if (pte?.kind !== 'present') continue;
    pte.pfn = dst.pfn;
    old.mapcount--;
    old.refcount--;
    dst.mapcount++;
    dst.refcount++;
  }
  if (old.mapping instanceof Inode && old.mapping.cache.get(old.index) === old) {
    old.mapping.cache.set(old.index, dst);
    old.refcount--;
    dst.refcount++;
  }
  old.mapping = null;
  k.trail('migrate_pages', `huge page ${hexPfn(old.pfn)} -> ${hexPfn(dst.pfn)}`);
  if (old.refcount <= 0) freeHugeFolio(k, old);
}

hooks.hugetlb = tryMemoryFailureHugetlb;
hooks.meHugePage = (k, page) => meHugePage(k, page);
hooks.unpoisonHugetlb = unpoisonHugetlb;
hooks.softOfflineHugetlb = softOfflineHugetlb;
hooks.findHugeMapping = (_k, task, pfn) => (task.group.mm ? findHugeMapping(task.group.mm, pfn) : undefined);
