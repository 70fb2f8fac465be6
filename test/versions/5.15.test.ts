// The 5.15 profile through the model: every switch that differs from 6.1/6.12 shows in a
// behaviour (kernel-model.md §20, §10 History, §9, §19.8).
import t from 'tap';
import '../../runner/targets/sim/builtin-extensions.js';
import { pinUserPage } from '../../tsrc/kernel/mm/gup.js';
import { PG } from '../../tsrc/kernel/mm/page.js';
import { PROFILES } from '../../tsrc/kernel/profiles.js';
import { memoryFailure, MF_ACTION_REQUIRED } from '../../tsrc/kernel/mm/memory-failure.js';
import { corruptPfn, debugfs, hc, madvise, mf, pfnOf, simple, step, touch, unpoison, world } from '../memory-failure/helpers.js';

const EFAULT = -14, EBUSY = -16, EOPNOTSUPP = -95;

t.test('the 5.15 row', async (t) => {
  const p = PROFILES.get('5.15')!;
  t.ok(p, 'profile exists');
  t.equal(p.major, 5);
  t.equal(p.minor, 15);
  t.ok(p.tolerant, 'tolerant still exists (removed in 5.18)');
  t.notOk(p.swSimulated);
  t.notOk(p.mfStats);
  t.equal(p.enableSoftOfflineMax, undefined);
  t.notOk(p.ksmSupported);
  t.equal([...PROFILES.keys()][0], '5.15', 'oldest first');
});

t.test('madvise: MF_COUNT_INCREASED only, no hw_memory_failure, late kill', async (t) => {
  for (const v of ['5.15', '6.1', '6.12']) {
    const w = simple(v, { populate: 'write' });
    const r = madvise(w, 'p', 'p.buf[1]');
    t.equal(r.ret, 0, `${v}: ret 0`);
    t.ok(r.log.some((l) => l.endsWith('recovery action for dirty LRU page: Recovered')), `${v}: dirty LRU Recovered`);
    t.equal(r.signals.length, v === '6.12' ? 1 : 0, `${v}: signal at injection only with MF_ACTION_REQUIRED (6.11+)`);
    t.notOk(w.k.hwMemoryFailure, `${v}: madvise never counts as a hardware failure`);
  }
});

t.test('corrupt-pfn on 5.15 passes flags 0 but unpoison still works', async (t) => {
  const w = simple('5.15', { populate: 'write' });
  const pfn = pfnOf(w, 'free[0]');
  t.equal(corruptPfn(w, 'free[0]').ret, 0);
  t.notOk(w.k.hwMemoryFailure, 'hw_memory_failure does not exist before 5.19');
  const r = unpoison(w, pfn);
  t.equal(r.ret, 0);
  t.same(r.log, [`Unpoison: Software-unpoisoned page 0x${pfn.toString(16)}`]);
});

t.test('unpoison after a real (flags 0) memory failure: 5.15 allows, 6.1 refuses', async (t) => {
  for (const [v, ret] of [['5.15', 0], ['6.1', EOPNOTSUPP]] as const) {
    const w = simple(v, { populate: 'write' });
    const soft = pfnOf(w, 'free[0]');
    debugfs(w, 'corrupt-pfn', `0x${soft.toString(16)}`);
    step(w, () => w.k.syscall(null, () => memoryFailure(w.k, pfnOf(w, 'free[1]'), 0), 0));
    t.equal(unpoison(w, soft).ret, ret, `${v}: unpoison returns ${ret}`);
  }
});

t.test('legacy unpoison: refusals return 0 with the 5.x formats', async (t) => {
  const w = simple('5.15', { populate: 'write' });
  const pfn = pfnOf(w, 'free[0]');
  const r = unpoison(w, pfn);
  t.equal(r.ret, 0, '5.15: not poisoned -> 0');
  t.same(r.log, [`Unpoison: Page was already unpoisoned 0x${pfn.toString(16)}`]);
  const w61 = simple('6.1', { populate: 'write' });
  t.equal(unpoison(w61, pfnOf(w61, 'free[0]')).ret, EBUSY, '6.1: -EBUSY');
  // A page kept in the swap cache / page cache: "Someone grabs" but 0.
  const ws = world({ machine: { kernel: '5.15' }, workload: { processes: [{ name: 'p', comm: 'victim', mappings: [{ name: 'buf', kind: 'anon', shared: true, pages: 4 }] }] } });
  const sp = pfnOf(ws, 'p.buf[1]');
  step(ws, () => ws.k.syscall(null, () => memoryFailure(ws.k, sp, 0), 0));
  t.equal(unpoison(ws, sp).ret, 0, 'refused with 0');
});

t.test('kill_accessing_process: -EFAULT on 5.15 when current does not map the page, 0 on 6.1', async (t) => {
  for (const [v, want] of [['5.15', EFAULT], ['6.1', 0]] as const) {
    const w = simple(v, { populate: 'write' });
    const pfn = pfnOf(w, 'free[0]');
    corruptPfn(w, pfn);
    const r = step(w, () => w.k.syscall(w.task('p'), () => memoryFailure(w.k, pfn, MF_ACTION_REQUIRED), 0));
    t.equal(r.ret, want, `${v}: ${want}`);
    t.same(r.signals, [], `${v}: nobody signalled`);
    t.ok(r.log.includes(mf(pfn, 'already hardware poisoned')), `${v}: already hardware poisoned`);
  }
});

t.test('HardwareCorrupted counted at TestSetPageHWPoison and undone by the filter (5.15)', async (t) => {
  const w = simple('5.15', { populate: 'write' });
  const pfn = pfnOf(w, 'p.buf[0]');
  debugfs(w, 'corrupt-filter-enable', '1');
  // Only pages without KPF_ANON pass: the anonymous page is rejected.
  debugfs(w, 'corrupt-filter-flags-mask', '0x1000');
  debugfs(w, 'corrupt-filter-flags-value', '0');
  const r = corruptPfn(w, pfn);
  t.equal(r.ret, 0, 'filtered (hwpoison_inject turns -EOPNOTSUPP into 0)');
  t.notOk(w.k.alloc.pfnToPage(pfn)!.test(PG.hwpoison), 'PG_hwpoison cleared again');
  t.equal(hc(w.k), 0, 'no net change');
  debugfs(w, 'corrupt-filter-enable', '0');
  t.equal(corruptPfn(w, pfn).ret, 0);
  t.equal(hc(w.k), 4, 'counted once (at TestSet, not again in action_result)');
});

t.test('shmem page truncated on 5.15, kept on 6.1', async (t) => {
  for (const v of ['5.15', '6.1']) {
    const w = world({
      machine: { kernel: v },
      workload: { devices: [{ name: 'shm0', fs: 'tmpfs' }], files: [{ name: 't', device: 'shm0', pages: 4 }], processes: [{ name: 'p', comm: 'victim' }] },
    });
    const inode = w.files.get('t')!;
    const pfn = pfnOf(w, 'file:t[1]');
    const r = corruptPfn(w, pfn);
    t.equal(r.ret, 0);
    t.equal(inode.cache.has(1), v !== '5.15', `${v}: page ${v === '5.15' ? 'removed from' : 'kept in'} the file`);
  }
});

t.test('thp split failure line has no pr_fmt prefix on 5.15', async (t) => {
  const w = simple('5.15', { kind: 'anon', thp: true, pages: 512 });
  const pfn = pfnOf(w, 'p.buf[0]') + 3;
  w.k.syscall(w.task('p'), () => pinUserPage(w.k, w.task('p'), w.resolve('p.buf[0]').addr!), 0);
  const r = corruptPfn(w, pfn);
  t.equal(r.ret, EBUSY, 'Ignored -> -EBUSY');
  t.ok(r.log.includes(`Memory Failure: 0x${pfn.toString(16)}: thp split failed`), 'no "Memory failure: " prefix before 5.19');
  t.ok(r.log.includes(mf(pfn, 'recovery action for unsplit thp: Ignored')));
});

t.test('1 GiB hugetlb page ignored on 5.15', async (t) => {
  const w = simple('5.15', { kind: 'hugetlb', huge: '1G', pages: 262144, populate: 'write' }, { memory: '4G', hugepages: { '1G': 1 } });
  const pfn = pfnOf(w, 'p.buf[0]');
  const r = corruptPfn(w, pfn);
  t.equal(r.ret, EBUSY);
  t.ok(r.log.includes(mf(pfn, 'recovery action for non-pmd-sized huge page: Ignored')));
  t.same(r.signals, []);
  void touch;
});
