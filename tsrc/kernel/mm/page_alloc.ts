// The page allocator (mm/page_alloc.c) over a sparse mem_map: free pages are implicit, so the
// cost is proportional to the pages a case uses, not to the machine's memory size.
import { MAGIC_HWPOISON, Page, PG } from './page.js';

/** What the kernel needs to know about physical memory (implemented by the simulated hardware). */
export interface PhysLayout {
  /** Number of page frames spanned (max pfn + 1). */
  readonly maxPfn: number;
  /** pfn_valid() && online RAM: does the pfn have a struct page in System RAM? */
  isRam(pfn: number): boolean;
  /** NUMA node of a pfn (pfn_to_nid). */
  nodeOf(pfn: number): number;
  /** [startPfn, endPfn) of each node. */
  readonly nodes: readonly { nid: number; startPfn: number; endPfn: number }[];
}

/** Pages below this pfn are firmware/kernel-image reserved (the first 16 MiB). */
export const RESERVED_LOW_PFNS = 0x1000;

export class PageAllocator {
  /** mem_map, sparse: only pages the model has touched. */
  readonly pages = new Map<number, Page>();
  /** Freed pages, reused first (like the per-CPU lists): LIFO. */
  private freeList: number[] = [];
  /** Next never-used pfn per node. */
  private cursor: number[];
  /**
   * Compound folios (THP, hugetlb) by head pfn. Their tail struct pages are created on first use
   * (a 1 GiB folio would otherwise cost 262144 objects), so lookups go through this index.
   */
  private readonly compound = new Map<number, Page>();
  /** How many registered compound folios there are of each order. */
  private readonly compoundOrders = new Map<number, number>();
  /** free_huge_folio(): installed by hugetlb.ts; a hugetlb folio whose last reference goes. */
  freeHugeFolio: ((folio: Page) => void) | undefined;

  constructor(readonly layout: PhysLayout) {
    // User pages start a quarter into each node (at most 1 GiB in) so low pfns stay kernel/DMA.
    this.cursor = layout.nodes.map((n) => Math.max(n.startPfn + RESERVED_LOW_PFNS, n.startPfn + Math.min(Math.floor((n.endPfn - n.startPfn) / 4), 0x40000)));
  }

  /** The head of the registered compound folio containing pfn (compound_head() for lazy tails). */
  private compoundHeadOf(pfn: number): Page | undefined {
    for (const order of this.compoundOrders.keys()) {
      const n = 2 ** order;
      const head = this.compound.get(Math.floor(pfn / n) * n);
      if (head && head.order === order) return head;
    }
    return undefined;
  }

  /** prep_compound_page(): makes `head` the head of a 2^order folio; tails appear on demand. */
  registerCompound(head: Page, order: number): void {
    head.order = order;
    head.set(PG.head);
    this.compound.set(head.pfn, head);
    this.compoundOrders.set(order, (this.compoundOrders.get(order) ?? 0) + 1);
  }

  /** Undoes registerCompound (split / dissolve / free): the head becomes an order-0 page. */
  unregisterCompound(head: Page): void {
    if (this.compound.get(head.pfn) !== head) return;
    this.compound.delete(head.pfn);
    const left = (this.compoundOrders.get(head.order) ?? 1) - 1;
    if (left > 0) this.compoundOrders.set(head.order, left);
    else this.compoundOrders.delete(head.order);
    head.order = 0;
    head.clear(PG.head);
  }

  /** The tail pages of a folio that exist as objects (others are implicit and carry no state). */
  materialisedTails(head: Page): Page[] {
    const out: Page[] = [];
    const n = head.nrPages();
    for (let i = 1; i < n; i++) {
      const p = this.pages.get(head.pfn + i);
      if (p && p.head === head) out.push(p);
    }
    return out;
  }

  /** pfn_to_online_page(): the struct page, created on first use; undefined for holes. */
  pfnToPage(pfn: number): Page | undefined {
    if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= this.layout.maxPfn || !this.layout.isRam(pfn)) return undefined;
    let p = this.pages.get(pfn);
    if (!p) {
      p = new Page(pfn, this.layout.nodeOf(pfn));
      const head = this.compound.size ? this.compoundHeadOf(pfn) : undefined;
      if (head) {
        // A tail page of a compound folio: its state lives in the head.
        p.head = head;
        p.kind = head.kind;
      } else if (pfn < RESERVED_LOW_PFNS) {
        p.kind = 'reserved';
        p.set(PG.reserved);
        p.refcount = 1;
      } else {
        p.kind = 'free';
        p.set(PG.buddy);
      }
      this.pages.set(pfn, p);
    }
    return p;
  }

  /** Peek without materialising: is this pfn a free buddy page? (is_free_buddy_page) */
  isFreeBuddy(pfn: number): boolean {
    const p = this.pages.get(pfn);
    if (p) return p.test(PG.buddy) && p.refcount === 0;
    if (this.compound.size && this.compoundHeadOf(pfn)) return false;
    return this.layout.isRam(pfn) && pfn >= RESERVED_LOW_PFNS;
  }

  /** alloc_page(): a free page, never a poisoned one. */
  alloc(nid = 0): Page {
    for (;;) {
      const pfn = this.freeList.pop() ?? this.nextFresh(nid);
      const p = this.pfnToPage(pfn);
      if (!p || !p.test(PG.buddy) || p.test(PG.hwpoison) || p.refcount !== 0) continue;
      p.clear(PG.buddy);
      p.refcount = 1;
      p.flags = 0;
      p.mapping = null;
      p.index = 0;
      p.data = 0;
      p.memcgIno = 0;
      return p;
    }
  }

  /**
   * alloc_contig_pages() / alloc_pages(order): 2^order contiguous, naturally aligned free pages
   * (for hugetlb pools and THP). The head holds the one reference; tails are created lazily.
   */
  allocContig(order: number, nid = 0): Page | undefined {
    const n = 2 ** order;
    const node = this.layout.nodes[nid] ?? this.layout.nodes[0]!;
    const cur = this.cursor[nid] ?? node.startPfn;
    let start = Math.ceil(cur / n) * n;
    for (; start + n <= node.endPfn; start += n) {
      let bad = -1;
      for (let i = 0; i < n; i++) {
        if (!this.isFreeBuddy(start + i)) {
          bad = i;
          break;
        }
      }
      if (bad >= 0) continue;
      // The skipped gap below `start` stays implicitly free; nextFresh() never looks back.
      this.cursor[nid] = start + n;
      const head = this.pfnToPage(start)!;
      for (let i = 1; i < n; i++) this.pages.delete(start + i);
      head.clear(PG.buddy);
      head.flags = 0;
      head.refcount = 1;
      head.head = null;
      head.mapping = null;
      head.index = 0;
      head.data = 0;
      head.memcgIno = 0;
      this.registerCompound(head, order);
      return head;
    }
    return undefined;
  }

  private nextFresh(nid: number): number {
    const node = this.layout.nodes[nid] ?? this.layout.nodes[0]!;
    for (;;) {
      const pfn = this.cursor[nid]!;
      if (pfn >= node.endPfn) throw new Error('out of memory');
      this.cursor[nid] = pfn + 1;
      if (this.layout.isRam(pfn) && !this.pages.has(pfn)) return pfn;
    }
  }

  /** The pfn alloc() would hand out next (for `free[N]` page references). */
  peekFree(nth: number, nid = 0): number {
    const fromList = [...this.freeList].reverse().filter((pfn) => this.isFreeBuddy(pfn));
    if (nth < fromList.length) return fromList[nth]!;
    let k = nth - fromList.length;
    const node = this.layout.nodes[nid] ?? this.layout.nodes[0]!;
    for (let pfn = this.cursor[nid]!; pfn < node.endPfn; pfn++) {
      if (this.layout.isRam(pfn) && this.isFreeBuddy(pfn)) {
        if (k === 0) return pfn;
        k--;
      }
    }
    throw new Error('out of memory');
  }

  private resetFree(p: Page): void {
    p.flags = PG.buddy;
    p.refcount = 0;
    p.mapcount = 0;
    p.mapping = null;
    p.kind = 'free';
    p.head = null;
    p.order = 0;
    p.hugetlb = null;
    p.ksm = false;
    p.hasHwpoisoned = false;
    p.pinned = 0;
    p.memcgIno = 0;
    p.swapSlot = -1;
    p.index = 0;
  }

  /**
   * __free_pages(): back to the free lists. Poisoned pages are never freed (memory_failure holds a
   * ref). A hugetlb folio goes back to its pool (free_huge_folio); a compound folio is freed
   * whole, except subpages that carry PG_hwpoison, which stay out of circulation.
   */
  free(p: Page): void {
    const f = p.folio();
    if (f.hugetlb && this.freeHugeFolio) {
      this.freeHugeFolio(f);
      return;
    }
    if (f.order > 0) {
      this.freeCompound(f);
      return;
    }
    if (f.test(PG.hwpoison)) return;
    this.resetFree(f);
    this.freeList.push(f.pfn);
  }

  /** Frees every subpage of a compound folio to the buddy allocator (poisoned ones excepted). */
  freeCompound(head: Page): void {
    const n = head.nrPages();
    const tails = this.materialisedTails(head);
    this.unregisterCompound(head);
    for (const t of tails) {
      if (t.test(PG.hwpoison)) {
        // Taken off buddy for good (take_page_off_buddy when the folio is freed).
        t.head = null;
        t.order = 0;
        t.kind = 'free';
        t.mapping = null;
        t.mapcount = 0;
        t.clear(PG.buddy);
        t.private = MAGIC_HWPOISON;
        continue;
      }
      this.resetFree(t);
    }
    if (head.test(PG.hwpoison)) {
      head.hugetlb = null;
      head.kind = 'free';
      head.mapping = null;
      head.mapcount = 0;
      head.flags = PG.hwpoison;
      head.private = MAGIC_HWPOISON;
    } else {
      this.resetFree(head);
      this.freeList.push(head.pfn);
    }
    // Small folios are reused through the free list; larger ones stay implicitly free.
    if (n <= 512) for (let i = 1; i < n; i++) if (this.isFreeBuddy(head.pfn + i)) this.freeList.push(head.pfn + i);
  }

  /** put_page() / folio_put(): drop a reference on the folio; frees it when it was the last. */
  put(p: Page): void {
    const f = p.folio();
    f.refcount--;
    if (f.refcount <= 0) {
      f.refcount = 0;
      if (f.hugetlb) {
        this.free(f);
        return;
      }
      if (f.kind !== 'reserved' && f.kind !== 'zero' && !f.test(PG.hwpoison)) this.free(f);
    }
  }

  /** take_page_off_buddy(): hwpoison removes a free page from the allocator for good. */
  takeOffBuddy(p: Page): boolean {
    if (!p.test(PG.buddy) || p.refcount !== 0) return false;
    p.clear(PG.buddy);
    p.private = MAGIC_HWPOISON;
    p.kind = 'free';
    const i = this.freeList.lastIndexOf(p.pfn);
    if (i >= 0) this.freeList = this.freeList.filter((pfn) => pfn !== p.pfn);
    return true;
  }

  /** put_page_back_buddy(): unpoison returns a taken-off page to the allocator. */
  putBackBuddy(p: Page): boolean {
    if (p.private !== MAGIC_HWPOISON) return false;
    p.private = 0;
    p.clear(PG.hwpoison);
    this.free(p);
    return true;
  }
}
