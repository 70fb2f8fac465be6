// Physical memory layout for the simulated kernel, from a case's machine section.
import type { PhysLayout } from '../../../tsrc/kernel/mm/page_alloc.js';

export interface LayoutConfig {
  memoryBytes: bigint;
  nodes: number;
  holes: { start: bigint; size: bigint }[];
}

/** An O(1)-to-build layout: nodes split memory evenly; holes are listed ranges. */
export function makeLayout(cfg: LayoutConfig): PhysLayout {
  const maxPfn = Number(cfg.memoryBytes >> 12n);
  const per = Math.floor(maxPfn / cfg.nodes);
  const nodes = Array.from({ length: cfg.nodes }, (_, nid) => ({ nid, startPfn: nid * per, endPfn: nid === cfg.nodes - 1 ? maxPfn : (nid + 1) * per }));
  const holes = cfg.holes.map((h) => ({ start: Number(h.start >> 12n), end: Number((h.start + h.size + 4095n) >> 12n) }));
  return {
    maxPfn,
    nodes,
    isRam(pfn: number): boolean {
      if (pfn < 0 || pfn >= maxPfn) return false;
      for (const h of holes) if (pfn >= h.start && pfn < h.end) return false;
      return true;
    },
    nodeOf(pfn: number): number {
      return Math.min(cfg.nodes - 1, Math.floor(pfn / Math.max(per, 1)));
    },
  };
}
