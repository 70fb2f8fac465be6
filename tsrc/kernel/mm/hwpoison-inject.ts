// mm/hwpoison-inject.c: the debugfs injector (corrupt-pfn, unpoison-pfn) and its filters
// (corrupt-filter-enable, -dev-major, -dev-minor, -flags-mask, -flags-value, -memcg).
import type { Kernel } from '../kernel.js';
import { EINVAL, ENXIO, EOPNOTSUPP } from '../errno.js';
import { Inode } from '../fs.js';
import { hexPfn } from '../printk.js';
import { stablePageFlags } from '../fs/proc/page.js';
import { MF_SW_SIMULATED, memoryFailure, unpoisonMemory } from './memory-failure.js';
import { PG, type Page } from './page.js';

/** kstrtoull(s, 0): decimal, 0x hex, leading-0 octal. */
export function kstrtoull(s: string): bigint | undefined {
  const t = s.trim();
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) return BigInt(t);
  if (/^0[0-7]*$/.test(t)) return t.length > 1 ? BigInt(`0o${t.slice(1)}`) : 0n;
  if (/^[1-9]\d*$/.test(t)) return BigInt(t);
  return undefined;
}

/** hwpoison_filter_dev(). */
function filterDev(k: Kernel, page: Page): boolean {
  const f = k.filter;
  if (f.devMajor === 0xffffffff && f.devMinor === 0xffffffff) return false;
  const mapping = page.folio().mapping;
  if (!(mapping instanceof Inode)) return true;
  if (f.devMajor !== 0xffffffff && f.devMajor !== mapping.sb.major) return true;
  if (f.devMinor !== 0xffffffff && f.devMinor !== mapping.sb.minor) return true;
  return false;
}

/** hwpoison_filter_flags(). */
function filterFlags(k: Kernel, page: Page): boolean {
  if (k.filter.flagsMask === 0n) return false;
  return (stablePageFlags(k, page.pfn, page) & k.filter.flagsMask) !== k.filter.flagsValue;
}

/** hwpoison_filter_task(): the memcg filter. */
function filterMemcg(k: Kernel, page: Page): boolean {
  if (k.filter.memcg === 0n) return false;
  return BigInt(page.folio().memcgIno) !== k.filter.memcg;
}

/** hwpoison_filter(): true = reject the page. */
export function hwpoisonFilter(k: Kernel, page: Page): boolean {
  if (!k.filter.enable) return false;
  if (filterDev(k, page)) return true;
  if (filterFlags(k, page)) return true;
  if (filterMemcg(k, page)) return true;
  return false;
}

/** Loading the module registers the filter hook (hwpoison_filter_register). */
export function loadHwpoisonInject(k: Kernel): void {
  k.hwpoisonInjectLoaded = true;
  k.filterHook = (page) => hwpoisonFilter(k, page);
}

/** hwpoison_inject(): a write to corrupt-pfn. Returns the write(2) result (0 or -errno). */
export function hwpoisonInject(k: Kernel, pfn: number): number {
  const cap = k.requireCap();
  if (cap) return cap;
  const page = k.alloc.pfnToPage(pfn);
  if (!page) return -ENXIO;
  if (k.filter.enable) {
    const folio = page.folio();
    // The racy pre-check: only LRU, hugetlb and free buddy pages are injected.
    if (!folio.test(PG.lru) && !folio.hugetlb && !k.alloc.isFreeBuddy(pfn)) {
      k.trail('hwpoison_inject', `pfn ${hexPfn(pfn)} skipped: not LRU, hugetlb or free (filter enabled)`);
      return 0;
    }
    if (hwpoisonFilter(k, folio)) {
      k.trail('hwpoison_inject', `pfn ${hexPfn(pfn)} skipped by the pre-check filter`);
      return 0;
    }
  }
  k.log.print('info', `Injecting memory failure at pfn ${hexPfn(pfn)}`);
  const err = memoryFailure(k, pfn, MF_SW_SIMULATED);
  return err === -EOPNOTSUPP ? 0 : err;
}

/** unpoison-pfn write. */
export function hwpoisonUnpoison(k: Kernel, pfn: number): number {
  const cap = k.requireCap();
  if (cap) return cap;
  return unpoisonMemory(k, pfn);
}

/** Writes one of the debugfs files under /sys/kernel/debug/hwpoison/. */
export function writeHwpoisonDebugfs(k: Kernel, file: string, value: string): number {
  if (!k.hwpoisonInjectLoaded) return -ENXIO;
  const denied = k.openPrivileged();
  if (denied) return denied;
  const v = kstrtoull(value);
  if (v === undefined) return -EINVAL;
  switch (file) {
    case 'corrupt-pfn':
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? -ENXIO : hwpoisonInject(k, Number(v));
    case 'unpoison-pfn':
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? -ENXIO : hwpoisonUnpoison(k, Number(v));
    case 'corrupt-filter-enable':
      k.filter.enable = Number(v & 0xffffffffn);
      return 0;
    case 'corrupt-filter-dev-major':
      k.filter.devMajor = Number(v & 0xffffffffn);
      return 0;
    case 'corrupt-filter-dev-minor':
      k.filter.devMinor = Number(v & 0xffffffffn);
      return 0;
    case 'corrupt-filter-flags-mask':
      k.filter.flagsMask = v & 0xffffffffffffffffn;
      return 0;
    case 'corrupt-filter-flags-value':
      k.filter.flagsValue = v & 0xffffffffffffffffn;
      return 0;
    case 'corrupt-filter-memcg':
      k.filter.memcg = v;
      return 0;
    default:
      return -EINVAL;
  }
}
