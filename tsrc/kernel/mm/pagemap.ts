// fs/proc/task_mmu.c: /proc/PID/pagemap, one u64 per virtual page (pte_to_pagemap_entry,
// pagemap_hugetlb_range). Bits: 63 present, 62 swapped, 61 file page or shared anon, 56 page
// exclusively mapped; present: bits 0–54 the pfn (0 without CAP_SYS_ADMIN); swapped: bits 0–4 the
// swap type, 5–54 the offset. A hwpoison entry reads as swapped with type 26 (6.1) / 27 (6.12)
// and offset = pfn; 6.1's swap-in error marker as type 31; a hugetlb hwpoison entry and a pte
// dropped by the clean-page shortcut as nothing (kernel-model.md §23.3.6–7).
import type { Kernel } from '../kernel.js';
import type { Process } from '../sched.js';
import { PAGE_SIZE } from './mm.js';

export const PM_PRESENT = 1n << 63n;
export const PM_SWAP = 1n << 62n;
export const PM_FILE = 1n << 61n;
export const PM_MMAP_EXCLUSIVE = 1n << 56n;
export const PM_PFRAME_MASK = (1n << 55n) - 1n;
const MAX_SWAPFILES_SHIFT = 5n;
/** pte marker swap type (SWP_PTE_MARKER) and PTE_MARKER_SWAPIN_ERROR on 6.1. */
const SWP_PTE_MARKER = 31n;
const PTE_MARKER_SWAPIN_ERROR = 2n;

/** The pagemap entry of one virtual address of a process. */
export function pagemapEntry(k: Kernel, proc: Process, addr: number): bigint {
  const mm = proc.mm;
  if (!mm) return 0n;
  const vma = mm.findVma(addr);
  if (!vma) return 0n;
  const { addr: at, pte } = mm.entryFor(addr, vma);
  if (!pte) return 0n;
  const huge = vma.pageShift > 12;
  const showPfn = k.capable();
  if (pte.kind === 'present') {
    const pfn = huge ? pte.pfn + Math.floor((addr - at) / PAGE_SIZE) : pte.pfn;
    const page = k.alloc.pfnToPage(pfn);
    const folio = page?.folio();
    let flags = PM_PRESENT;
    if (folio && !folio.isAnon()) flags |= PM_FILE;
    const mapcount = huge ? (folio?.mapcount ?? 0) : (page?.mapcount ?? 0);
    if (mapcount === 1) flags |= PM_MMAP_EXCLUSIVE;
    return flags | (showPfn ? BigInt(pfn) & PM_PFRAME_MASK : 0n);
  }
  // pagemap_hugetlb_range() only reports present huge ptes.
  if (huge) return 0n;
  if (pte.kind === 'hwpoison') {
    const type = BigInt(k.profile.hwpoisonSwapType);
    let flags = PM_SWAP;
    const page = k.alloc.pfnToPage(pte.pfn);
    if (page && page.folio().mapping && !page.folio().isAnon()) flags |= PM_FILE;
    return flags | ((type | (BigInt(pte.pfn) << MAX_SWAPFILES_SHIFT)) & PM_PFRAME_MASK);
  }
  if (pte.marker === 'swapin-error') return PM_SWAP | ((SWP_PTE_MARKER | (PTE_MARKER_SWAPIN_ERROR << MAX_SWAPFILES_SHIFT)) & PM_PFRAME_MASK);
  // An ordinary swap entry of the first swap device (type 0).
  return PM_SWAP | ((BigInt(pte.slot) << MAX_SWAPFILES_SHIFT) & PM_PFRAME_MASK);
}

export interface PagemapDecoded {
  present: boolean;
  swap: boolean;
  file: boolean;
  exclusive: boolean;
  pfn?: number;
  swapType?: number;
  swapOffset?: number;
}

/** Splits a pagemap entry into its fields. */
export function decodePagemap(e: bigint): PagemapDecoded {
  const present = (e & PM_PRESENT) !== 0n;
  const swap = (e & PM_SWAP) !== 0n;
  const out: PagemapDecoded = { present, swap, file: (e & PM_FILE) !== 0n, exclusive: (e & PM_MMAP_EXCLUSIVE) !== 0n };
  const frame = e & PM_PFRAME_MASK;
  if (present) out.pfn = Number(frame);
  else if (swap) {
    out.swapType = Number(frame & ((1n << MAX_SWAPFILES_SHIFT) - 1n));
    out.swapOffset = Number(frame >> MAX_SWAPFILES_SHIFT);
  }
  return out;
}

/** The case-level view of a pagemap entry: present, hwpoison (swap entry of the hwpoison type), swap or none. */
export function pagemapKind(k: Kernel, proc: Process, addr: number): 'present' | 'hwpoison' | 'swap' | 'none' {
  const d = decodePagemap(pagemapEntry(k, proc, addr));
  if (d.present) return 'present';
  if (d.swap) return d.swapType === k.profile.hwpoisonSwapType ? 'hwpoison' : 'swap';
  return 'none';
}

/** Reads `count` entries of /proc/PID/pagemap from a virtual address. */
export function readPagemap(k: Kernel, proc: Process, addr: number, count = 1): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) out.push(pagemapEntry(k, proc, addr + i * PAGE_SIZE));
  return out;
}
