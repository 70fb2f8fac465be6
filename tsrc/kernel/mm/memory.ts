// The user-access and page-fault path (mm/memory.c handle_mm_fault, do_anonymous_page,
// do_wp_page, do_swap_page, __do_fault; arch/x86/mm/fault.c do_sigbus): what a load or store by
// a task does, including SIGBUS BUS_MCEERR_AR on a hwpoison entry or a poisoned cache page.
import type { Kernel } from '../kernel.js';
import type { Inode } from '../fs.js';
import { hex } from '../printk.js';
import { BUS_MCEERR_AR, SEGV_MAPERR, SIGSEGV, type Task } from '../sched.js';
import { PAGE_SIZE, VM_LOCKED, VM_SHARED, type Vma } from './mm.js';
import { PG, type Page } from './page.js';

export type AccessResult =
  | { kind: 'ok'; pfn: number; data: number }
  | { kind: 'sigbus'; addr: number; lsb: number }
  | { kind: 'segv'; addr: number };

/** VM_FAULT_HWPOISON(_LARGE) -> do_sigbus(): log and force an AR SIGBUS at the exact address. */
function doSigbus(k: Kernel, task: Task, addr: number, lsb: number): AccessResult {
  k.log.print('err', `MCE: Killing ${task.comm}:${task.tid} due to hardware memory corruption fault at ${hex(addr)}`);
  k.forceSigMceerr(task, BUS_MCEERR_AR, addr, lsb);
  k.trail('do_sigbus', `fault on poisoned page at ${hex(addr)}: SIGBUS BUS_MCEERR_AR lsb ${lsb}`);
  return { kind: 'sigbus', addr, lsb };
}

/** Maps `page` at `addr` in the VMA's mm (set_pte_at + rmap accounting). */
export function mapPage(vma: Vma, addr: number, page: Page, writable: boolean, dirty: boolean): void {
  vma.mm.setPte(addr, { kind: 'present', pfn: page.pfn, dirty, writable });
  page.mapcount++;
  page.refcount++;
  if (vma.has(VM_LOCKED) && page.kind !== 'zero') page.set(PG.mlocked | PG.unevictable);
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
  if (vma.pageShift > 12 && k.hugetlbFault) return k.hugetlbFault(task, vma, addr, write);
  const pageAddr = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
  let pte = mm.pte(pageAddr);
  if (pte?.kind === 'hwpoison') return doSigbus(k, task, addr, 12);
  if (pte?.kind === 'swap') {
    // do_swap_page(): a poisoned swap-cache page gives VM_FAULT_HWPOISON.
    const page = k.swap.swapIn(pte.slot, vma);
    if (!page) return doSigbus(k, task, addr, 12);
    mm.setPte(pageAddr, undefined);
    mapPage(vma, pageAddr, page, !!write, false);
    pte = mm.pte(pageAddr);
  }
  if (!pte) {
    const idx = vma.pgoffOf(pageAddr);
    if (vma.file) {
      const inode = vma.file;
      const cached = inode.cache.get(idx);
      if (cached?.test(PG.hwpoison)) return doSigbus(k, task, addr, 12);
      const page = pageCacheGet(k, inode, idx, task.group.memcgIno);
      if (vma.has(VM_SHARED)) {
        mapPage(vma, pageAddr, page, write, write);
      } else if (write) {
        mapPage(vma, pageAddr, newAnonPage(k, vma, pageAddr, page.data), true, true);
      } else {
        mapPage(vma, pageAddr, page, false, false);
      }
    } else if (write) {
      mapPage(vma, pageAddr, newAnonPage(k, vma, pageAddr, 0), true, true);
    } else {
      // Read fault on untouched private anonymous memory: the shared zero page.
      mapPage(vma, pageAddr, k.zeroPage, false, false);
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
      } else if (page.kind === 'anon' && page.mapcount === 1 && !page.ksm) {
        // do_wp_page(): reuse an exclusive anonymous page.
        pte.writable = true;
      } else {
        // Copy on write.
        const copy = newAnonPage(k, vma, pageAddr, page.data);
        page.mapcount--;
        k.alloc.put(page);
        mm.setPte(pageAddr, undefined);
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

/** Looks up what a virtual page maps to, without faulting (follow_page / pagemap). */
export function lookupPfn(task: Task, addr: number): number | undefined {
  const pte = task.group.mm?.pte(addr);
  return pte?.kind === 'present' || pte?.kind === 'hwpoison' ? pte.pfn : undefined;
}
