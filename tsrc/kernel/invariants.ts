// Invariants the model checks after every step under --check-invariants: states the real
// kernel can never reach. Returns a description of the first violation, or undefined.
import type { Kernel } from './kernel.js';
import { PG } from './mm/page.js';
import { PAGE_SIZE } from './mm/mm.js';

export function checkInvariants(k: Kernel): string | undefined {
  let poisoned = 0;
  const mapcounts = new Map<number, number>();
  for (const proc of k.processes.values()) {
    if (!proc.alive) {
      if (proc.mm) return `killed process ${proc.comm}:${proc.pid} still has an address space`;
      continue;
    }
    for (const [vpn, pte] of proc.mm?.ptes ?? []) {
      if (!proc.mm!.findVma(vpn * PAGE_SIZE)) return `pte at ${(vpn * PAGE_SIZE).toString(16)} of ${proc.comm}:${proc.pid} lies outside every VMA`;
      if (pte.kind === 'present') mapcounts.set(pte.pfn, (mapcounts.get(pte.pfn) ?? 0) + 1);
    }
  }
  for (const p of k.alloc.pages.values()) {
    if (p.test(PG.hwpoison)) {
      poisoned++;
      if (p.test(PG.buddy)) return `poisoned pfn ${p.pfn.toString(16)} is on the free lists`;
    }
    if (p.refcount < 0) return `pfn ${p.pfn.toString(16)} has a negative refcount`;
    if (p.mapcount < 0) return `pfn ${p.pfn.toString(16)} has a negative mapcount`;
    const mc = mapcounts.get(p.pfn) ?? 0;
    if (p.kind !== 'zero' && mc !== p.mapcount) return `pfn ${p.pfn.toString(16)} mapcount ${p.mapcount} but ${mc} ptes map it`;
  }
  void poisoned;
  for (const s of k.delivered) {
    if (s.addr === undefined || s.signo !== 7) continue;
  }
  return undefined;
}
