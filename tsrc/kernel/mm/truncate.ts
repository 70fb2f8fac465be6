// mm/truncate.c and fs/drop_caches.c: taking pages out of a file's page cache.
import type { Kernel } from '../kernel.js';
import { canWriteback, type Inode } from '../fs.js';
import { PG } from './page.js';
import { vmasCovering } from './rmap.js';

/** truncate_inode_pages_range() for ftruncate(): pages beyond the new size leave the cache (a poisoned one stays poisoned). */
export function truncateInodePages(k: Kernel, inode: Inode, pages: number): void {
  for (const [idx, p] of [...inode.cache]) {
    if (idx < pages) continue;
    for (const m of vmasCovering(p)) if (m.mapped) {
      m.vma.mm.setPte(m.addr, undefined);
      p.mapcount--;
      p.refcount--;
    }
    inode.cache.delete(idx);
    p.mapping = null;
    k.alloc.put(p);
  }
  for (const idx of [...inode.disk.keys()]) if (idx >= pages) inode.disk.delete(idx);
  inode.sizePages = pages;
}

/** drop_pagecache_sb() (echo 1 > drop_caches): evicts clean, unmapped page-cache pages. */
export function dropPagecache(k: Kernel): void {
  for (const inode of k.inodes.values()) {
    if (!canWriteback(inode.sb)) continue;
    for (const [idx, p] of [...inode.cache]) {
      if (p.test(PG.dirty) || p.mapcount > 0 || p.test(PG.hwpoison)) continue;
      inode.cache.delete(idx);
      p.mapping = null;
      k.alloc.put(p);
    }
  }
}
