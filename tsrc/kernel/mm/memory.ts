// The user-access and page-fault path (mm/memory.c handle_mm_fault, do_anonymous_page,
// do_wp_page, do_swap_page, __do_fault, zap_page_range for MADV_DONTNEED; arch/x86/mm/fault.c
// do_sigbus): what a load or store by a task does, including SIGBUS BUS_MCEERR_AR on a hwpoison
// entry or a poisoned cache page (kernel-model.md §18, §23.3.7–12).
import type { Kernel } from '../kernel.js';
import type { Inode } from '../fs.js';
import { EINVAL } from '../errno.js';
import { hex } from '../printk.js';
import { BUS_ADRERR, BUS_MCEERR_AR, SEGV_MAPERR, SIGBUS, SIGSEGV, type Task } from '../sched.js';
import { doHugePmdAnonymousPage, thpFaultable } from './huge_memory.js';
import { hugetlbFault } from './hugetlb.js';
import { PAGE_SIZE, VM_HUGETLB, VM_LOCKED, VM_SHARED, type MM, type Vma } from './mm.js';
import { PG, type Page } from './page.js';
import './ksm.js';

export type AccessResult =
  | { kind: 'ok'; pfn: number; data: number }
  | { kind: 'sigbus'; addr: number; lsb: number }
  | { kind: 'segv'; addr: number };

/** VM_FAULT_HWPOISON(_LARGE) -> do_sigbus(): log and force an AR SIGBUS at the exact address. */
export function doSigbus(k: Kernel, task: Task, addr: number, lsb: number): AccessResult {
  k.log.print('err', `MCE: Killing ${task.comm}:${task.tid} due to hardware memory corruption fault at ${hex(addr)}`);
  k.forceSigMceerr(task, BUS_MCEERR_AR, addr, lsb);
  k.trail('do_sigbus', `fault on poisoned page at ${hex(addr)}: SIGBUS BUS_MCEERR_AR lsb ${lsb}`);
  return { kind: 'sigbus', addr, lsb };
}

/** VM_FAULT_SIGBUS: a plain SIGBUS BUS_ADRERR (no `MCE: Killing` line, lsb 0). */
function plainSigbus(k: Kernel, task: Task, addr: number): AccessResult {
  k.forceSig(task, { signo: SIGBUS, code: BUS_ADRERR, addr, lsb: 0 });
  k.trail('do_sigbus', `VM_FAULT_SIGBUS at ${hex(addr)}: SIGBUS BUS_ADRERR`);
  return { kind: 'sigbus', addr, lsb: 0 };
}

/** Maps `page` at `addr` in the VMA's mm (set_pte_at + rmap accounting; references on the folio). */
export function mapPage(vma: Vma, addr: number, page: Page, writable: boolean, dirty: boolean): void {
  vma.mm.setPte(addr, { kind: 'present', pfn: page.pfn, dirty, writable });
  page.mapcount++;
  page.folio().refcount++;
  if (vma.has(VM_LOCKED) && page.kind !== 'zero') page.folio().set(PG.mlocked | PG.unevictable);
}

/** A new anonymous page for a VMA (do_anonymous_page / COW copy). */
function newAnonPage(k: Kernel, vma: Vma, addr: number, data: number): Page {
  const page = k.alloc.alloc();
  page.kind = 'anon';
  page.mapping = vma.anonVma;
  page.index = vma.pgoffOf(addr);
  page.set(PG.lru | PG.swapbacked | PG.uptodate | PG.anonExclusive);
  page.data = data;
  page.memcgIno = k.procOfMm(vma.mm)?.memcgIno ?? 0;
  // alloc() returned it with one reference; mapping takes its own.
  page.refcount = 0;
  return page;
}

/** Looks up or reads in the page-cache page of a file at an index (filemap_fault / shmem_fault). */
export function pageCacheGet(k: Kernel, inode: Inode, index: number, memcgIno = 0): Page {
  let page = inode.cache.get(index);
  if (page) return page;
  page = k.alloc.alloc();
  page.kind = inode.sb.fs === 'tmpfs' ? 'shmem' : 'file';
  page.mapping = inode;
  page.index = index;
  page.set(PG.lru | PG.uptodate);
  if (inode.sb.fs === 'tmpfs') page.set(PG.swapbacked);
  if (inode.unevictable) page.set(PG.unevictable);
  page.data = inode.disk.get(index) ?? 0;
  page.memcgIno = memcgIno;
  // The page cache holds one reference (alloc() gave it).
  inode.cache.set(index, page);
  return page;
}

/** handle_mm_fault() for a user load or store; on success returns the data token seen/written. */
export function handleAccess(k: Kernel, task: Task, addr: number, write: boolean): AccessResult {
  const mm = task.group.mm;
  const vma = mm?.findVma(addr);
  if (!mm || !vma) {
    k.forceSig(task, { signo: SIGSEGV, code: SEGV_MAPERR, addr });
    return { kind: 'segv', addr };
  }
  if (vma.has(VM_HUGETLB) || vma.pageShift > 12) return (k.hugetlbFault ?? ((t, v, a, w) => hugetlbFault(k, t, v, a, w)))(task, vma, addr, write);
  const pageAddr = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
  let pte = mm.pte(pageAddr);
  if (pte?.kind === 'hwpoison') return doSigbus(k, task, addr, 12);
  if (pte?.kind === 'swap') {
    // 6.1's swap-in error marker: VM_FAULT_SIGBUS.
    if (pte.marker === 'swapin-error') return plainSigbus(k, task, addr);
    // do_swap_page(): a poisoned swap-cache page gives VM_FAULT_HWPOISON.
    const page = k.swap.swapIn(pte.slot, vma, pageAddr);
    if (!page) return doSigbus(k, task, addr, 12);
    const exclusive = page.mapcount === 0;
    mm.setPte(pageAddr, undefined);
    // An exclusive page is mapped writable; a write fault dirties it and frees the swap slot
    // (should_try_to_free_swap -> folio_free_swap), so it leaves the swap cache.
    mapPage(vma, pageAddr, page, exclusive || write, write);
    if (write && exclusive) k.swap.freeSwap(page);
    pte = mm.pte(pageAddr);
  }
  if (!pte) {
    const idx = vma.pgoffOf(pageAddr);
    if (vma.file) {
      const inode = vma.file;
      const cached = inode.cache.get(idx);
      // __do_fault(): a poisoned page-cache page (held by memory_failure's reference, so it
      // cannot be evicted and re-read) gives VM_FAULT_HWPOISON.
      if (cached?.test(PG.hwpoison)) return doSigbus(k, task, addr, 12);
      const page = pageCacheGet(k, inode, idx, task.group.memcgIno);
      if (vma.has(VM_SHARED)) {
        mapPage(vma, pageAddr, page, write, write);
      } else if (write) {
        mapPage(vma, pageAddr, newAnonPage(k, vma, pageAddr, page.data), true, true);
      } else {
        mapPage(vma, pageAddr, page, false, false);
      }
    } else {
      const thpAt = thpFaultable(vma, pageAddr);
      if (thpAt === undefined || !doHugePmdAnonymousPage(k, vma, thpAt, write)) {
        if (write) {
          mapPage(vma, pageAddr, newAnonPage(k, vma, pageAddr, 0), true, true);
        } else {
          // Read fault on untouched private anonymous memory: the shared zero page.
          mapPage(vma, pageAddr, k.zeroPage, false, false);
        }
      }
    }
    pte = mm.pte(pageAddr)!;
  }
  if (pte.kind !== 'present') return doSigbus(k, task, addr, 12);
  let page = k.alloc.pfnToPage(pte.pfn)!;
  if (write) {
    if (!pte.writable) {
      const shared = vma.has(VM_SHARED);
      if (shared) {
        pte.writable = true;
      } else if (page.kind === 'anon' && page.mapcount === 1 && !page.folio().ksm && page.folio().order === 0) {
        // do_wp_page(): reuse an exclusive anonymous page.
        pte.writable = true;
      } else {
        // Copy on write (a KSM page, a page shared after fork, the (huge) zero page, a
        // private file page, or one subpage of a shared THP).
        const copy = newAnonPage(k, vma, pageAddr, page.data);
        page.mapcount--;
        mm.setPte(pageAddr, undefined);
        k.alloc.put(page);
        mapPage(vma, pageAddr, copy, true, true);
        page = copy;
        pte = mm.pte(pageAddr)!;
      }
    }
    if (pte.kind === 'present') pte.dirty = true;
    page.data = k.newDataToken();
    // A write to a shared file page dirties the page cache (fault_dirty_shared_page).
    if (page.kind === 'file' || page.kind === 'shmem') page.set(PG.dirty);
  }
  return { kind: 'ok', pfn: page.pfn, data: page.data };
}

/**
 * follow_page(): the pfn a virtual page translates to without faulting (present pte or
 * hwpoison entry); for hugetlb the subpage of the huge entry.
 */
export function followPfn(mm: MM, addr: number): number | undefined {
  const vma = mm.findVma(addr);
  const { addr: at, pte } = mm.entryFor(addr, vma);
  if (pte?.kind !== 'present' && pte?.kind !== 'hwpoison') return undefined;
  if (vma && vma.pageShift > 12) return pte.pfn + Math.floor((addr - at) / PAGE_SIZE);
  return pte.pfn;
}

/** Looks up what a virtual page maps to, without faulting (follow_page / pagemap). */
export function lookupPfn(task: Task, addr: number): number | undefined {
  const mm = task.group.mm;
  return mm ? followPfn(mm, addr) : undefined;
}

/**
 * zap_page_range_single() over [start, end) of one VMA: present entries are unmapped (the pte
 * dirty bit folded into file pages), hwpoison and swap entries dropped.
 */
export function zapRange(k: Kernel, vma: Vma, start: number, end: number): void {
  const mm = vma.mm;
  for (const addr of mm.entriesIn(Math.max(start, vma.start), Math.min(end, vma.end))) {
    const pte = mm.pte(addr);
    if (!pte) continue;
    mm.setPte(addr, undefined);
    if (pte.kind === 'swap') {
      if (!pte.marker) k.swap.freeEntry(pte.slot);
      continue;
    }
    if (pte.kind !== 'present') continue;
    const page = k.alloc.pfnToPage(pte.pfn)!;
    const folio = page.folio();
    if (pte.dirty && (folio.kind === 'file' || folio.kind === 'shmem' || folio.hugetlb)) folio.set(PG.dirty);
    (folio.hugetlb ? folio : page).mapcount--;
    if (folio.kind === 'anon' && folio.order === 0 && page.mapcount === 0 && page.test(PG.swapcache)) k.swap.deleteFromSwapCache(page);
    k.alloc.put(page);
  }
}

/**
 * madvise(MADV_DONTNEED): a private hwpoison entry is discarded (the next read sees the zero
 * page, writes work); on a shared mapping only the pte goes, so the next touch faults the
 * poisoned shmem page again (§23.3.10).
 */
export function madviseDontneed(k: Kernel, task: Task, start: number, len: number): number {
  return k.syscall(
    task,
    () => {
      if (start % PAGE_SIZE !== 0) return -EINVAL;
      const mm = task.group.mm;
      if (!mm) return -EINVAL;
      const end = start + Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
      for (const v of [...mm.vmas]) {
        if (v.end <= start || v.start >= end) continue;
        if (v.has(VM_LOCKED)) return -EINVAL;
        zapRange(k, v, start, end);
      }
      return 0;
    },
    -EINVAL,
  );
}
