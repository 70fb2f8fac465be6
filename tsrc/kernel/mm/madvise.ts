// mm/madvise.c: do_madvise()'s argument checks and madvise_inject_error() for MADV_HWPOISON (100)
// and MADV_SOFT_OFFLINE (101) (kernel-model.md §17).
import type { Kernel } from '../kernel.js';
import { EINVAL, EOPNOTSUPP } from '../errno.js';
import { hexPfn } from '../printk.js';
import type { Task } from '../sched.js';
import { MF_ACTION_REQUIRED, MF_COUNT_INCREASED, MF_SW_SIMULATED, memoryFailure, softOfflinePage } from './memory-failure.js';
import { PAGE_SIZE } from './mm.js';
import { getUserPage } from './gup.js';

export const MADV_HWPOISON = 100;
export const MADV_SOFT_OFFLINE = 101;

/**
 * madvise(start, len, advice) for the two injection advices. do_madvise() checks the advice, the
 * alignment and the length before madvise_inject_error() checks CAP_SYS_ADMIN; then one page (or
 * compound page) at a time: GUP (faults it in), log, inject; stop at the first error.
 */
export function madviseInjectError(k: Kernel, task: Task, start: number, len: number, advice: number): number {
  if (advice !== MADV_HWPOISON && advice !== MADV_SOFT_OFFLINE) return -EINVAL;
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  if (len < 0) return -EINVAL;
  const alignedLen = Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
  if (start + alignedLen < start) return -EINVAL;
  if (len === 0) return 0;
  const denied = k.requireCap();
  if (denied) return denied;
  // madvise_inject_error(start, start + len_in): the end is not rounded up.
  const end = start + len;
  for (let addr = start; addr < end; ) {
    const got = getUserPage(k, task, addr);
    if (typeof got === 'number') {
      k.trail('madvise_inject_error', `get_user_pages_fast(${hexPfn(addr)}) failed: ${got}`);
      return got;
    }
    const page = got;
    const pfn = page.pfn;
    const size = PAGE_SIZE * page.folio().nrPages();
    // GUP's reference, handed to memory_failure / soft_offline_page (MF_COUNT_INCREASED).
    page.folio().refcount++;
    let ret: number;
    if (advice === MADV_SOFT_OFFLINE) {
      k.log.print('info', `Soft offlining pfn ${hexPfn(pfn)} at process virtual address ${hexPfn(addr)}`);
      ret = softOfflinePage(k, pfn, MF_COUNT_INCREASED);
    } else {
      k.log.print('info', `Injecting memory failure for pfn ${hexPfn(pfn)} at process virtual address ${hexPfn(addr)}`);
      // v6.11 (Jane Chu): the caller is treated as the consumer (MF_ACTION_REQUIRED).
      // ≤5.18: MF_COUNT_INCREASED only; MF_SW_SIMULATED since ≈5.19; MF_ACTION_REQUIRED since 6.11.
      const flags = MF_COUNT_INCREASED | (k.profile.swSimulated ? MF_SW_SIMULATED : 0) | (k.profile.madviseActionRequired ? MF_ACTION_REQUIRED : 0);
      ret = memoryFailure(k, pfn, flags);
      if (ret === -EOPNOTSUPP) ret = 0;
    }
    if (ret) {
      k.trail('madvise_inject_error', `stopped at ${hexPfn(addr)}: ${ret} (earlier pages stay poisoned)`);
      return ret;
    }
    addr += size;
  }
  return 0;
}
