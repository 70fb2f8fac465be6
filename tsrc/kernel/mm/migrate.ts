// mm/migrate.c: moving a page's contents and mappings to a new page (soft offline uses it).
import type { Kernel } from '../kernel.js';
import { Inode } from '../fs.js';
import { PG, type Page } from './page.js';
import { vmasCovering } from './rmap.js';

/** migrate_pages() of one base page: 0, or the count of pages not migrated (a large folio). */
export function migratePage(k: Kernel, old: Page): number {
    const folio = old.folio();
    if (folio.order > 0) return 1;
    const page = k.alloc.alloc();
    page.kind = old.kind;
    page.flags = old.flags & ~(PG.hwpoison | PG.buddy);
    page.mapping = old.mapping;
    page.index = old.index;
    page.data = old.data;
    page.memcgIno = old.memcgIno;
    page.swapSlot = old.swapSlot;
    page.refcount = 0;
    for (const m of vmasCovering(old)) {
      if (!m.mapped) continue;
      const pte = m.vma.mm.pte(m.addr);
      if (pte?.kind !== 'present') continue;
      pte.pfn = page.pfn;
      old.mapcount--;
      old.refcount--;
      page.mapcount++;
      page.refcount++;
    }
    if (old.mapping instanceof Inode && old.mapping.cache.get(old.index) === old) {
      old.mapping.cache.set(old.index, page);
      old.refcount--;
      page.refcount++;
    }
    if (old.test(PG.swapcache)) {
      k.swap.cache.set(old.swapSlot, page);
      old.clear(PG.swapcache);
      old.refcount--;
      page.refcount++;
    }
    old.mapping = null;
    old.clear(PG.lru | PG.dirty | PG.active | PG.mlocked | PG.unevictable | PG.swapbacked);
    old.kind = 'free';
    // The old page keeps one reference: page_handle_poison takes it out of circulation.
    old.refcount = 1;
    k.trail('migrate_pages', `pfn ${old.pfn.toString(16)} -> ${page.pfn.toString(16)}`);
    return 0;
}
