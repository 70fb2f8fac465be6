// Reverse mapping (mm/rmap.c): from a page to the VMAs and page-table entries that map it,
// without scanning every process. Anonymous pages are found through their anon_vma, page-cache
// pages through the file's i_mmap set.
import type { Kernel } from '../kernel.js';
import { Inode } from '../fs.js';
import { AnonVma, KsmStableNode, PAGE_SIZE, VM_LOCKED, type Vma } from './mm.js';
import { PG, type Page } from './page.js';

export interface Mapper {
  vma: Vma;
  /** User address of the page in the VMA (for a hugetlb subpage: the subpage's address). */
  addr: number;
  /** Address of the page-table entry that maps it (the huge-page-aligned address for hugetlb). */
  pteAddr: number;
  /** Whether a present pte maps this very page there (for hugetlb: the folio's huge pte). */
  mapped: boolean;
}

/**
 * rmap_walk(): every VMA that covers the page. File: the i_mmap interval for the page's offset;
 * anon: the anon_vma's VMAs; KSM: the stable node's rmap items. Costs the number of VMAs that
 * can map the page, never a scan of all processes.
 */
export function vmasCovering(page: Page): Mapper[] {
  const folio = page.folio();
  const mapping = folio.mapping;
  const out: Mapper[] = [];
  const index = folio.index + (page.pfn - folio.pfn);
  const huge = folio.hugetlb !== null;
  const visit = (vma: Vma, at?: number): void => {
    if (!vma.mm || vma.mm.users === 0) return;
    const addr = at ?? vma.addressOf(index);
    if (addr === undefined) return;
    const pteAddr = huge ? vma.entryAddr(addr) : addr;
    const pte = vma.mm.pte(pteAddr);
    out.push({ vma, addr, pteAddr, mapped: pte?.kind === 'present' && pte.pfn === (huge ? folio.pfn : page.pfn) });
  };
  if (mapping instanceof KsmStableNode) for (const it of mapping.items) visit(it.vma, it.addr);
  else if (mapping instanceof AnonVma) for (const vma of mapping.vmas) visit(vma);
  else if (mapping instanceof Inode) for (const vma of mapping.mmap.covering(index)) visit(vma);
  return out;
}

/** page_mapped() */
export function pageMapped(page: Page): boolean {
  return page.mapcount > 0;
}

/**
 * try_to_unmap(folio, TTU_IGNORE_MLOCK | TTU_SYNC [| TTU_HWPOISON]) (try_to_unmap_one): each pte's
 * dirty bit is folded into PG_dirty; with TTU_HWPOISON the pte becomes a hwpoison entry, without it
 * an anon swap-cache page gets its swap entry back and a file pte is cleared.
 */
export function tryToUnmap(k: Kernel, page: Page, hwpoison: boolean): void {
  const folio = page.folio();
  for (const m of vmasCovering(page)) {
    if (!m.mapped) continue;
    const mm = m.vma.mm;
    const pte = mm.pte(m.pteAddr);
    if (pte?.kind !== 'present') continue;
    // The entry's page: the raw page, or the whole hugetlb folio behind a huge pte.
    const mapped = folio.hugetlb ? folio : page;
    if (pte.dirty) folio.set(PG.dirty);
    if (hwpoison) mm.setPte(m.pteAddr, { kind: 'hwpoison', pfn: mapped.pfn });
    else if (folio.test(PG.swapcache)) mm.setPte(m.pteAddr, { kind: 'swap', slot: folio.swapSlot });
    else mm.setPte(m.pteAddr, undefined);
    mapped.mapcount--;
    folio.refcount--;
    // TTU_IGNORE_MLOCK: unmapping an mlocked page munlocks it; with no VM_LOCKED mapper left
    // the folio goes back to the evictable LRU (mlock_drain_local).
    if (m.vma.has(VM_LOCKED)) munlockIfUnused(page);
  }
  k.trail('try_to_unmap', `unmapped pfn ${page.pfn.toString(16)}${hwpoison ? ' (hwpoison entries)' : ''}`);
}

function munlockIfUnused(page: Page): void {
  if (page.mapcount > 0) {
    for (const m of vmasCovering(page)) if (m.mapped && m.vma.has(VM_LOCKED)) return;
  }
  page.clear(PG.mlocked | PG.unevictable);
}

/** folio_mkclean(): write-protects and cleans every pte; returns whether any was dirty. */
export function folioMkclean(page: Page): boolean {
  let dirty = false;
  for (const m of vmasCovering(page)) {
    if (!m.mapped) continue;
    const pte = m.vma.mm.pte(m.pteAddr);
    if (pte?.kind === 'present' && pte.dirty) {
      dirty = true;
      pte.dirty = false;
      pte.writable = false;
    }
  }
  return dirty;
}

export { PAGE_SIZE };
