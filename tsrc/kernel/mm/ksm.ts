// mm/ksm.c: merging identical anonymous pages into one write-protected KSM page
// (try_to_merge_two_pages / try_to_merge_with_ksm_page: write_protect_page + replace_page), and
// collect_procs_ksm() for memory_failure (≥ ≈6.4: one to-kill entry per process, at that rmap
// item's address). Before 6.4 memory-failure.ts refuses KSM pages (`can't handle KSM pages.`).
// (kernel-model.md §5 row 20, §8.1, §23.3.1, §23.3.14–15.)
import type { Kernel } from '../kernel.js';
import { hexPfn } from '../printk.js';
import type { Process, Task } from '../sched.js';
import { hooks, taskEarlyKill, type ToKill } from './memory-failure.js';
import { KsmStableNode, PAGE_SIZE, VM_MERGEABLE, type Vma } from './mm.js';
import { PG, type Page } from './page.js';

/** The stable node of a KSM folio (folio_stable_node). */
export function stableNode(page: Page): KsmStableNode | undefined {
  const m = page.folio().mapping;
  return m instanceof KsmStableNode ? m : undefined;
}

/** write_protect_page(): the pte becomes read-only and clean; its dirty bit goes to the folio. */
function writeProtect(vma: Vma, addr: number, page: Page): void {
  const pte = vma.mm.pte(addr);
  if (pte?.kind !== 'present') return;
  if (pte.dirty) page.set(PG.dirty);
  pte.dirty = false;
  pte.writable = false;
}

/**
 * Merges the page at `addrB` of `b` onto the page at `addrA` of `a` (which becomes, or already
 * is, the KSM page). Both must be present private anonymous order-0 pages with equal contents.
 * Returns the KSM page, or undefined if they cannot be merged.
 */
export function ksmMergePage(k: Kernel, a: Vma, addrA: number, b: Vma, addrB: number): Page | undefined {
  const pa = a.mm.pte(addrA);
  const pb = b.mm.pte(addrB);
  if (pa?.kind !== 'present' || pb?.kind !== 'present') return undefined;
  const kpage = k.alloc.pfnToPage(pa.pfn)!;
  const page = k.alloc.pfnToPage(pb.pfn)!;
  if (kpage === page) return kpage.ksm ? kpage : undefined;
  for (const p of [kpage, page]) if (p.kind !== 'anon' || p.folio().order > 0 || p.test(PG.hwpoison) || p.test(PG.swapcache)) return undefined;
  if (kpage.data !== page.data) return undefined;
  a.flags |= VM_MERGEABLE;
  b.flags |= VM_MERGEABLE;
  let node = stableNode(kpage);
  if (!node) {
    // The first page becomes the KSM page: stable node, write-protected, not exclusive.
    node = new KsmStableNode();
    writeProtect(a, addrA, kpage);
    kpage.ksm = true;
    kpage.mapping = node;
    kpage.clear(PG.anonExclusive);
    node.items.unshift({ vma: a, addr: addrA, anonVma: a.anonVma });
  }
  // try_to_merge_one_page(): write-protect the duplicate, then replace_page() maps the KSM page.
  writeProtect(b, addrB, page);
  b.mm.setPte(addrB, { kind: 'present', pfn: kpage.pfn, dirty: false, writable: false });
  kpage.mapcount++;
  kpage.refcount++;
  page.mapcount--;
  k.alloc.put(page);
  node.items.unshift({ vma: b, addr: addrB, anonVma: b.anonVma });
  k.trail('ksm', `merged ${hexPfn(addrB)} of ${b.name} onto KSM page ${hexPfn(kpage.pfn)}`);
  return kpage;
}

/**
 * ksmd merging two mappings page by page: page i of `b` onto page i of `a`. With `makeIdentical`
 * the duplicate's contents are first made equal to the original's (the workload wrote the same
 * bytes). Returns the number of pages merged.
 */
export function ksmMergeMappings(k: Kernel, a: Vma, b: Vma, makeIdentical = true): number {
  const pages = Math.min(a.end - a.start, b.end - b.start) / PAGE_SIZE;
  let merged = 0;
  for (let i = 0; i < pages; i++) {
    const addrA = a.start + i * PAGE_SIZE;
    const addrB = b.start + i * PAGE_SIZE;
    if (makeIdentical) {
      const pa = a.mm.pte(addrA);
      const pb = b.mm.pte(addrB);
      if (pa?.kind === 'present' && pb?.kind === 'present') k.alloc.pfnToPage(pb.pfn)!.data = k.alloc.pfnToPage(pa.pfn)!.data;
    }
    if (ksmMergePage(k, a, addrA, b, addrB)) merged++;
  }
  return merged;
}

/**
 * collect_procs_ksm(): for each rmap item of the stable node (newest first), each process with a
 * VMA in that item's anon_vma gets its early-kill thread added once (add_to_kill_ksm skips a task
 * already listed), at the item's address.
 */
export function collectProcsKsm(k: Kernel, page: Page, forceEarly: boolean): ToKill[] {
  const node = stableNode(page);
  const out: ToKill[] = [];
  if (!node) return out;
  const listed = new Set<Task>();
  for (const item of node.items) {
    const pte = item.vma.mm.pte(item.addr);
    if (pte?.kind !== 'present' || pte.pfn !== page.folio().pfn) continue;
    const vmas = item.anonVma ? [...item.anonVma.vmas] : [item.vma];
    const procs = new Set<Process>();
    for (const v of vmas) {
      const proc = k.procOfMm(v.mm);
      if (proc?.alive) procs.add(proc);
    }
    for (const proc of [...procs].sort((x, y) => x.pid - y.pid)) {
      const t = taskEarlyKill(k, proc, forceEarly);
      if (!t) {
        k.trail('collect_procs', `${proc.comm}:${proc.pid} not collected (KSM, late kill)`);
        continue;
      }
      if (listed.has(t)) continue;
      listed.add(t);
      out.push({ task: t, addr: item.addr, addrValid: true, sizeShift: 12 });
      k.trail('collect_procs', `collected ${t.comm}:${t.tid} at ${hexPfn(item.addr)} (KSM rmap item)`, { pid: proc.pid, tid: t.tid, addr: hexPfn(item.addr) });
    }
  }
  return out;
}

hooks.collectKsm = (k, page, forceEarly) => (k.profile.ksmSupported ? collectProcsKsm(k, page, forceEarly) : []);
