// mm/page-writeback.c and fs/sync.c: writing dirty page-cache pages back, and fsync(2)
// reporting a lost write (the mapping's errseq wb_err) once per open file.
import type { Kernel } from '../kernel.js';
import { EIO } from '../errno.js';
import { canWriteback, type Inode } from '../fs.js';
import type { OpenFile } from '../sched.js';
import { PG } from './page.js';
import { vmasCovering } from './rmap.js';

/** Writeback of a file's dirty pages (folio_mkclean + write to disk). */
export function writebackInode(inode: Inode): void {
  if (!canWriteback(inode.sb)) return;
  for (const [idx, p] of inode.cache) {
    let dirty = p.test(PG.dirty);
    for (const m of vmasCovering(p)) {
      const pte = m.mapped ? m.vma.mm.pte(m.addr) : undefined;
      if (pte?.kind === 'present' && pte.dirty) {
        dirty = true;
        pte.dirty = false;
        pte.writable = false;
      }
    }
    if (dirty && !p.test(PG.hwpoison)) {
      inode.disk.set(idx, p.data);
      p.clear(PG.dirty);
    }
  }
}

/** vfs_fsync() + file_check_and_advance_wb_err(): -EIO once per open file after a lost write. */
export function vfsFsync(_k: Kernel, f: OpenFile, inode: Inode): number {
  writebackInode(inode);
  // tmpfs/shmem fsync never reports the mapping error (kernel-model.md §23 K3).
  if (!canWriteback(inode.sb)) return 0;
  if (inode.wbErr > f.wbErrSeen) {
    f.wbErrSeen = inode.wbErr;
    inode.wbErrSeen = true;
    inode.asEio = false;
    return -EIO;
  }
  return 0;
}
