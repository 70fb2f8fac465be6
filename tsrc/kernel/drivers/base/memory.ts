// drivers/base/memory.c: /sys/devices/system/memory/{hard,soft}_offline_page take a physical
// address (parsed with base auto-detection) and call memory_failure / soft_offline_page.
import type { Kernel } from '../../kernel.js';
import { EINVAL, EOPNOTSUPP } from '../../errno.js';
import { kstrtoull } from '../../mm/hwpoison-inject.js';
import { MF_SW_SIMULATED, memoryFailure, softOfflinePage } from '../../mm/memory-failure.js';

function parsePfn(value: string): number | undefined {
  const v = kstrtoull(value);
  if (v === undefined) return undefined;
  const pfn = v >> 12n;
  return pfn > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(pfn);
}

/** hard_offline_page_store(). */
export function hardOfflinePageStore(k: Kernel, value: string): number {
  const denied = k.requireCap();
  if (denied) return denied;
  const pfn = parsePfn(value);
  if (pfn === undefined) return -EINVAL;
  const ret = memoryFailure(k, pfn, k.profile.swSimulated ? MF_SW_SIMULATED : 0);
  return ret === -EOPNOTSUPP ? 0 : ret;
}

/** soft_offline_page_store(). */
export function softOfflinePageStore(k: Kernel, value: string): number {
  const denied = k.requireCap();
  if (denied) return denied;
  const pfn = parsePfn(value);
  if (pfn === undefined) return -EINVAL;
  return softOfflinePage(k, pfn, 0);
}
