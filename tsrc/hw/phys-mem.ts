/**
 * Physical memory layout of the simulated machine: how much RAM, where the
 * holes (MMIO, e.g. the 32-bit PCI hole) and firmware-reserved ranges are, and
 * which NUMA node owns an address. This is what e820 + SRAT tell the kernel
 * (pfn_valid(), page_to_nid()). Everything is range-based and O(ranges): no
 * per-page arrays, so a 4 TiB machine builds as fast as a 4 MiB one. Per-page
 * state (flags, refcounts) belongs to the kernel model, kept sparsely there.
 */

export const PAGE_SHIFT = 12n;
export const PAGE_SIZE = 1n << PAGE_SHIFT;

/** Half-open physical range [start, end). */
export interface PhysRange {
  start: bigint;
  end: bigint;
}

export type RangeInput = { start: bigint | number; end: bigint | number; name?: string };

export interface NamedRange extends PhysRange {
  name: string;
}

export interface NumaNode extends PhysRange {
  id: number;
}

export interface PhysMemConfig {
  /** Amount of RAM. Holes push RAM above them (as the PCI hole does below 4 GiB). */
  memoryBytes: bigint | number;
  /** Node count (address space split evenly, page aligned) or explicit node ranges. Default 1. */
  nodes?: number | RangeInput[];
  /** Address ranges with no RAM behind them (MMIO, gaps). */
  holes?: RangeInput[];
  /** RAM ranges that exist but are firmware/kernel reserved (e820 reserved, memblock reserved). */
  reserved?: RangeInput[];
}

export type AddrKind = 'ram' | 'reserved' | 'hole' | 'beyond';

const big = (v: bigint | number): bigint => (typeof v === 'bigint' ? v : BigInt(v));

function toRange(r: RangeInput, what: string, i: number): NamedRange {
  const start = big(r.start);
  const end = big(r.end);
  if (start < 0n || end <= start) throw new RangeError(`${what}[${i}]: empty or negative range ${start}-${end}`);
  return { start, end, name: r.name ?? `${what}${i}` };
}

function sortAndCheck(rs: NamedRange[], what: string): NamedRange[] {
  const out = [...rs].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  for (let i = 1; i < out.length; i++) {
    const prev = out[i - 1]!;
    const cur = out[i]!;
    if (cur.start < prev.end) throw new RangeError(`${what} ranges overlap: ${prev.name} and ${cur.name}`);
  }
  return out;
}

/** Binary search over sorted disjoint ranges. */
function findRange<T extends PhysRange>(rs: readonly T[], addr: bigint): T | undefined {
  let lo = 0;
  let hi = rs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = rs[mid]!;
    if (addr < r.start) hi = mid - 1;
    else if (addr >= r.end) lo = mid + 1;
    else return r;
  }
  return undefined;
}

export class PhysMem {
  /** Bytes of RAM (reserved included, holes excluded). */
  readonly ramBytes: bigint;
  /** One past the highest RAM address (max_pfn << PAGE_SHIFT). */
  readonly end: bigint;
  /** Exclusive upper pfn bound (the kernel's max_pfn). */
  readonly maxPfn: number;
  readonly holes: readonly NamedRange[];
  readonly reserved: readonly NamedRange[];
  readonly nodes: readonly NumaNode[];

  constructor(cfg: PhysMemConfig) {
    const ram = big(cfg.memoryBytes);
    if (ram <= 0n || ram % PAGE_SIZE !== 0n) throw new RangeError(`memoryBytes must be a positive multiple of ${PAGE_SIZE}`);
    this.ramBytes = ram;
    this.holes = sortAndCheck((cfg.holes ?? []).map((r, i) => toRange(r, 'hole', i)), 'hole');
    // RAM fills the address space from 0 upwards, skipping holes, until
    // memoryBytes have been placed: a hole below the end pushes the end up.
    let end = ram;
    for (const h of this.holes) {
      if (h.start < end) end += h.end - h.start;
    }
    // A hole that straddles or sits past the RAM end just trims nothing more.
    this.end = end;
    this.maxPfn = Number(end >> PAGE_SHIFT);
    this.reserved = sortAndCheck((cfg.reserved ?? []).map((r, i) => toRange(r, 'reserved', i)), 'reserved');
    for (const r of this.reserved) {
      if (r.end > end) throw new RangeError(`reserved range ${r.name} extends beyond RAM end 0x${end.toString(16)}`);
    }
    this.nodes = this.buildNodes(cfg.nodes ?? 1);
  }

  private buildNodes(spec: number | RangeInput[]): NumaNode[] {
    if (typeof spec === 'number') {
      if (!Number.isInteger(spec) || spec < 1) throw new RangeError(`nodes must be >= 1`);
      const n = BigInt(spec);
      const pages = this.end >> PAGE_SHIFT;
      if (pages < n) throw new RangeError(`${spec} nodes but only ${pages} pages`);
      const per = pages / n;
      const out: NumaNode[] = [];
      for (let i = 0n; i < n; i++) {
        const start = i * per * PAGE_SIZE;
        const end = i === n - 1n ? this.end : (i + 1n) * per * PAGE_SIZE;
        out.push({ id: Number(i), start, end });
      }
      return out;
    }
    const rs = sortAndCheck(spec.map((r, i) => toRange(r, 'node', i)), 'node');
    return rs.map((r, i) => ({ id: i, start: r.start, end: r.end }));
  }

  /** What lives at a physical address. */
  kindOf(addr: bigint): AddrKind {
    if (addr < 0n || addr >= this.end) return 'beyond';
    if (findRange(this.holes, addr)) return 'hole';
    if (findRange(this.reserved, addr)) return 'reserved';
    return 'ram';
  }

  /** RAM (reserved or not) is behind this address: the kernel's pfn_valid(). */
  isValidAddr(addr: bigint): boolean {
    const k = this.kindOf(addr);
    return k === 'ram' || k === 'reserved';
  }

  isValidPfn(pfn: number): boolean {
    return Number.isInteger(pfn) && pfn >= 0 && pfn < this.maxPfn && this.isValidAddr(pfnToPhys(pfn));
  }

  isReservedPfn(pfn: number): boolean {
    return this.kindOf(pfnToPhys(pfn)) === 'reserved';
  }

  /** NUMA node of an address, undefined for holes / beyond RAM / unassigned ranges. */
  nodeOfAddr(addr: bigint): number | undefined {
    if (!this.isValidAddr(addr)) return undefined;
    return findRange(this.nodes, addr)?.id;
  }

  nodeOfPfn(pfn: number): number | undefined {
    return this.nodeOfAddr(pfnToPhys(pfn));
  }

  /** The e820-like map: RAM ranges with holes removed (reserved ranges still included). */
  ramRanges(): PhysRange[] {
    const out: PhysRange[] = [];
    let cur = 0n;
    for (const h of this.holes) {
      if (h.start >= this.end) break;
      if (h.start > cur) out.push({ start: cur, end: h.start });
      cur = h.end > cur ? h.end : cur;
    }
    if (cur < this.end) out.push({ start: cur, end: this.end });
    return out;
  }
}

export const pfnToPhys = (pfn: number): bigint => BigInt(pfn) << PAGE_SHIFT;
export const physToPfn = (addr: bigint): number => Number(addr >> PAGE_SHIFT);
