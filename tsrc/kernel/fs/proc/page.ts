// fs/proc/page.c: /proc/kpageflags (stable_page_flags()) and /proc/kpagecount. The KPF bit
// space is also what hwpoison-inject's flags filter compares against.
import type { Kernel } from '../../kernel.js';
import { PG, type Page } from '../../mm/page.js';

/** KPF_* bit numbers (include/uapi/linux/kernel-page-flags.h and the kernel-internal ones). */
export const KPF = {
  locked: 0,
  error: 1,
  referenced: 2,
  uptodate: 3,
  dirty: 4,
  lru: 5,
  active: 6,
  slab: 7,
  writeback: 8,
  reclaim: 9,
  buddy: 10,
  mmap: 11,
  anon: 12,
  swapcache: 13,
  swapbacked: 14,
  compound_head: 15,
  compound_tail: 16,
  huge: 17,
  unevictable: 18,
  hwpoison: 19,
  nopage: 20,
  ksm: 21,
  thp: 22,
  offline: 23,
  zero_page: 24,
  idle: 25,
  pgtable: 26,
  reserved: 32,
  mlocked: 33,
  mappedtodisk: 34,
  private: 35,
  private_2: 36,
  owner_private: 37,
  arch: 38,
  uncached: 39,
  softdirty: 40,
  arch_2: 41,
  arch_3: 42,
} as const;

export type KpfName = keyof typeof KPF;

export function kpfBit(name: string): bigint | undefined {
  const n = name.toLowerCase().replace(/^kpf_/, '');
  const b = (KPF as Record<string, number>)[n];
  return b === undefined ? undefined : 1n << BigInt(b);
}

/** stable_page_flags(page), for the model's kernel version. */
export function stablePageFlags(k: Kernel, pfn: number, page: Page | undefined): bigint {
  if (!page) return 1n << BigInt(KPF.nopage);
  const folio = page.folio();
  const isTail = folio !== page;
  const bit = (b: number): bigint => 1n << BigInt(b);
  let u = 0n;
  const fromFolio = !isTail || k.profile.tailFlagsFromFolio;
  const f = folio;
  if (page.mapcount > 0 || (isTail && folio.mapcount > 0)) u |= bit(KPF.mmap);
  const anon = f.isAnon();
  if (anon) u |= bit(KPF.anon);
  if (anon && (f.ksm || k.profile.kpfKsmOnAllAnon)) u |= bit(KPF.ksm);
  if (f.order > 0) {
    u |= isTail ? bit(KPF.compound_tail) : bit(KPF.compound_head);
    if (f.hugetlb) u |= bit(KPF.huge);
    else u |= bit(KPF.thp);
  }
  if (page.kind === 'zero') u |= bit(KPF.zero_page);
  if (page.test(PG.buddy) && page.refcount === 0) u |= bit(KPF.buddy);
  if (page.test(PG.offline)) u |= bit(KPF.offline);
  if (page.kind === 'pgtable') u |= bit(KPF.pgtable);
  const hwpoisonOn = f.hugetlb ? (isTail ? k.profile.hugetlbHwpoisonAllSubpages && f.test(PG.hwpoison) : f.test(PG.hwpoison)) : page.test(PG.hwpoison);
  if (hwpoisonOn) u |= bit(KPF.hwpoison);
  if (fromFolio) {
    const map: [number, number][] = [
      [PG.locked, KPF.locked],
      [PG.error, KPF.error],
      [PG.referenced, KPF.referenced],
      [PG.uptodate, KPF.uptodate],
      [PG.dirty, KPF.dirty],
      [PG.lru, KPF.lru],
      [PG.active, KPF.active],
      [PG.slab, KPF.slab],
      [PG.writeback, KPF.writeback],
      [PG.reclaim, KPF.reclaim],
      [PG.swapbacked, KPF.swapbacked],
      [PG.unevictable, KPF.unevictable],
      [PG.reserved, KPF.reserved],
      [PG.mlocked, KPF.mlocked],
      [PG.private, KPF.private],
    ];
    for (const [pg, kpf] of map) if (f.test(pg)) u |= bit(kpf);
    if (f.test(PG.swapcache) && f.test(PG.swapbacked)) u |= bit(KPF.swapcache) | bit(KPF.owner_private);
    if (anon && f.test(PG.anonExclusive)) u |= bit(KPF.mappedtodisk);
    if (!k.profile.pgError) u &= ~bit(KPF.error);
  }
  return u;
}

/** Reads /proc/kpageflags at a pfn. */
export function readKpageflags(k: Kernel, pfn: number): bigint {
  return stablePageFlags(k, pfn, k.alloc.pfnToPage(pfn));
}

/** /proc/kpagecount: the map count. */
export function readKpagecount(k: Kernel, pfn: number): number {
  return k.alloc.pfnToPage(pfn)?.mapcount ?? 0;
}
