// Invariants the model checks after every step under --check-invariants: states the real
// kernel can never reach. checkInvariants() returns a description of the first violation, or
// undefined. watchInvariants() installs the observers that must see events as they happen (every
// signal's si_addr is checked against its target's VMAs at the time it is sent); checkInvariants()
// installs them too on first use, so calling watchInvariants() right after boot only makes the
// coverage start earlier.
import type { Kernel } from './kernel.js';
import { BUS_MCEERR_AO, BUS_MCEERR_AR, SIGBUS, type SigInfo, type Task } from './sched.js';
import { PG, type Page } from './mm/page.js';
import { PAGE_SIZE } from './mm/mm.js';
import { unpoisonedPfns } from './mm/memory-failure.js';

interface WatchState {
  /** Violations seen by the observers since the last check. */
  violations: string[];
  /** pfn -> mapcount when the page was first seen poisoned (it may only go down). */
  poisonedMapcount: Map<number, number>;
  /** Pages seen poisoned at the previous check. */
  poisonedBefore: Set<number>;
}

const states = new WeakMap<Kernel, WatchState>();

function stateOf(k: Kernel): WatchState {
  let s = states.get(k);
  if (!s) {
    s = { violations: [], poisonedMapcount: new Map(), poisonedBefore: new Set() };
    states.set(k, s);
  }
  return s;
}

/** Installs the signal observer: a SIGBUS BUS_MCEERR_* must point into a mapping of its target. */
export function watchInvariants(k: Kernel): void {
  const st = stateOf(k);
  if (k.signalHook) return;
  k.signalHook = (task: Task, info: SigInfo): void => {
    if (info.signo !== SIGBUS || (info.code !== BUS_MCEERR_AR && info.code !== BUS_MCEERR_AO) || info.addr === undefined) return;
    const mm = task.group.mm;
    if (!mm?.findVma(info.addr)) {
      st.violations.push(`SIGBUS ${info.code === BUS_MCEERR_AR ? 'BUS_MCEERR_AR' : 'BUS_MCEERR_AO'} to ${task.comm}:${task.tid} has si_addr ${info.addr.toString(16)} outside its mappings`);
    }
  };
}

/** Poisoned pages the model holds, counted the way num_poisoned_pages counts them. */
function countPoisoned(k: Kernel): number {
  let n = 0;
  for (const p of k.alloc.pages.values()) {
    const folio = p.folio();
    if (folio.hugetlb) {
      // hugetlb: PG_hwpoison on the head, one count per raw error page recorded.
      if (p === folio && p.test(PG.hwpoison)) n += Math.max(1, folio.hugetlb.rawErrors.length);
      continue;
    }
    if (p.test(PG.hwpoison)) n++;
  }
  return n;
}

/** A page the kernel may legitimately keep mapped (or map again) while it is poisoned. */
function mayStayMapped(p: Page): boolean {
  return p.kind === 'zero' || p.test(PG.reserved);
}

export function checkInvariants(k: Kernel): string | undefined {
  const st = stateOf(k);
  watchInvariants(k);
  if (st.violations.length) return st.violations.splice(0).join('; ');

  // Killed processes are fully torn down; ptes lie inside VMAs and are counted per pfn.
  const mapcounts = new Map<number, number>();
  for (const proc of k.processes.values()) {
    if (!proc.alive) {
      if (proc.mm) return `killed process ${proc.comm}:${proc.pid} still has an address space`;
      for (const t of proc.threads) if (t.pending.length) return `killed process ${proc.comm}:${proc.pid} still has pending signals`;
      continue;
    }
    for (const [vpn, pte] of proc.mm?.ptes ?? []) {
      if (!proc.mm!.findVma(vpn * PAGE_SIZE)) return `pte at ${(vpn * PAGE_SIZE).toString(16)} of ${proc.comm}:${proc.pid} lies outside every VMA`;
      if (pte.kind === 'present') mapcounts.set(pte.pfn, (mapcounts.get(pte.pfn) ?? 0) + 1);
    }
  }
  for (const inode of k.inodes.values()) {
    for (const vma of inode.mmap) {
      const owner = k.procOfMm(vma.mm);
      if (!owner || !owner.alive) return `inode ${inode.ino} is still mapped by a VMA of a dead process`;
    }
  }

  // Per page: counts never negative and matching the page tables; poisoned pages never on the
  // free lists, never newly mapped, never silently unpoisoned.
  const poisonedNow = new Set<number>();
  const unpoisoned = unpoisonedPfns(k);
  for (const p of k.alloc.pages.values()) {
    const pfn = p.pfn.toString(16);
    if (p.refcount < 0) return `pfn ${pfn} has a negative refcount`;
    if (p.mapcount < 0) return `pfn ${pfn} has a negative mapcount`;
    const folio = p.folio();
    const compound = folio.order > 0 || folio.hugetlb !== null || p.head !== null;
    if (!compound && p.kind !== 'zero') {
      const mc = mapcounts.get(p.pfn) ?? 0;
      if (mc !== p.mapcount) return `pfn ${pfn} mapcount ${p.mapcount} but ${mc} ptes map it`;
      if (p.kind !== 'free' && p.refcount < p.mapcount) return `pfn ${pfn} refcount ${p.refcount} below its mapcount ${p.mapcount}`;
    }
    if (p.test(PG.hwpoison) && !folio.hugetlb) {
      poisonedNow.add(p.pfn);
      if (p.test(PG.buddy)) return `poisoned pfn ${pfn} is on the free lists`;
      if (!mayStayMapped(p)) {
        const seen = st.poisonedMapcount.get(p.pfn);
        if (seen === undefined) st.poisonedMapcount.set(p.pfn, p.mapcount);
        else if (p.mapcount > seen) return `poisoned pfn ${pfn} was newly mapped (mapcount ${seen} -> ${p.mapcount})`;
        else st.poisonedMapcount.set(p.pfn, p.mapcount);
      }
    }
  }
  for (const pfn of st.poisonedBefore) {
    if (poisonedNow.has(pfn)) continue;
    const p = k.alloc.pages.get(pfn);
    if (p?.folio().hugetlb || (p && p.head)) continue;
    if (!unpoisoned.has(pfn)) return `pfn ${pfn.toString(16)} lost PG_hwpoison without unpoison_memory() (reallocated?)`;
  }
  // An unpoisoned page is usable again: free in the allocator or handed out afresh.
  for (const pfn of unpoisoned) {
    const p = k.alloc.pages.get(pfn);
    if (!p || p.test(PG.hwpoison)) {
      unpoisoned.delete(pfn);
      continue;
    }
    if (p.private !== 0) return `unpoisoned pfn ${pfn.toString(16)} is still marked taken off buddy`;
    if (p.kind === 'free' && !p.test(PG.buddy)) return `unpoisoned pfn ${pfn.toString(16)} is neither free nor in use`;
  }
  for (const pfn of poisonedNow) st.poisonedMapcount.has(pfn) || st.poisonedMapcount.set(pfn, k.alloc.pages.get(pfn)!.mapcount);
  for (const pfn of [...st.poisonedMapcount.keys()]) if (!poisonedNow.has(pfn)) st.poisonedMapcount.delete(pfn);
  st.poisonedBefore = poisonedNow;

  // HardwareCorrupted equals the poisoned pages held (6.11–6.17 also count already-poisoned events).
  const held = countPoisoned(k);
  if (k.profile.alreadyPoisoned === 'already-poisoned-counted') {
    if (k.numPoisonedPages < held) return `HardwareCorrupted ${k.numPoisonedPages * 4} kB below the ${held} poisoned pages held`;
  } else if (k.numPoisonedPages !== held) {
    return `HardwareCorrupted ${k.numPoisonedPages * 4} kB but the model holds ${held} poisoned page(s)`;
  }
  return undefined;
}
