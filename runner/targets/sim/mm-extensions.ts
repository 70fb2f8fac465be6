// Mapping builders for the parts of the memory model that live in their own modules: hugetlb
// pools and MAP_HUGETLB / hugetlbfs mappings (mm/hugetlb.ts), THP mappings (mm/huge_memory.ts)
// and KSM-merged mappings (mm/ksm.ts). Registered with the World through registerWorldSetup.
import type { MappingConfig } from '../../case/schema.js';
import type { Process } from '../../../tsrc/kernel/sched.js';
import { PAGE_SIZE, type Vma } from '../../../tsrc/kernel/mm/mm.js';
import { hugetlbSetPool, mmapHugetlb, mmapHugetlbfs } from '../../../tsrc/kernel/mm/hugetlb.js';
import { HPAGE_PMD_SIZE, madviseHugepage } from '../../../tsrc/kernel/mm/huge_memory.js';
import { ksmMergeMappings } from '../../../tsrc/kernel/mm/ksm.js';
import { registerWorldSetup } from './extensions.js';
import { SetupError, type World } from './world.js';

/** Touches a hugetlb mapping: every base page for 2 MiB pages, the first of each 1 GiB page. */
function populateHuge(w: World, proc: Process, procName: string, m: MappingConfig, vma: Vma): void {
  if (vma.pageShift < 30) {
    w.populate(proc, procName, m, vma);
    return;
  }
  const how = m.populate ?? 'write';
  if (how === 'none') return;
  const stride = 2 ** vma.pageShift;
  for (let addr = vma.start; addr < vma.end; addr += stride) {
    const r = w.k.access(proc.leader, addr, how === 'write');
    if (r.kind === 'ok') w.written.set(`${procName}.${m.name}[${(addr - vma.start) / PAGE_SIZE}]`, r.data);
  }
}

function hugeShift(size: string | undefined): number {
  return size === '1G' ? 30 : 21;
}

/** The VMA a `ksm: proc.mapping` reference names. */
function ksmPeer(w: World, ref: string): Vma {
  const [pname, mname] = ref.split('.');
  const proc = w.procs.get(pname ?? '');
  const vma = proc?.mm?.vmas.find((v) => v.name === mname);
  if (!vma) throw new SetupError(`ksm: no mapping "${ref}" (it must be created before this one)`);
  return vma;
}

registerWorldSetup((w) => {
  const hp = w.cfg.machine?.hugepages;
  if (hp?.['2M']) hugetlbSetPool(w.k, 21, hp['2M']);
  if (hp?.['1G']) hugetlbSetPool(w.k, 30, hp['1G']);

  // MAP_ANONYMOUS|MAP_HUGETLB [|MAP_SHARED].
  w.mappingBuilders.set('hugetlb', (proc, procName, m) => {
    const vma = mmapHugetlb(w.k, proc, { pages: m.pages, shared: m.shared ?? false, shift: hugeShift(m.huge), name: m.name });
    populateHuge(w, proc, procName, m, vma);
  });

  // shmget(SHM_HUGETLB) + shmat, memfd_create(MFD_HUGETLB) + mmap: shared hugetlb pages on the
  // internal hugetlbfs mount that stay in the segment / file (world.ts routes kind sysv-shm and
  // memfd with `huge:` here).
  w.mappingBuilders.set('shm-hugetlb', (proc, procName, m) => {
    const segment = m.kind === 'memfd' ? 'memfd' : 'SYSV';
    const vma = mmapHugetlb(w.k, proc, { pages: m.pages, shared: m.shared ?? true, shift: hugeShift(m.huge), name: m.name, segment });
    populateHuge(w, proc, procName, m, vma);
  });

  // mmap() of a file on a hugetlbfs mount.
  w.mappingBuilders.set('hugetlbfs', (proc, procName, m) => {
    const inode = m.file ? w.files.get(m.file) : undefined;
    if (!inode) throw new SetupError(`hugetlbfs mapping "${m.name}" needs a file`);
    if (inode.sb.fs !== 'hugetlbfs') throw new SetupError(`file "${m.file}" is not on a hugetlbfs device`);
    if (m.huge && inode.hugeShift <= 12) inode.hugeShift = hugeShift(m.huge);
    const vma = mmapHugetlbfs(w.k, proc, inode, { pages: m.pages, shared: m.shared ?? true, ...(m.offset !== undefined ? { offset: m.offset } : {}), name: m.name });
    w.fdFor(procName, m.file!);
    populateHuge(w, proc, procName, m, vma);
  });

  // madvise(MADV_HUGEPAGE) on a private anonymous mapping, 2 MiB aligned.
  w.mappingBuilders.set('thp', (proc, procName, m) => {
    if (m.kind !== 'anon' || m.shared) throw new SetupError('thp: only private anonymous mappings get transparent huge pages in the model');
    const vma = w.k.mmap(proc, { pages: m.pages, shared: false, locked: m.mlock ?? false, name: m.name, align: HPAGE_PMD_SIZE });
    madviseHugepage(vma);
    w.populate(proc, procName, m, vma);
    if (m.ksm) ksmMergeMappings(w.k, ksmPeer(w, m.ksm), vma);
  });

  // A private anonymous mapping whose pages KSM merges with those of another mapping.
  w.mappingBuilders.set('ksm', (proc, procName, m) => {
    if (m.kind !== 'anon' || m.shared) throw new SetupError('ksm: only private anonymous mappings can be merged');
    const peer = ksmPeer(w, m.ksm!);
    const vma = w.k.mmap(proc, { pages: m.pages, shared: false, locked: m.mlock ?? false, name: m.name });
    w.populate(proc, procName, { ...m, 'swapped-out': [], 'swap-cache': [] }, vma);
    w.k.syscall(null, () => ksmMergeMappings(w.k, peer, vma), 0);
    // The duplicate now holds the peer's contents.
    for (let i = 0; i < m.pages; i++) {
      const pte = proc.mm?.pte(vma.start + i * PAGE_SIZE);
      if (pte?.kind === 'present') w.written.set(`${procName}.${m.name}[${i}]`, w.k.alloc.pfnToPage(pte.pfn)!.data);
    }
  });
});
