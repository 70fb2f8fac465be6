// kernel-model.md §21: the 29 edge cases, one subtest each (6.12 unless a profile matters).
// Several are exercised in depth in states/earlykill/inject.test.ts; here each gets its own check.
import t from 'tap';
import { memoryFailure, memoryFailureQueue, MF_ACTION_REQUIRED, MF_MUST_KILL, mfTunables } from '../../tsrc/kernel/mm/memory-failure.js';
import { PG } from '../../tsrc/kernel/mm/page.js';
import { corruptPfn, debugfs, hardOffline, hc, hx, invariantsOk, kpf, madvise, mf, pfnOf, sig, simple, softOffline, step, touch, unpoison, world, type Cfg } from './helpers.js';

const EBUSY = -16, EHWPOISON = -133, EFAULT = -14, EIO = -5, EOPNOTSUPP = -95;
const V = '6.12';

t.test('21.1 already-poisoned page', async (t) => {
  const w = simple(V);
  const pfn = pfnOf(w, 'p.buf[0]');
  corruptPfn(w, pfn);
  t.equal(corruptPfn(w, pfn).ret, EHWPOISON);
  t.equal(madvise(w, 'p', 'p.buf[0]').ret, EFAULT, 'hwpoison entry: GUP fails first');
  t.equal(hc(w.k), 4);
});
t.test('21.2 soft-offlined page later hit by memory_failure', async (t) => {
  const w = simple(V);
  const pfn = pfnOf(w, 'p.buf[0]');
  softOffline(w, pfn);
  const r = corruptPfn(w, pfn);
  t.equal(r.ret, EHWPOISON);
  t.same(softOffline(w, pfn).log, [`Soft offline: ${hx(pfn)}: page already poisoned`]);
});
t.test('21.3 page freed / allocated around the check', async (t) => {
  const w = simple(V);
  const pfn = pfnOf(w, 'free[0]');
  mfTunables(w.k).races.beforeTakeOffBuddy = (p) => {
    mfTunables(w.k).races.beforeTakeOffBuddy = undefined;
    p.clear(PG.buddy);
    p.refcount = 1;
    p.kind = 'kernel';
  };
  t.equal(corruptPfn(w, pfn).log.at(-1), mf(pfn, 'recovery action for get hwpoison page: Ignored'));
});
t.test('21.4 shared file page: clean dropped silently, dirty signals early processes', async (t) => {
  const w = world({ machine: { kernel: V, sysctl: { 'vm.memory_failure_early_kill': 1 } }, workload: { files: [{ name: 'f', pages: 2 }], processes: [{ name: 'a', comm: 'a', mappings: [{ name: 'm', kind: 'file', file: 'f', shared: true, pages: 2, populate: 'read' }] }, { name: 'b', comm: 'b', mappings: [{ name: 'm', kind: 'file', file: 'f', shared: true, pages: 2, populate: 'read' }] }] } });
  t.same(corruptPfn(w, 'a.m[0]').signals, []);
  touch(w, 'a', 'a.m[1]', true);
  t.equal(corruptPfn(w, 'a.m[1]').signals.length, 2);
});
t.test('21.5 anon page shared after fork', async (t) => {
  const w = world({ machine: { kernel: V }, workload: { processes: [{ name: 'a', comm: 'a', mappings: [{ name: 'buf', kind: 'anon', pages: 1 }] }, { name: 'b', comm: 'b', parent: 'a' }] } });
  corruptPfn(w, 'a.buf[0]');
  t.equal(touch(w, 'a', 'a.buf[0]').signals[0]?.code, 4);
  t.equal(touch(w, 'b', 'b.buf[0]').signals[0]?.code, 4);
});
t.test('21.6 early-kill thread selection (LATE leader, default thread, sysctl 1)', async (t) => {
  const w = world({ machine: { kernel: V, sysctl: { 'vm.memory_failure_early_kill': 1 } }, workload: { processes: [{ name: 'a', comm: 'a', 'mce-kill': 'late', threads: [{ name: 't', 'mce-kill': 'default' }], mappings: [{ name: 'buf', kind: 'anon', pages: 1 }] }] } });
  t.same(corruptPfn(w, 'a.buf[0]').signals.map((s) => s.tid), [w.task('a.t').tid]);
});
t.test('21.7 signal delivery: AO to SIG_IGN discarded, AR forced', async (t) => {
  const w = simple(V, {}, { sysctl: { 'vm.memory_failure_early_kill': 1 } }, { sigbus: 'ignore' });
  t.same(corruptPfn(w, 'p.buf[0]').signals, []);
  const pfn = pfnOf(w, 'p.buf[1]');
  const r = step(w, () => w.k.syscall(w.task('p'), () => memoryFailure(w.k, pfn, MF_ACTION_REQUIRED), 0));
  t.ok(r.signals[0]?.fatal);
});
t.test('21.8 si_addr / si_addr_lsb: page aligned from memory_failure, exact from the fault', async (t) => {
  const w = simple(V, {}, { sysctl: { 'vm.memory_failure_early_kill': 1 } });
  const addr = w.resolve('p.buf[0]').addr!;
  t.same(corruptPfn(w, 'p.buf[0]').signals.map(sig), [`SIGBUS:AO@${w.task('p').tid}:${hx(addr)}:12`]);
  t.same(touch(w, 'p', 'p.buf[0]+0x42').signals.map(sig), [`SIGBUS:AR@${w.task('p').tid}:${hx(addr + 0x42)}:12`]);
});
t.test('21.9 dirty page cache -> fsync EIO once per open file', async (t) => {
  const w = world({ machine: { kernel: V }, workload: { files: [{ name: 'f', pages: 1, dirty: [0] }], processes: [{ name: 'a', comm: 'a' }] } });
  const fd = w.fdFor('a', 'f');
  corruptPfn(w, 'file:f[0]');
  t.equal(w.k.fsync(w.task('a'), fd), EIO);
  t.equal(w.k.fsync(w.task('a'), fd), 0);
});
t.test('21.10 shmem keeps the poisoned page', async (t) => {
  const w = simple(V, { shared: true });
  corruptPfn(w, 'p.buf[0]');
  t.equal(touch(w, 'p', 'p.buf[0]').signals[0]?.code, 4);
  t.equal(unpoison(w, pfnOf(w, 'p.buf[0]')).ret, EBUSY);
});
t.test('21.11 dirty swap-cache page -> Delayed', async (t) => {
  const w = simple(V, { 'swap-cache': [0] });
  const r0 = w.resolve('p.buf[0]');
  w.k.alloc.pfnToPage(r0.pfn!)!.index = r0.vma!.pgoffOf(r0.addr!); // swap.ts swapIn() index (reported)
  touch(w, 'p', 'p.buf[0]', true);
  t.equal(corruptPfn(w, 'p.buf[0]').log.at(-1), mf(r0.pfn!, 'recovery action for dirty swapcache page: Delayed'));
});
t.test('21.12 hugetlb partial poisoning', async (t) => {
  const w = world({ machine: { kernel: V, hugepages: { '2M': 2 } }, workload: { processes: [{ name: 'p', comm: 'p', mappings: [{ name: 'h', kind: 'hugetlb', pages: 512 }] }] } });
  const head = pfnOf(w, 'p.h[0]');
  corruptPfn(w, head + 1);
  t.equal(touch(w, 'p', 'p.h[300]').signals[0]?.lsb, 21);
});
t.test('21.13 THP that cannot be split', async (t) => {
  const w = world({ machine: { kernel: V, sysctl: { 'vm.memory_failure_early_kill': 1 } }, workload: { processes: [{ name: 'p', comm: 'p', mappings: [{ name: 't', kind: 'anon', pages: 512, thp: true }] }] } });
  const pfn = pfnOf(w, 'p.t[3]');
  w.k.alloc.pfnToPage(pfn)!.folio().pinned = 1;
  const r = corruptPfn(w, pfn);
  t.equal(r.ret, EHWPOISON);
  t.equal(r.log.at(-1), mf(pfn, 'recovery action for unsplit thp: Failed'));
  t.same(r.signals.map((s) => s.lsb), [21]);
});
t.test('21.14 software injection does not corrupt data: Ignored page stays usable', async (t) => {
  const w = simple(V, { populate: 'read' });
  madvise(w, 'p', 'p.buf[0]');
  t.equal(touch(w, 'p', 'p.buf[0]').ret, 0);
  t.equal(touch(w, 'p', 'p.buf[0]', true).ret, 0, 'a write COWs away from the zero page');
});
t.test('21.15 zero page via madvise vs corrupt-pfn', async (t) => {
  const w = simple(V, { populate: 'read' });
  t.equal(madvise(w, 'p', 'p.buf[0]').ret, EBUSY);
  const w2 = simple(V);
  const z = w2.k.zeroPage.pfn;
  t.same(corruptPfn(w2, z).log.slice(1), [mf(z, 'unhandlable page.'), mf(z, 'recovery action for get hwpoison page: Ignored')]);
});
t.test('21.16 kernel pages still count', async (t) => {
  const w = simple(V);
  corruptPfn(w, 'slab[0]');
  t.equal(hc(w.k), 4);
  t.equal(w.k.mfStats(0).ignored, 1);
});
t.test('21.17 filter semantics: enable=0 does no pre-check', async (t) => {
  const w = simple(V);
  debugfs(w, 'corrupt-filter-memcg', '77');
  const s = pfnOf(w, 'slab[0]');
  t.equal(corruptPfn(w, s).log.length, 3, 'kernel page reaches memory_failure');
  debugfs(w, 'corrupt-filter-enable', '1');
  t.same(corruptPfn(w, 'p.buf[0]').log, [], 'memcg filter rejects silently');
});
t.test('21.18 recovery=0 panics even for software injection', async (t) => {
  const w = simple(V, {}, { sysctl: { 'vm.memory_failure_recovery': 0 } });
  const pfn = pfnOf(w, 'p.buf[0]');
  t.equal(corruptPfn(w, pfn).log.at(-1), `Kernel panic - not syncing: Memory failure on page ${pfn.toString(16)}`);
});
t.test('21.19 unpoison refusals after a hardware failure', async (t) => {
  const w = simple(V);
  const pfn = pfnOf(w, 'p.buf[0]');
  corruptPfn(w, pfn);
  step(w, () => w.k.syscall(null, () => memoryFailure(w.k, pfnOf(w, 'free[0]'), 0), 0));
  t.equal(unpoison(w, pfn).ret, EOPNOTSUPP);
  t.equal(hc(w.k), 8, 'nothing undone');
});
t.test('21.20 MF_MUST_KILL disables the clean-page drop', async (t) => {
  const w = world({ machine: { kernel: V }, workload: { files: [{ name: 'f', pages: 1 }], processes: [{ name: 'a', comm: 'a', mappings: [{ name: 'm', kind: 'file', file: 'f', shared: true, pages: 1, populate: 'read' }] }] } });
  const pfn = pfnOf(w, 'a.m[0]');
  const r = step(w, () => w.k.syscall(w.task('a'), () => memoryFailure(w.k, pfn, MF_ACTION_REQUIRED | MF_MUST_KILL), 0));
  t.equal(r.signals[0]?.code, 4);
  t.notOk(r.log.some((l) => l.includes('dropped without side effects')));
});
t.test('21.21 ordering of log lines', async (t) => {
  const w = simple(V, {}, { sysctl: { 'vm.memory_failure_early_kill': 1 } });
  const r = corruptPfn(w, 'p.buf[0]');
  t.match(r.log[0], /^Injecting memory failure at pfn/);
  t.match(r.log[1], /Sending SIGBUS/);
  t.match(r.log[2], /recovery action/);
});
t.test('21.22 madvise loop advances and stops; needs CAP_SYS_ADMIN', async (t) => {
  const w = simple(V);
  w.k.capSysAdmin = false;
  t.equal(madvise(w, 'p', 'p.buf[0]').ret, -1);
  w.k.capSysAdmin = true;
  t.equal(madvise(w, 'p', 'p.buf[0]', 'hwpoison', 2 * 4096).log.filter((l) => l.startsWith('Injecting')).length, 2);
});
t.test('21.23 SRAO-style asynchronous memory_failure(pfn, 0) disables unpoison', async (t) => {
  const w = simple(V);
  step(w, () => w.k.syscall(null, () => memoryFailure(w.k, pfnOf(w, 'p.buf[0]'), 0), 0));
  t.ok(w.k.hwMemoryFailure);
  t.same(touch(w, 'p', 'p.buf[0]').signals.map((s) => s.code), [4], 'late process: AR on touch');
});
t.test('21.24 memory_failure_queue overflow', async (t) => {
  const w = simple(V);
  const r = step(w, () => {
    for (let i = 0; i < 17; i++) memoryFailureQueue(w.k, 0x100000 + i, 0, 1);
    return 0;
  });
  t.equal(r.log[0], `Memory failure: buffer overflow when queuing memory failure at ${hx(0x100010)}`);
});
t.test('21.25 number formatting: pfn 0 prints as 0x0 (lib/vsprintf.c), octal input; sysfs takes a physical address', async (t) => {
  const w = simple(V);
  const r = debugfs(w, 'corrupt-pfn', '0');
  t.equal(r.log[0], 'Injecting memory failure at pfn 0x0');
  t.equal(r.log.at(-1), 'Memory failure: 0x0: recovery action for get hwpoison page: Ignored');
  const pfn = pfnOf(w, 'free[0]');
  t.equal(hardOffline(w, pfn, 0x10).log[0], mf(pfn, 'recovery action for free buddy page: Recovered'));
});
t.test('21.26 CLONE_VM processes and AR: current listed more than once', async (t) => {
  const w = world({ machine: { kernel: V }, workload: { processes: [{ name: 'a', comm: 'a', mappings: [{ name: 'buf', kind: 'anon', pages: 1 }] }, { name: 'b', comm: 'b' }] } });
  w.procs.get('b')!.mm = w.procs.get('a')!.mm;
  w.procs.get('a')!.mm!.users++;
  const pfn = pfnOf(w, 'a.buf[0]');
  const r = step(w, () => w.k.syscall(w.task('a'), () => memoryFailure(w.k, pfn, MF_ACTION_REQUIRED), 0));
  t.equal(r.log.filter((l) => l.includes('Sending SIGBUS')).length, 2);
  t.equal(r.signals.length, 1);
});
t.test('21.27 repeated access after an AR handler returns', async (t) => {
  const w = simple(V);
  corruptPfn(w, 'p.buf[0]');
  for (let i = 0; i < 3; i++) t.equal(touch(w, 'p', 'p.buf[0]').signals[0]?.code, 4);
});
t.test('21.28 SRAR on a clean disk page-cache page: transparent recovery', async (t) => {
  const w = world({ machine: { kernel: V }, workload: { files: [{ name: 'f', pages: 1 }], processes: [{ name: 'a', comm: 'a', mappings: [{ name: 'm', kind: 'file', file: 'f', pages: 1, populate: 'read' }] }] } });
  const pfn = pfnOf(w, 'a.m[0]');
  const r = step(w, () => w.k.syscall(w.task('a'), () => memoryFailure(w.k, pfn, MF_ACTION_REQUIRED), 0));
  t.equal(r.ret, 0);
  t.same(r.signals, []);
  t.same(r.log, [mf(pfn, 'corrupted page was clean: dropped without side effects'), mf(pfn, 'recovery action for clean LRU page: Recovered')]);
  t.equal(touch(w, 'a', 'a.m[0]').ret, 0, 're-faults a fresh copy');
  t.equal(invariantsOk(w), undefined);
});
t.test('21.29 page isolated from the LRU at the wrong moment: unknown page, no unmapping', async (t) => {
  const w = simple(V);
  const pfn = pfnOf(w, 'p.buf[0]');
  mfTunables(w.k).races.beforeLock = (p) => p.clear(PG.lru);
  const r = corruptPfn(w, pfn);
  t.same(r.log.slice(1), [mf(pfn, 'Unknown page state'), mf(pfn, 'recovery action for unknown page: Ignored')]);
  t.equal(r.ret, EBUSY);
  t.ok(kpf(w.k, pfn, 'mmap'), 'still mapped');
});
