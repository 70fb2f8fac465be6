// Address spaces: mm_struct, vm_area_struct and page-table entries (present, swap, hwpoison).
import type { Inode } from '../fs.js';
import type { AnonVmaLike } from './page.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;

export const VM_SHARED = 1 << 0;
export const VM_LOCKED = 1 << 1;
export const VM_HUGETLB = 1 << 2;
export const VM_HUGEPAGE = 1 << 3;
export const VM_WRITE = 1 << 4;
export const VM_MERGEABLE = 1 << 5;

/** An anon_vma: the reverse map from an anonymous page to the VMAs that may map it. */
export class AnonVma implements AnonVmaLike {
  readonly kind = 'anon_vma' as const;
  readonly vmas = new Set<Vma>();
}

/**
 * A KSM stable node (mm/ksm.c struct ksm_stable_node): what a KSM folio's mapping points to. Its
 * rmap items name every (VMA, address) that was merged onto the KSM page, newest first.
 */
export class KsmStableNode implements AnonVmaLike {
  readonly kind = 'anon_vma' as const;
  readonly items: { vma: Vma; addr: number; anonVma: AnonVma | null }[] = [];
}

export class Vma {
  constructor(
    readonly mm: MM,
    public start: number,
    public end: number,
    public flags: number,
    /** vm_pgoff: file page offset (file) or linear index base (anon). */
    public pgoff: number,
    public file: Inode | null,
    public anonVma: AnonVma | null,
    /** Name of the mapping in the case. */
    readonly name: string,
    /** Huge page shift of a hugetlb VMA (21 or 30), else 12. */
    readonly pageShift: number = PAGE_SHIFT,
  ) {}
  has(f: number): boolean {
    return (this.flags & f) !== 0;
  }
  /** linear_page_index(): the page offset an address maps to. */
  pgoffOf(addr: number): number {
    return this.pgoff + Math.floor((addr - this.start) / PAGE_SIZE);
  }
  /** Bytes mapped by one page-table entry of this VMA (huge_page_size for hugetlb). */
  pageSize(): number {
    return 2 ** this.pageShift;
  }
  /** The address of the (huge) page-table entry that maps addr. */
  entryAddr(addr: number): number {
    const sz = this.pageSize();
    return Math.floor(addr / sz) * sz;
  }
  /** vma_address(): the user address of a page offset, or undefined if outside. */
  addressOf(pgoff: number): number | undefined {
    const addr = this.start + (pgoff - this.pgoff) * PAGE_SIZE;
    return addr >= this.start && addr < this.end ? addr : undefined;
  }
}

export type Pte =
  | { kind: 'present'; pfn: number; dirty: boolean; writable: boolean }
  /** A hwpoison swap entry (make_hwpoison_entry), installed by try_to_unmap(TTU_HWPOISON). */
  | { kind: 'hwpoison'; pfn: number }
  /**
   * A swap entry. `marker: 'swapin-error'` is 6.1's swap-in error pte marker
   * (make_swapin_error_entry, pagemap swap type 31) that swapoff leaves for a poisoned swap-cache
   * page: touching it gives a plain SIGBUS (BUS_ADRERR).
   */
  | { kind: 'swap'; slot: number; marker?: 'swapin-error' };

export class MM {
  readonly vmas: Vma[] = [];
  /** Page table: virtual page number -> entry. */
  readonly ptes = new Map<number, Pte>();
  /** Next address for mmap(NULL, ...). */
  mmapBase = 0x7f0000000000;
  users = 1;

  findVma(addr: number): Vma | undefined {
    for (const v of this.vmas) if (addr >= v.start && addr < v.end) return v;
    return undefined;
  }
  pte(addr: number): Pte | undefined {
    return this.ptes.get(Math.floor(addr / PAGE_SIZE));
  }
  setPte(addr: number, pte: Pte | undefined): void {
    const vpn = Math.floor(addr / PAGE_SIZE);
    if (pte) this.ptes.set(vpn, pte);
    else this.ptes.delete(vpn);
  }
  /**
   * The entry that translates addr: the 4 KiB pte, or for a hugetlb VMA the huge pte at the
   * huge-page-aligned address (huge_pte_offset).
   */
  entryFor(addr: number, vma?: Vma): { addr: number; pte: Pte | undefined } {
    const v = vma ?? this.findVma(addr);
    const at = v && v.pageShift > PAGE_SHIFT ? v.entryAddr(addr) : Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
    return { addr: at, pte: this.pte(at) };
  }
  /**
   * Addresses in [start, end) that have an entry, ascending. Costs min(range pages, entries) so
   * that walking a huge, sparsely populated VMA (or a dense small one) stays cheap.
   */
  entriesIn(start: number, end: number): number[] {
    const lo = Math.floor(start / PAGE_SIZE);
    const hi = Math.ceil(end / PAGE_SIZE);
    const out: number[] = [];
    if (hi - lo <= this.ptes.size) {
      for (let vpn = lo; vpn < hi; vpn++) if (this.ptes.has(vpn)) out.push(vpn * PAGE_SIZE);
    } else {
      for (const vpn of this.ptes.keys()) if (vpn >= lo && vpn < hi) out.push(vpn * PAGE_SIZE);
      out.sort((a, b) => a - b);
    }
    return out;
  }
}
