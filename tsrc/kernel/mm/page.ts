// struct page / struct folio: the per-pfn state memory_failure() inspects (kernel-model.md §1).
// Pages are created lazily: a pfn the model never touched is a free buddy page, so a 4 TiB
// machine costs nothing until a case uses its pages.

/** Page flags (include/linux/page-flags.h). Only those hwpoison handling looks at. */
export const PG = {
  locked: 1 << 0,
  error: 1 << 1,
  referenced: 1 << 2,
  uptodate: 1 << 3,
  dirty: 1 << 4,
  lru: 1 << 5,
  active: 1 << 6,
  slab: 1 << 7,
  writeback: 1 << 8,
  reclaim: 1 << 9,
  reserved: 1 << 10,
  private: 1 << 11,
  head: 1 << 12,
  swapcache: 1 << 13,
  swapbacked: 1 << 14,
  mlocked: 1 << 15,
  unevictable: 1 << 16,
  hwpoison: 1 << 17,
  /** PageBuddy (a page type, not a flag in the kernel; kept here for simplicity). */
  buddy: 1 << 18,
  /** PG_anon_exclusive (shares its bit with PG_mappedtodisk). */
  anonExclusive: 1 << 19,
  pgtable: 1 << 20,
  offline: 1 << 21,
} as const;

export type PageFlag = keyof typeof PG;

/** What owns a page. */
export type PageKind =
  | 'free'
  | 'anon'
  | 'file'
  | 'shmem'
  | 'slab'
  | 'pgtable'
  | 'reserved'
  | 'zero'
  | 'kernel'
  | 'hugetlb';

/** page->private value when hwpoison took a free page off the buddy lists (MAGIC_HWPOISON). */
export const MAGIC_HWPOISON = 0x48575053;

export interface AnonVmaLike {
  readonly kind: 'anon_vma';
}

export interface AddressSpaceLike {
  readonly kind: 'address_space';
}

export class Page {
  flags = 0;
  refcount = 0;
  /** Number of page-table entries mapping this page (page_mapcount). */
  mapcount = 0;
  kind: PageKind = 'free';
  /** folio->mapping: an anon_vma for anon pages, an address_space for page cache, null otherwise. */
  mapping: AnonVmaLike | AddressSpaceLike | null = null;
  /** folio->index: page offset in the file, or linear page index for anon pages. */
  index = 0;
  /** Swap slot while in the swap cache. */
  swapSlot = -1;
  /** memcg the page is charged to (cgroup inode number; 0 = uncharged). */
  memcgIno = 0;
  /** Compound order of a head page (0 for base pages). */
  order = 0;
  /** Head page of a compound page this page is a tail of. */
  head: Page | null = null;
  /** page->private (MAGIC_HWPOISON when taken off buddy). */
  private = 0;
  /** Data token: what the page holds (0 = zeros). Lets cases check data intact / lost / old. */
  data = 0;
  /**
   * hugetlb folio state (on the head): in the free pool or in use, the huge page shift, and the
   * raw error subpages (the raw_hwp_page list hanging off the folio, as pfns).
   */
  hugetlb: { free: boolean; size: 21 | 30; rawErrors: number[]; unreliable?: boolean } | null = null;
  /** KSM stable page. */
  ksm = false;
  /** THP folio that had a poisoned subpage (folio_set_has_hwpoisoned). */
  hasHwpoisoned = false;
  /** Pinned by GUP (e.g. RDMA): makes THP splits fail. */
  pinned = 0;

  constructor(
    readonly pfn: number,
    readonly nid: number,
  ) {}

  test(f: number): boolean {
    return (this.flags & f) !== 0;
  }
  set(f: number): void {
    this.flags |= f;
  }
  clear(f: number): void {
    this.flags &= ~f;
  }
  /** compound_head(). */
  folio(): Page {
    return this.head ?? this;
  }
  nrPages(): number {
    return 1 << this.order;
  }
  isAnon(): boolean {
    return this.folio().mapping?.kind === 'anon_vma';
  }
  /** folio_test_large(): a compound head or tail. */
  isLarge(): boolean {
    return this.folio().order > 0;
  }
  /** The subpage of this folio at index i (materialised lazily by the allocator). */
  subpageIndex(): number {
    return this.pfn - this.folio().pfn;
  }
}
