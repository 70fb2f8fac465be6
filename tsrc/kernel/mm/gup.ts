// mm/gup.c get_user_pages_fast() for one page: faults the page in (a never-touched private
// anonymous page becomes the zero page, a file page is read in) and returns it, or -EFAULT
// for an unmapped address or a hwpoison entry.
import type { Kernel } from '../kernel.js';
import { EFAULT } from '../errno.js';
import type { Task } from '../sched.js';
import { handleAccess } from './memory.js';
import { PAGE_SIZE } from './mm.js';
import type { Page } from './page.js';

export function getUserPage(k: Kernel, task: Task, addr: number): Page | number {
  const mm = task.group.mm;
  if (!mm?.findVma(addr)) return -EFAULT;
  const pageAddr = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
  let pte = mm.pte(pageAddr);
  if (pte?.kind === 'hwpoison') return -EFAULT;
  if (!pte || pte.kind === 'swap') {
    const r = handleAccess(k, task, addr, false);
    if (r.kind !== 'ok') {
      task.pending = task.pending.filter((p) => p.info.addr !== addr);
      return -EFAULT;
    }
    pte = mm.pte(pageAddr);
  }
  if (pte?.kind !== 'present') return -EFAULT;
  return k.alloc.pfnToPage(pte.pfn) ?? -EFAULT;
}
