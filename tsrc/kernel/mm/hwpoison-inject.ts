// mm/hwpoison-inject.c: the debugfs injector (corrupt-pfn, unpoison-pfn) and its filters
// (corrupt-filter-enable, -dev-major, -dev-minor, -flags-mask, -flags-value, -memcg).
import type { Kernel } from '../kernel.js';
import { EACCES, EINVAL, ENOENT, ENXIO, EOPNOTSUPP } from '../errno.js';
import { Inode } from '../fs.js';
import { hexPfn } from '../printk.js';
import { stablePageFlags } from '../fs/proc/page.js';
import { MF_SW_SIMULATED, memoryFailure, unpoisonMemory } from './memory-failure.js';
import { PG, type Page } from './page.js';

const ERANGE = 34;
const U64_MAX = (1n << 64n) - 1n;

/**
 * kstrtoull(s, 0) (lib/kstrtox.c): an optional '+', then "0x"/"0X" + hex digits, a leading "0"
 * (octal), or decimal; one trailing newline allowed; nothing else (no sign, no spaces). Returns
 * the value, or -EINVAL / -ERANGE.
 */
export function kstrtoullRet(s: string): bigint | number {
  let t = s.startsWith('+') ? s.slice(1) : s;
  if (t.endsWith('\n')) t = t.slice(0, -1);
  let v: bigint;
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) v = BigInt(t);
  else if (/^0[0-7]*$/.test(t)) v = t.length > 1 ? BigInt(`0o${t.slice(1)}`) : 0n;
  else if (/^[1-9]\d*$/.test(t)) v = BigInt(t);
  else return -EINVAL;
  return v > U64_MAX ? -ERANGE : v;
}

/** kstrtoull(s, 0) for callers that only care about success (undefined on any error). */
export function kstrtoull(s: string): bigint | undefined {
  const v = kstrtoullRet(s);
  return typeof v === 'bigint' ? v : undefined;
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
  // pfn_valid(): a struct page exists (holes inside a memory section have one, too).
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= k.alloc.layout.maxPfn) {
    k.trail('hwpoison_inject', `pfn ${hexPfn(pfn)} is not valid: -ENXIO`);
    return -ENXIO;
  }
  const page = k.alloc.pfnToPage(pfn);
  if (k.filter.enable && page) {
    const folio = page.folio();
    // The racy pre-check (after shake_folio): only LRU, hugetlb and free buddy pages are injected.
    if (!folio.test(PG.lru) && !folio.hugetlb && !k.alloc.isFreeBuddy(pfn)) {
      k.trail('hwpoison_inject', `pfn ${hexPfn(pfn)} skipped: not LRU, hugetlb or free buddy (corrupt-filter-enable=1); write returns 0`);
      return 0;
    }
    if (hwpoisonFilter(k, folio)) {
      k.trail('hwpoison_inject', `pfn ${hexPfn(pfn)} skipped by the pre-check filter on the head page; write returns 0`);
      return 0;
    }
  }
  k.log.print('info', `Injecting memory failure at pfn ${hexPfn(pfn)}`);
  const err = memoryFailure(k, pfn, k.profile.swSimulated ? MF_SW_SIMULATED : 0);
  return err === -EOPNOTSUPP ? 0 : err;
}

/** unpoison-pfn write. */
export function hwpoisonUnpoison(k: Kernel, pfn: number): number {
  const cap = k.requireCap();
  if (cap) return cap;
  return unpoisonMemory(k, pfn);
}

/** Writes one of the debugfs files under /sys/kernel/debug/hwpoison/ (simple_attr_write + kstrtoull). */
export function writeHwpoisonDebugfs(k: Kernel, file: string, value: string): number {
  if (!k.hwpoisonInjectLoaded) return -ENOENT;
  const denied = k.openPrivileged();
  if (denied) return denied;
  const v = kstrtoullRet(value);
  if (typeof v === 'number') return v;
  const u32 = Number(v & 0xffffffffn);
  switch (file) {
    case 'corrupt-pfn':
      return hwpoisonInject(k, v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v));
    case 'unpoison-pfn': {
      const cap = k.requireCap();
      if (cap) return cap;
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? -ENXIO : unpoisonMemory(k, Number(v));
    }
    // debugfs_create_u32(): the u64 from kstrtoull is truncated to 32 bits.
    case 'corrupt-filter-enable':
      k.filter.enable = u32;
      return 0;
    case 'corrupt-filter-dev-major':
      k.filter.devMajor = u32;
      return 0;
    case 'corrupt-filter-dev-minor':
      k.filter.devMinor = u32;
      return 0;
    case 'corrupt-filter-flags-mask':
      k.filter.flagsMask = v;
      return 0;
    case 'corrupt-filter-flags-value':
      k.filter.flagsValue = v;
      return 0;
    case 'corrupt-filter-memcg':
      k.filter.memcg = v;
      return 0;
    default:
      return -ENOENT;
  }
}

/** Reads a debugfs file: the filter values; corrupt-pfn / unpoison-pfn have no getter (-EACCES). */
export function readHwpoisonDebugfs(k: Kernel, file: string): string | number {
  if (!k.hwpoisonInjectLoaded) return -ENOENT;
  const denied = k.openPrivileged();
  if (denied) return denied;
  switch (file) {
    case 'corrupt-filter-enable':
      return `${k.filter.enable}`;
    case 'corrupt-filter-dev-major':
      return `${k.filter.devMajor}`;
    case 'corrupt-filter-dev-minor':
      return `${k.filter.devMinor}`;
    case 'corrupt-filter-flags-mask':
      return `${k.filter.flagsMask}`;
    case 'corrupt-filter-flags-value':
      return `${k.filter.flagsValue}`;
    case 'corrupt-filter-memcg':
      return `${k.filter.memcg}`;
    case 'corrupt-pfn':
    case 'unpoison-pfn':
      return -EACCES;
    default:
      return -ENOENT;
  }
}

/** rmmod hwpoison_inject: corrupt-filter-enable back to 0 and the filter hook unregistered. */
export function unloadHwpoisonInject(k: Kernel): void {
  k.filter.enable = 0;
  k.filterHook = undefined;
  k.hwpoisonInjectLoaded = false;
}
