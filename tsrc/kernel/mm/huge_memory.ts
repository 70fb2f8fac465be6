// mm/huge_memory.c: transparent huge pages. Anonymous THP faults (do_huge_pmd_anonymous_page),
// the huge zero page, split_huge_page_to_list_to_order() (what memory_failure's
// try_to_split_thp_page() and soft offline call), and the AnonHugePages counter
// (kernel-model.md §7, §8.3, §23.1 #14).
//
// Model: a THP is a compound folio of order 9 whose tail struct pages are created on demand.
// It is mapped by 512 ptes (one per subpage, each subpage's mapcount counts its ptes) while the
// references live on the head, as for a PTE-mapped THP; this keeps per-4 KiB faults, COW and
// the hwpoison entries after a split exact.
import type { Kernel } from '../kernel.js';
import { EBUSY, EINVAL } from '../errno.js';
import { hexPfn } from '../printk.js';
import { hooks } from './memory-failure.js';
import { PAGE_SIZE, VM_HUGEPAGE, VM_SHARED, type Vma } from './mm.js';
import { PG, type Page } from './page.js';

export const HPAGE_PMD_ORDER = 9;
export const HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER;
export const HPAGE_PMD_SIZE = HPAGE_PMD_NR * PAGE_SIZE;

interface ThpState {
  /** The huge zero page, allocated on first use (mm_get_huge_zero_folio). */
  hugeZero: Page | undefined;
  /** Anonymous THP folios (NR_ANON_THPS while PMD-mappable). */
  readonly anon: Set<Page>;
}

const states = new WeakMap<Kernel, ThpState>();

function thpState(k: Kernel): ThpState {
  let st = states.get(k);
  if (!st) {
    st = { hugeZero: undefined, anon: new Set() };
    states.set(k, st);
  }
  return st;
}

/** The huge zero page (a large folio of zeros, never split, never freed). */
export function hugeZeroFolio(k: Kernel): Page | undefined {
  const st = thpState(k);
  if (!st.hugeZero) {
    const f = k.alloc.allocContig(HPAGE_PMD_ORDER);
    if (!f) return undefined;
    f.kind = 'zero';
    f.flags |= PG.uptodate;
    f.refcount = 1;
    st.hugeZero = f;
  }
  return st.hugeZero;
}

export function isHugeZeroFolio(k: Kernel, folio: Page): boolean {
  return states.get(k)?.hugeZero === folio;
}

/** madvise(MADV_HUGEPAGE): the VMA may get THPs at fault time. */
export function madviseHugepage(vma: Vma): void {
  vma.flags |= VM_HUGEPAGE;
}

/**
 * thp_vma_allowable_order() + the alignment test of do_huge_pmd_anonymous_page: a private
 * anonymous VMA with VM_HUGEPAGE whose 2 MiB-aligned block around addr lies inside it and has no
 * page-table entries yet.
 */
export function thpFaultable(vma: Vma, addr: number): number | undefined {
  if (!vma.has(VM_HUGEPAGE) || vma.has(VM_SHARED) || vma.file || vma.pageShift !== 12) return undefined;
  const at = Math.floor(addr / HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE;
  if (at < vma.start || at + HPAGE_PMD_SIZE > vma.end) return undefined;
  if (vma.mm.entriesIn(at, at + HPAGE_PMD_SIZE).length) return undefined;
  return at;
}

/**
 * do_huge_pmd_anonymous_page(): a read maps the huge zero page, a write a new zeroed anon THP.
 * Returns false when no order-9 block is free (the fault falls back to 4 KiB pages).
 */
export function doHugePmdAnonymousPage(k: Kernel, vma: Vma, at: number, write: boolean): boolean {
  let folio: Page | undefined;
  if (!write) {
    folio = hugeZeroFolio(k);
    if (!folio) return false;
  } else {
    folio = k.alloc.allocContig(HPAGE_PMD_ORDER);
    if (!folio) return false;
    folio.kind = 'anon';
    folio.mapping = vma.anonVma;
    folio.index = vma.pgoffOf(at);
    folio.set(PG.lru | PG.swapbacked | PG.uptodate | PG.anonExclusive);
    folio.memcgIno = k.procOfMm(vma.mm)?.memcgIno ?? 0;
    folio.refcount = 0;
    thpState(k).anon.add(folio);
  }
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const page = i === 0 ? folio : k.alloc.pfnToPage(folio.pfn + i)!;
    vma.mm.setPte(at + i * PAGE_SIZE, { kind: 'present', pfn: page.pfn, dirty: write, writable: write });
    page.mapcount++;
    folio.refcount++;
  }
  k.trail('do_huge_pmd_anonymous_page', `${write ? 'THP' : 'huge zero page'} ${hexPfn(folio.pfn)} mapped at ${hexPfn(at)}`);
  return true;
}

/**
 * split_huge_page_to_list_to_order(page, 0): fails for the huge zero page and for a folio with
 * extra references (GUP/RDMA pins: can_split_folio); on success every subpage is an order-0 page
 * with its own mappings, and the caller's reference moves to `page`.
 */
export function splitHugePage(k: Kernel, page: Page): number {
  const folio = page.folio();
  if (folio.order === 0) return 0;
  if (folio.hugetlb) return -EINVAL;
  if (isHugeZeroFolio(k, folio) || folio.kind === 'zero') {
    k.trail('split_huge_page', 'the huge zero page cannot be split');
    if (k.profile.hzpSplitWarn) k.log.printRatelimited('split_huge_page_hzp', k.now, 5, 10, 'warn', 'huge_memory: Called split_huge_page for huge zero page');
    return -EBUSY;
  }
  const n = folio.nrPages();
  const subpages: Page[] = [];
  let mapcount = 0;
  let pinned = 0;
  for (let i = 0; i < n; i++) {
    const p = i === 0 ? folio : k.alloc.pfnToPage(folio.pfn + i)!;
    subpages.push(p);
    mapcount += p.mapcount;
    pinned += p.pinned;
  }
  const extra = folio.refcount - mapcount;
  if (pinned > 0 || extra > 1) {
    k.trail('split_huge_page', `folio has extra references (${pinned} pins, ${extra} refs beyond its mappings): -EBUSY`);
    return -EBUSY;
  }
  const flags = folio.flags & ~(PG.head | PG.hwpoison);
  k.alloc.unregisterCompound(folio);
  thpState(k).anon.delete(folio);
  folio.hasHwpoisoned = false;
  for (const [i, p] of subpages.entries()) {
    p.head = null;
    p.order = 0;
    p.kind = folio.kind;
    p.mapping = folio.mapping;
    p.index = folio.index + i;
    p.memcgIno = folio.memcgIno;
    p.flags = flags | (p.flags & PG.hwpoison);
    p.refcount = p.mapcount;
  }
  page.refcount += Math.max(extra, 0);
  k.trail('split_huge_page', `THP ${hexPfn(folio.pfn)} split into ${n} base pages`);
  return 0;
}

/** AnonHugePages (kB) of /proc/meminfo. */
export function thpMeminfo(k: Kernel): Record<string, number> {
  const st = states.get(k);
  let n = 0;
  if (st) {
    for (const f of [...st.anon]) {
      if (f.order !== HPAGE_PMD_ORDER || f.kind !== 'anon' || f.refcount === 0) st.anon.delete(f);
      else n++;
    }
  }
  return { AnonHugePages: n * (HPAGE_PMD_SIZE / 1024) };
}

hooks.splitThp = splitHugePage;
