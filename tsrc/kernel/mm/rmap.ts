// Reverse mapping (mm/rmap.c): from a page to the VMAs and page-table entries that map it,
// without scanning every process. Anonymous pages are found through their anon_vma, page-cache
// pages through the file's i_mmap set.
import type { Kernel } from '../kernel.js';
import { Inode } from '../fs.js';
import { AnonVma, PAGE_SIZE, VM_LOCKED, type Vma } from './mm.js';
import { PG, type Page } from './page.js';

export interface Mapper {
  vma: Vma;
  /** User address of the page in the VMA. */
  addr: number;
  /** Whether a present pte maps this very pfn there. */
  mapped: boolean;
}

/** Every VMA that covers the page (file: the i_mmap interval; anon: the anon_vma's VMAs). */
export function vmasCovering(page: Page): Mapper[] {
  const folio = page.folio();
  const mapping = folio.mapping;
  const out: Mapper[] = [];
  const index = folio.index + (page.pfn - folio.pfn);
  const visit = (vma: Vma): void => {
    if (!vma.mm || vma.mm.users === 0) return;
    const addr = vma.addressOf(index);
    if (addr === undefined) return;
    const pte = vma.mm.pte(addr);
    out.push({ vma, addr, mapped: pte?.kind === 'present' && pte.pfn === page.pfn });
  };
  if (mapping instanceof AnonVma) for (const vma of mapping.vmas) visit(vma);
  else if (mapping instanceof Inode) for (const vma of mapping.mmap) visit(vma);
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
  for (const m of vmasCovering(page)) {
    if (!m.mapped) continue;
    const mm = m.vma.mm;
    const pte = mm.pte(m.addr);
    if (pte?.kind !== 'present') continue;
    if (pte.dirty) page.set(PG.dirty);
    if (hwpoison) mm.setPte(m.addr, { kind: 'hwpoison', pfn: page.pfn });
    else if (page.test(PG.swapcache)) mm.setPte(m.addr, { kind: 'swap', slot: page.swapSlot });
    else mm.setPte(m.addr, undefined);
    page.mapcount--;
    page.refcount--;
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
    const pte = m.vma.mm.pte(m.addr);
    if (pte?.kind === 'present' && pte.dirty) {
      dirty = true;
      pte.dirty = false;
      pte.writable = false;
    }
  }
  return dirty;
}

export { PAGE_SIZE };
