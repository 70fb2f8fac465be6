// mm/gup.c get_user_pages_fast() for one page: faults the page in (a never-touched private
// anonymous page becomes the zero page, a file page is read in) and returns it (for hugetlb the
// subpage behind the huge pte), or -EFAULT for an unmapped address or a hwpoison entry.
import type { Kernel } from '../kernel.js';
import { EFAULT } from '../errno.js';
import type { Task } from '../sched.js';
import { handleAccess } from './memory.js';
import { PAGE_SIZE } from './mm.js';
import type { Page } from './page.js';

export function getUserPage(k: Kernel, task: Task, addr: number): Page | number {
  const mm = task.group.mm;
  const vma = mm?.findVma(addr);
  if (!mm || !vma) return -EFAULT;
  let { addr: at, pte } = mm.entryFor(addr, vma);
  if (pte?.kind === 'hwpoison') return -EFAULT;
  if (!pte || pte.kind === 'swap') {
    const r = handleAccess(k, task, addr, false);
    if (r.kind !== 'ok') {
      // GUP reports the fault as an error instead of a signal.
      task.pending = task.pending.filter((p) => p.info.addr !== addr);
      return -EFAULT;
    }
    ({ addr: at, pte } = mm.entryFor(addr, vma));
  }
  if (pte?.kind !== 'present') return -EFAULT;
  const pfn = vma.pageShift > 12 ? pte.pfn + Math.floor((addr - at) / PAGE_SIZE) : pte.pfn;
  return k.alloc.pfnToPage(pfn) ?? -EFAULT;
}

/** pin_user_pages(FOLL_LONGTERM) of one page (RDMA, vfio): a pin that makes THP splits fail. */
export function pinUserPage(k: Kernel, task: Task, addr: number): Page | number {
  const got = getUserPage(k, task, addr);
  if (typeof got === 'number') return got;
  got.folio().pinned++;
  got.folio().refcount++;
  return got;
}

/** unpin_user_page(). */
export function unpinUserPage(k: Kernel, page: Page): void {
  const f = page.folio();
  if (f.pinned > 0) f.pinned--;
  k.alloc.put(f);
}
