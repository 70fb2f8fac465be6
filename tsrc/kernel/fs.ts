// Filesystems, inodes and the page cache (struct super_block, inode, address_space), with the
// per-mapping writeback error state (errseq wb_err, AS_EIO) that fsync reports.
import type { AddressSpaceLike, Page } from './mm/page.js';
import type { Vma } from './mm/mm.js';

export type FsType = 'ext4' | 'xfs' | 'btrfs' | 'tmpfs' | 'ramfs' | 'hugetlbfs' | 'bdev';

export interface SuperBlock {
  name: string;
  fs: FsType;
  major: number;
  minor: number;
}

/** mapping_can_writeback(): only disk filesystems write back. */
export function canWriteback(sb: SuperBlock): boolean {
  return sb.fs === 'ext4' || sb.fs === 'xfs' || sb.fs === 'btrfs' || sb.fs === 'bdev';
}

/** Does the filesystem's address_space_operations have error_remove_folio? */
export function hasErrorRemoveFolio(sb: SuperBlock): boolean {
  return sb.fs === 'ext4' || sb.fs === 'xfs' || sb.fs === 'btrfs' || sb.fs === 'tmpfs' || sb.fs === 'hugetlbfs';
}

export function isShmemFs(sb: SuperBlock): boolean {
  return sb.fs === 'tmpfs';
}

export class Inode implements AddressSpaceLike {
  readonly kind = 'address_space' as const;
  /** The page cache: page index -> page. */
  readonly cache = new Map<number, Page>();
  /** What the disk holds per page index (data tokens); absent = hole / zeros. */
  readonly disk = new Map<number, number>();
  /** The i_mmap tree: VMAs mapping this file. */
  readonly mmap = new Set<Vma>();
  /** errseq_t wb_err: a counter bumped on each new error; 0 = never failed. */
  wbErr = 0;
  /** Whether the latest error has been seen by some fsync (errseq SEEN flag). */
  wbErrSeen = true;
  /** AS_EIO. */
  asEio = false;
  unevictable = false;
  /** Huge page shift for hugetlbfs inodes. */
  hugeShift = 12;
  unlinked = false;
  constructor(
    readonly ino: number,
    readonly sb: SuperBlock,
    public sizePages: number,
    /** Name of the file in the case. */
    readonly name: string,
  ) {}
}

/** mapping_set_error(mapping, -EIO): errseq_set(&wb_err) and AS_EIO. */
export function mappingSetError(inode: Inode): void {
  inode.wbErr++;
  inode.wbErrSeen = false;
  inode.asEio = true;
}
