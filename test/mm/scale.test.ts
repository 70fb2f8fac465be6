// Scale: a shared-file page mapped by 10,000 processes, poisoned through corrupt-pfn with early
// kill: one AO per process, every pte a hwpoison entry. The rmap walk is found through the
// file's i_mmap index, so the cost follows the mappers; a 4 TiB machine builds lazily.
import t from 'tap';
import { Kernel } from '../../tsrc/kernel/kernel.js';
import { profileFor } from '../../tsrc/kernel/profiles.js';
import { makeLayout } from '../../runner/targets/sim/layout.js';
import { loadHwpoisonInject, writeHwpoisonDebugfs } from '../../tsrc/kernel/mm/hwpoison-inject.js';
import { PG } from '../../tsrc/kernel/mm/page.js';
import { hugetlbSetPool } from '../../tsrc/kernel/mm/hugetlb.js';

const N = 10_000;

t.test('10,000 mappers of a dirty shared file page: 10,000 AO signals', async (t) => {
  const k = new Kernel({ profile: profileFor('6.12')!, layout: makeLayout({ memoryBytes: 4n << 30n, nodes: 1, holes: [] }) });
  loadHwpoisonInject(k);
  k.writeSysctl('vm.memory_failure_early_kill', 1);
  const sb = k.mountDevice('sda', 'ext4', 8, 0);
  const f = k.createFile(sb, 'shared', 4);
  for (let i = 0; i < 4; i++) f.disk.set(i, k.newDataToken());
  const procs = [];
  for (let i = 0; i < N; i++) {
    const p = k.createProcess(`p${i}`, `proc${i % 100}`);
    const vma = k.mmap(p, { pages: 4, shared: true, file: f, pgoff: 0, name: 'm' });
    procs.push({ p, vma });
  }
  // Everybody reads page 1; the first writes it (dirty).
  for (const { p, vma } of procs) k.access(p.leader, vma.start + 4096, false);
  const first = procs[0]!;
  t.equal(k.access(first.p.leader, first.vma.start + 4096, true).kind, 'ok');
  const page = f.cache.get(1)!;
  t.equal(page.mapcount, N);
  const mark = k.log.mark();
  const sigMark = k.delivered.length;
  const t0 = performance.now();
  const ret = k.syscall(null, () => writeHwpoisonDebugfs(k, 'corrupt-pfn', `0x${page.pfn.toString(16)}`), 0);
  const ms = performance.now() - t0;
  t.comment(`memory_failure + signal delivery for ${N} mappers: ${ms.toFixed(1)} ms`);
  t.equal(ret, 0);
  const log = k.log.since(mark);
  t.equal(log.length, N + 2, 'Injecting line, one Sending SIGBUS line per process, result line');
  t.equal(log[N + 1], `Memory failure: 0x${page.pfn.toString(16)}: recovery action for dirty LRU page: Recovered`);
  const sigs = k.delivered.slice(sigMark);
  t.equal(sigs.length, N);
  t.ok(sigs.every((s) => s.code === 5 && s.lsb === 12), 'all BUS_MCEERR_AO, lsb 12');
  t.equal(new Set(sigs.map((s) => s.pid)).size, N, 'one per process');
  t.ok(procs.every(({ p, vma }) => p.mm!.pte(vma.start + 4096)?.kind === 'hwpoison'), 'every pte is a hwpoison entry');
  t.equal(page.mapcount, 0);
  t.ok(page.test(PG.hwpoison));
});

t.test('a 4 TiB machine with a huge page pool builds lazily', async (t) => {
  const t0 = performance.now();
  const k = new Kernel({ profile: profileFor('6.12')!, layout: makeLayout({ memoryBytes: 4n << 40n, nodes: 4, holes: [] }) });
  hugetlbSetPool(k, 30, 4);
  hugetlbSetPool(k, 21, 64);
  const ms = performance.now() - t0;
  t.comment(`4 TiB machine + pools: ${ms.toFixed(1)} ms, ${k.alloc.pages.size} struct pages materialised`);
  t.ok(k.alloc.pages.size < 1000, 'tail pages are not materialised');
  t.equal(k.meminfo().HugePages_Total, 64);
  t.equal(k.meminfo().Hugetlb, 4 * 1024 * 1024 + 64 * 2048);
});
