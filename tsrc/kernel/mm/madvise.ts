// mm/madvise.c madvise_inject_error(): MADV_HWPOISON (100) and MADV_SOFT_OFFLINE (101).
import type { Kernel } from '../kernel.js';
import { EINVAL, EOPNOTSUPP } from '../errno.js';
import { hexPfn } from '../printk.js';
import type { Task } from '../sched.js';
import { MF_ACTION_REQUIRED, MF_COUNT_INCREASED, MF_SW_SIMULATED, memoryFailure, softOfflinePage } from './memory-failure.js';
import { PAGE_SIZE } from './mm.js';
import { getUserPage } from './gup.js';

export const MADV_HWPOISON = 100;
export const MADV_SOFT_OFFLINE = 101;

export function madviseInjectError(k: Kernel, task: Task, start: number, len: number, advice: number): number {
  if (advice !== MADV_HWPOISON && advice !== MADV_SOFT_OFFLINE) return -EINVAL;
  const denied = k.requireCap();
  if (denied) return denied;
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  if (len === 0) return 0;
  const end = start + Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
  for (let addr = start; addr < end; ) {
    const got = getUserPage(k, task, addr);
    if (typeof got === 'number') return got;
    const page = got;
    const pfn = page.pfn;
    const size = PAGE_SIZE * page.folio().nrPages();
    page.folio().refcount++;
    let ret: number;
    if (advice === MADV_SOFT_OFFLINE) {
      k.log.print('info', `Soft offlining pfn ${hexPfn(pfn)} at process virtual address ${hexPfn(addr)}`);
      ret = softOfflinePage(k, pfn, MF_COUNT_INCREASED);
      page.folio().refcount--;
    } else {
      k.log.print('info', `Injecting memory failure for pfn ${hexPfn(pfn)} at process virtual address ${hexPfn(addr)}`);
      const flags = MF_COUNT_INCREASED | MF_SW_SIMULATED | (k.profile.madviseActionRequired ? MF_ACTION_REQUIRED : 0);
      ret = memoryFailure(k, pfn, flags);
      if (ret === -EOPNOTSUPP) ret = 0;
    }
    if (ret) return ret;
    addr += size;
  }
  return 0;
}
