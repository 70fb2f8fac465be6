// Swap: the swap device, the swap cache (mm/swap_state.c), swap-out (reclaim of one page),
// swap-in (do_swap_page), freeing swap (folio_free_swap / free_swap_and_cache) and swapoff
// (mm/swapfile.c try_to_unuse / unuse_pte). Clean and dirty swap-cache pages are distinct states
// for memory_failure()'s error_states[] table (kernel-model.md §5 rows 16–17, §23.3.7).
import type { Kernel } from '../kernel.js';
import { compareVersions } from '../profiles.js';
import { AnonVma, type Vma } from './mm.js';
import { PG, type Page } from './page.js';
import { vmasCovering } from './rmap.js';
import { splitHugePage } from './huge_memory.js';

export type SwapOutMode =
  /** Reclaim completed: the page is freed, only the swap device holds the data. */
  | 'freed'
  /** Written to swap, still in the swap cache (clean swap-cache page, not mapped). */
  | 'cached'
  /** Being swapped out: unmapped, in the swap cache and still dirty (writeout not done). */
  | 'writing';

export class Swap {
  /** Swap device contents: slot -> data token. */
  readonly device = new Map<number, number>();
  /** The swap cache: slot -> page. */
  readonly cache = new Map<number, Page>();
  private nextSlot = 1;
  constructor(private readonly k: Kernel) {}

  /**
   * shrink_folio_list() for one anonymous page: add_to_swap, unmap (ptes -> swap entries),
   * pageout, __remove_mapping. A THP is split first (split_folio_to_list). `keepInCache` (or a
   * mode) says how far reclaim got.
   */
  swapOut(page: Page, keepInCache: boolean | SwapOutMode): boolean {
    const mode: SwapOutMode = keepInCache === true ? 'cached' : keepInCache === false ? 'freed' : keepInCache;
    if (page.folio().order > 0) {
      if (page.folio().hugetlb) return false;
      // Reclaim splits the THP: the pte-mapped subpages become separate pages.
      page.folio().refcount++;
      const err = splitHugePage(this.k, page);
      page.folio().refcount--;
      if (err) return false;
    }
    if (!(page.mapping instanceof AnonVma) || page.test(PG.hwpoison)) return false;
    const slot = page.swapSlot > 0 ? page.swapSlot : this.nextSlot++;
    let dirty = page.test(PG.dirty);
    for (const m of vmasCovering(page)) {
      if (!m.mapped) continue;
      const pte = m.vma.mm.pte(m.addr);
      if (pte?.kind === 'present' && pte.dirty) dirty = true;
      m.vma.mm.setPte(m.addr, { kind: 'swap', slot });
      page.mapcount--;
      page.refcount--;
    }
    page.swapSlot = slot;
    if (mode !== 'writing') this.device.set(slot, page.data);
    if (mode === 'freed') {
      // Reclaim finished: the page leaves the swap cache and is freed (__remove_mapping).
      if (page.test(PG.swapcache)) this.cache.delete(slot);
      page.clear(PG.swapcache);
      page.refcount = 0;
      this.k.alloc.free(page);
      return true;
    }
    page.set(PG.swapcache | PG.swapbacked);
    if (mode === 'writing' || (dirty && mode !== 'cached')) page.set(PG.dirty);
    else page.clear(PG.dirty);
    this.cache.set(slot, page);
    page.refcount = Math.max(page.refcount, 0) + 1;
    return true;
  }

  /** do_swap_page(): the swap-cache page for a slot, read from the device if needed; undefined if poisoned. */
  swapIn(slot: number, vma: Vma, addr: number): Page | undefined {
    let page = this.cache.get(slot);
    if (page) {
      if (page.test(PG.hwpoison)) return undefined;
      return page;
    }
    page = this.k.alloc.alloc();
    page.kind = 'anon';
    page.mapping = vma.anonVma;
    // The anon rmap finds the page through its linear index in the VMA.
    page.index = vma.pgoffOf(addr);
    page.set(PG.lru | PG.swapbacked | PG.swapcache | PG.uptodate);
    page.swapSlot = slot;
    page.data = this.device.get(slot) ?? 0;
    page.memcgIno = this.k.procOfMm(vma.mm)?.memcgIno ?? 0;
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

  /** folio_free_swap(): the page no longer needs its swap copy: leave the cache, free the slot. */
  freeSwap(page: Page): void {
    if (!page.test(PG.swapcache) || page.test(PG.hwpoison)) return;
    const slot = page.swapSlot;
    this.deleteFromSwapCache(page);
    this.device.delete(slot);
    page.swapSlot = -1;
  }

  /** free_swap_and_cache(): a swap entry was zapped; an unmapped cache page goes with it. */
  freeEntry(slot: number): void {
    const page = this.cache.get(slot);
    if (page && page.mapcount === 0 && !page.test(PG.hwpoison)) {
      this.deleteFromSwapCache(page);
      this.device.delete(slot);
    } else if (!page) {
      this.device.delete(slot);
    }
  }

  /**
   * swapoff(): every swap entry is swapped back in. A poisoned (dirty, !uptodate) swap-cache page
   * cannot be: 6.1 leaves a swap-in error marker (pagemap type 31, plain SIGBUS on touch), later
   * kernels a hwpoison entry (AR on touch); either way the page leaves the swap cache.
   */
  swapoff(): number {
    const k = this.k;
    const errorMarker = compareVersions(k.profile.version, '6.6') < 0;
    const poisoned = new Set<Page>();
    for (const proc of [...k.processes.values()].sort((a, b) => a.pid - b.pid)) {
      const mm = proc.mm;
      if (!mm || !proc.alive) continue;
      for (const [vpn, pte] of [...mm.ptes.entries()].sort((a, b) => a[0] - b[0])) {
        if (pte.kind !== 'swap' || pte.marker) continue;
        const addr = vpn * 4096;
        const vma = mm.findVma(addr);
        if (!vma) continue;
        const cached = this.cache.get(pte.slot);
        if (cached?.test(PG.hwpoison)) {
          mm.setPte(addr, errorMarker ? { kind: 'swap', slot: 0, marker: 'swapin-error' } : { kind: 'hwpoison', pfn: cached.pfn });
          poisoned.add(cached);
          continue;
        }
        const page = this.swapIn(pte.slot, vma, addr)!;
        mm.setPte(addr, { kind: 'present', pfn: page.pfn, dirty: false, writable: false });
        page.mapcount++;
        page.refcount++;
      }
    }
    for (const page of poisoned) {
      this.cache.delete(page.swapSlot);
      page.clear(PG.swapcache);
      page.refcount--;
    }
    // Every remaining page leaves the swap cache (it keeps its data, now dirty anon memory).
    for (const page of [...this.cache.values()]) {
      if (page.test(PG.hwpoison)) continue;
      if (page.mapcount > 0) page.set(PG.dirty);
      this.deleteFromSwapCache(page);
      page.swapSlot = -1;
      if (page.refcount <= 0) k.alloc.free(page);
    }
    this.device.clear();
    k.trail('swapoff', `swap device emptied; ${poisoned.size} poisoned swap-cache page(s) left as ${errorMarker ? 'swap-in error markers' : 'hwpoison entries'}`);
    return 0;
  }
}
