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

  constructor(readonly layout: PhysLayout) {
    // User pages start a quarter into each node (at most 1 GiB in) so low pfns stay kernel/DMA.
    this.cursor = layout.nodes.map((n) => Math.max(n.startPfn + RESERVED_LOW_PFNS, n.startPfn + Math.min(Math.floor((n.endPfn - n.startPfn) / 4), 0x40000)));
  }

  /** pfn_to_online_page(): the struct page, created on first use; undefined for holes. */
  pfnToPage(pfn: number): Page | undefined {
    if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= this.layout.maxPfn || !this.layout.isRam(pfn)) return undefined;
    let p = this.pages.get(pfn);
    if (!p) {
      p = new Page(pfn, this.layout.nodeOf(pfn));
      if (pfn < RESERVED_LOW_PFNS) {
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

  /** Allocates 2^order contiguous, naturally aligned free pages (for hugetlb / THP). */
  allocContig(order: number, nid = 0): Page | undefined {
    const n = 1 << order;
    const node = this.layout.nodes[nid] ?? this.layout.nodes[0]!;
    let start = Math.ceil(this.cursor[nid]! / n) * n;
    for (; start + n <= node.endPfn; start += n) {
      let ok = true;
      for (let i = 0; i < n && ok; i++) if (!this.isFreeBuddy(start + i)) ok = false;
      if (!ok) continue;
      this.cursor[nid] = start + n;
      const head = this.pfnToPage(start)!;
      for (let i = 0; i < n; i++) {
        const p = i === 0 ? head : this.pfnToPage(start + i)!;
        p.clear(PG.buddy);
        p.flags = 0;
        p.refcount = i === 0 ? 1 : 0;
        p.head = i === 0 ? null : head;
        p.mapping = null;
      }
      head.order = order;
      head.set(PG.head);
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

  /** __free_page(): back to the free lists. Poisoned pages are never freed (memory_failure holds a ref). */
  free(p: Page): void {
    if (p.test(PG.hwpoison)) return;
    p.flags = PG.buddy;
    p.refcount = 0;
    p.mapcount = 0;
    p.mapping = null;
    p.kind = 'free';
    p.head = null;
    p.order = 0;
    p.hugetlb = null;
    p.ksm = false;
    p.memcgIno = 0;
    p.swapSlot = -1;
    this.freeList.push(p.pfn);
  }

  /** put_page(): drop a reference; frees the page when it was the last. */
  put(p: Page): void {
    p.refcount--;
    if (p.refcount <= 0) {
      p.refcount = 0;
      if (p.kind !== 'reserved' && p.kind !== 'zero' && !p.test(PG.hwpoison)) this.free(p);
    }
  }

  /** take_page_off_buddy(): hwpoison removes a free page from the allocator for good. */
  takeOffBuddy(p: Page): boolean {
    if (!p.test(PG.buddy) || p.refcount !== 0) return false;
    p.clear(PG.buddy);
    p.private = MAGIC_HWPOISON;
    p.kind = 'free';
    this.freeList = this.freeList.filter((pfn) => pfn !== p.pfn);
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
