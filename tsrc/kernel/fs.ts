// Filesystems, inodes and the page cache (struct super_block, inode, address_space), with the
// per-mapping writeback error state (errseq wb_err, AS_EIO) that fsync reports.
import type { AddressSpaceLike, Page } from './mm/page.js';
import type { Vma } from './mm/mm.js';

/** Pages per bucket of the i_mmap index. */
const IMMAP_BUCKET = 4096;

/**
 * The i_mmap interval tree (vma_interval_tree): the VMAs mapping a file, findable by page offset
 * so that an rmap walk costs the number of VMAs covering that offset, not every mapper of the
 * file. Implemented as fixed-size pgoff buckets; iteration order is insertion order.
 */
export class IMmap implements Iterable<Vma> {
  private readonly all = new Set<Vma>();
  private readonly buckets = new Map<number, Set<Vma>>();
  private readonly spans = new Map<Vma, [number, number]>();

  private static range(v: Vma): [number, number] {
    const pages = Math.max(1, Math.ceil((v.end - v.start) / 4096));
    return [Math.floor(v.pgoff / IMMAP_BUCKET), Math.floor((v.pgoff + pages - 1) / IMMAP_BUCKET)];
  }

  add(v: Vma): this {
    if (this.all.has(v)) return this;
    this.all.add(v);
    const [lo, hi] = IMmap.range(v);
    this.spans.set(v, [lo, hi]);
    for (let b = lo; b <= hi; b++) {
      let set = this.buckets.get(b);
      if (!set) {
        set = new Set();
        this.buckets.set(b, set);
      }
      set.add(v);
    }
    return this;
  }

  delete(v: Vma): boolean {
    if (!this.all.delete(v)) return false;
    const [lo, hi] = this.spans.get(v)!;
    this.spans.delete(v);
    for (let b = lo; b <= hi; b++) {
      const set = this.buckets.get(b);
      set?.delete(v);
      if (set && set.size === 0) this.buckets.delete(b);
    }
    return true;
  }

  has(v: Vma): boolean {
    return this.all.has(v);
  }

  get size(): number {
    return this.all.size;
  }

  [Symbol.iterator](): Iterator<Vma> {
    return this.all[Symbol.iterator]();
  }

  /** vma_interval_tree_foreach(vma, &mapping->i_mmap, pgoff, pgoff): VMAs that map pgoff. */
  covering(pgoff: number): Vma[] {
    const out: Vma[] = [];
    const set = this.buckets.get(Math.floor(pgoff / IMMAP_BUCKET));
    if (!set) return out;
    for (const v of set) {
      if (pgoff >= v.pgoff && pgoff < v.pgoff + (v.end - v.start) / 4096) out.push(v);
    }
    return out;
  }
}

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

export function isHugetlbfs(sb: SuperBlock): boolean {
  return sb.fs === 'hugetlbfs';
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
  readonly mmap = new IMmap();
  /** errseq_t wb_err: a counter bumped on each new error; 0 = never failed. */
  wbErr = 0;
  /** Whether the latest error has been seen by some fsync (errseq SEEN flag). */
  wbErrSeen = true;
  /** AS_EIO. */
  asEio = false;
  unevictable = false;
  /** Huge page shift for hugetlbfs inodes. */
  hugeShift = 12;
  /** Called when the last VMA mapping the file goes (an internal file is then released). */
  onLastUnmap: ((inode: Inode) => void) | undefined;
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
