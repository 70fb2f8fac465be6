// mm/filemap.c (and shmem_file_read_iter / shmem_write_begin): reading and writing file pages
// through read(2)/write(2), with what a poisoned page-cache page does to them.
import type { Kernel } from '../kernel.js';
import { EIO } from '../errno.js';
import type { Inode } from '../fs.js';
import { hugetlbfsRead, hugetlbfsReadPage } from './hugetlb.js';
import { PAGE_SIZE } from './mm.js';
import { pageCacheGet } from './memory.js';
import { PG } from './page.js';

/** filemap_read(): bytes read, or -EIO at a poisoned shmem page (a short read when some came first). */
export function filemapRead(k: Kernel, inode: Inode, page: number, pages: number): number {
  if (inode.sb.fs === 'hugetlbfs') return hugetlbfsRead(k, inode, page, pages);
  let done = 0;
  for (let i = page; i < Math.min(page + pages, inode.sizePages); i++) {
    const cached = inode.cache.get(i);
    if (cached?.test(PG.hwpoison) && inode.sb.fs === 'tmpfs') {
      return done > 0 ? done : -EIO;
    }
    if (!cached) pageCacheGet(k, inode, i);
    done += PAGE_SIZE;
  }
  return done;
}

/** What reading one page returns: the data token, or an errno (no side effects). */
export function readFilePage(k: Kernel, inode: Inode, index: number): { data: number } | { err: number } {
  if (inode.sb.fs === 'hugetlbfs') return hugetlbfsReadPage(k, inode, index);
  const cached = inode.cache.get(index);
  if (cached?.test(PG.hwpoison) && inode.sb.fs === 'tmpfs') return { err: -EIO };
  return { data: cached ? cached.data : (inode.disk.get(index) ?? 0) };
}

/** generic_perform_write() of whole pages: dirties page-cache pages; -EIO into a poisoned shmem page. */
export function filemapWrite(k: Kernel, inode: Inode, page: number, pages: number): number {
  let done = 0;
  for (let i = page; i < page + pages; i++) {
    const cached = inode.cache.get(i);
    if (cached?.test(PG.hwpoison)) {
      if (inode.sb.fs === 'tmpfs') return done > 0 ? done : -EIO;
    }
    const p = cached && !cached.test(PG.hwpoison) ? cached : pageCacheGet(k, inode, i);
    p.data = k.newDataToken();
    p.set(PG.dirty);
    if (i >= inode.sizePages) inode.sizePages = i + 1;
    done += PAGE_SIZE;
  }
  return done;
}
