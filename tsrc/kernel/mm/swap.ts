// Swap: the swap device, the swap cache (mm/swap_state.c), swap-out (reclaim of one page) and
// swap-in (do_swap_page). Clean and dirty swap-cache pages are distinct states for
// memory_failure()'s error_states[] table.
import type { Kernel } from '../kernel.js';
import { AnonVma, type Vma } from './mm.js';
import { PG, type Page } from './page.js';
import { vmasCovering } from './rmap.js';

export class Swap {
  /** Swap device contents: slot -> data token. */
  readonly device = new Map<number, number>();
  /** The swap cache: slot -> page. */
  readonly cache = new Map<number, Page>();
  private nextSlot = 1;
  constructor(private readonly k: Kernel) {}

  /** Reclaim one anonymous page: write it to swap, replace its ptes with swap entries, free it. */
  swapOut(page: Page, keepInCache: boolean): boolean {
    if (!(page.mapping instanceof AnonVma) || page.test(PG.hwpoison)) return false;
    const slot = page.swapSlot > 0 ? page.swapSlot : this.nextSlot++;
    this.device.set(slot, page.data);
    for (const m of vmasCovering(page)) {
      if (!m.mapped) continue;
      m.vma.mm.setPte(m.addr, { kind: 'swap', slot });
      page.mapcount--;
      page.refcount--;
    }
    page.swapSlot = slot;
    if (keepInCache) {
      page.set(PG.swapcache | PG.swapbacked);
      page.clear(PG.dirty);
      this.cache.set(slot, page);
      page.refcount = Math.max(page.refcount, 0) + 1;
    } else {
      // Reclaim finished: the page leaves the swap cache and is freed (__remove_mapping).
      if (page.test(PG.swapcache)) this.cache.delete(slot);
      page.clear(PG.swapcache);
      page.refcount = 0;
      this.k.alloc.free(page);
    }
    return true;
  }

  /** do_swap_page(): the swap-cache page for a slot, read from the device if needed; undefined if poisoned. */
  swapIn(slot: number, vma: Vma): Page | undefined {
    let page = this.cache.get(slot);
    if (page) {
      if (page.test(PG.hwpoison)) return undefined;
      return page;
    }
    page = this.k.alloc.alloc();
    page.kind = 'anon';
    page.mapping = vma.anonVma;
    page.set(PG.lru | PG.swapbacked | PG.swapcache | PG.uptodate);
    page.swapSlot = slot;
    page.data = this.device.get(slot) ?? 0;
    // The swap cache holds the allocation reference.
    this.cache.set(slot, page);
    return page;
  }

  /** delete_from_swap_cache(). */
  deleteFromSwapCache(page: Page): void {
    if (!page.test(PG.swapcache)) return;
    this.cache.delete(page.swapSlot);
    page.clear(PG.swapcache);
    page.refcount--;
  }
}
