// kernel-model.md §5: one test per page-state row (and per profile where the row differs): log
// lines in order, return value, signals at handling time, and what a later access does.
import t from 'tap';
import { memoryFailure, MF_ACTION_REQUIRED, killProcs, mfTunables } from '../../tsrc/kernel/mm/memory-failure.js';
import { PG } from '../../tsrc/kernel/mm/page.js';
import { Inode } from '../../tsrc/kernel/fs.js';
import { corruptPfn, hc, hx, invariantsOk, kpf, madvise, mf, pfnOf, sig, simple, step, touch, world, hardOffline, unpoison, type Cfg } from './helpers.js';

const EBUSY = -16, EHWPOISON = -133, ENXIO = -6, EIO = -5;
const inj = (pfn: number): string => `Injecting memory failure at pfn ${hx(pfn)}`;

function fileWorld(kernel: string, file: Record<string, unknown>, mapping?: Record<string, unknown>, machine: Cfg['machine'] = {}, devices: unknown[] = []): ReturnType<typeof world> {
  return world({
    machine: { kernel, ...machine },
    workload: {
      devices: devices as never,
      files: [{ name: 'f', pages: 4, ...file } as never],
      processes: [{ name: 'p', comm: 'victim', mappings: mapping ? [{ name: 'm', kind: 'file', file: 'f', pages: 4, ...mapping } as never] : [] }],
    },
  });
}

for (const v of ['6.1', '6.12', '6.18']) {
  t.test(`${v} row 1: free buddy page`, async (t) => {
    const w = simple(v);
    const pfn = pfnOf(w, 'free[3]');
    const r = corruptPfn(w, pfn);
    t.same(r.log, [inj(pfn), mf(pfn, 'recovery action for free buddy page: Recovered')]);
    t.equal(r.ret, 0);
    t.same(r.signals, []);
    t.ok(kpf(w.k, pfn, 'hwpoison'));
    t.notOk(kpf(w.k, pfn, 'buddy'));
    t.equal(hc(w.k), 4);
    t.same(w.k.mfStats(0), v === '6.1' ? { total: 0, ignored: 0, failed: 0, delayed: 0, recovered: 0 } : { total: 1, ignored: 0, failed: 0, delayed: 0, recovered: 1 });
    // never allocated again
    for (let i = 0; i < 64; i++) t.not(w.k.alloc.alloc().pfn, pfn);
    t.equal(invariantsOk(w), undefined);
  });

  t.test(`${v} row 5: dirty anon page of a late-kill process, corrupt-pfn then touch`, async (t) => {
    const w = simple(v);
    const pfn = pfnOf(w, 'p.buf[1]');
    const r = corruptPfn(w, 'p.buf[1]');
    t.same(r.log, [inj(pfn), `Memory failure: ${hx(pfn)}: recovery action for dirty LRU page: Recovered`]);
    t.equal(r.ret, 0);
    t.same(r.signals, [], 'late kill: no signal at injection');
    t.equal(kpf(w.k, pfn, 'error'), v === '6.1', 'KPF_ERROR only on 6.1 (K2)');
    const addr = w.resolve('p.buf[1]').addr!;
    const a = touch(w, 'p', 'p.buf[1]+0x123');
    const pid = w.procs.get('p')!.pid;
    t.same(a.log, [`MCE: Killing victim:${pid} due to hardware memory corruption fault at ${(addr + 0x123).toString(16)}`]);
    t.same(a.signals.map(sig), [`SIGBUS:AR@${pid}:${hx(addr + 0x123)}:12`]);
    const again = touch(w, 'p', 'p.buf[1]');
    t.same(again.signals.map(sig), [`SIGBUS:AR@${pid}:${hx(addr)}:12`], '§21.27: every retry faults again');
    t.equal(invariantsOk(w), undefined);
  });

  t.test(`${v} row 5: early-kill process gets AO at injection`, async (t) => {
    const w = simple(v, {}, { sysctl: { 'vm.memory_failure_early_kill': 1 } });
    const pfn = pfnOf(w, 'p.buf[0]');
    const pid = w.procs.get('p')!.pid;
    const r = corruptPfn(w, 'p.buf[0]');
    t.same(r.log, [inj(pfn), mf(pfn, `Sending SIGBUS to victim:${pid} due to hardware memory corruption`), mf(pfn, 'recovery action for dirty LRU page: Recovered')]);
    t.same(r.signals.map(sig), [`SIGBUS:AO@${pid}:${hx(w.resolve('p.buf[0]').addr!)}:12`]);
  });

  t.test(`${v} row 8/9: clean disk page cache, unmapped and mapped`, async (t) => {
    const w = fileWorld(v, {}, { populate: 'read', shared: true, pages: 1, offset: 1 }, { sysctl: { 'vm.memory_failure_early_kill': 1 } });
    const p0 = pfnOf(w, 'file:f[0]');
    const r0 = corruptPfn(w, 'file:f[0]');
    t.same(r0.log, [inj(p0), mf(p0, 'recovery action for clean LRU page: Recovered')]);
    t.equal(w.files.get('f')!.cache.get(0), undefined, 'removed from the page cache');
    const p1 = pfnOf(w, 'p.m[0]');
    const r1 = corruptPfn(w, 'p.m[0]');
    t.same(r1.log, [inj(p1), mf(p1, 'corrupted page was clean: dropped without side effects'), mf(p1, 'recovery action for clean LRU page: Recovered')]);
    t.same(r1.signals, [], 'nobody signalled, even early kill');
    t.equal(w.procs.get('p')!.mm!.pte(w.resolve('p.m[0]').addr!), undefined, 'pte cleared, not poisoned');
    const a = touch(w, 'p', 'p.m[0]');
    t.same(a.signals, []);
    t.not(w.resolve('p.m[0]').pfn, p1, 'refaulted at a new pfn');
    t.equal(invariantsOk(w), undefined);
  });

  t.test(`${v} row 10/11: dirty disk page cache, mapped (early) and written with write()`, async (t) => {
    const w = fileWorld(v, { dirty: [0] }, { populate: 'write', shared: true, pages: 1, offset: 1 }, { sysctl: { 'vm.memory_failure_early_kill': 1 } });
    const p1 = pfnOf(w, 'p.m[0]');
    const pid = w.procs.get('p')!.pid;
    const r1 = corruptPfn(w, 'p.m[0]');
    t.same(r1.log, [inj(p1), mf(p1, `Sending SIGBUS to victim:${pid} due to hardware memory corruption`), mf(p1, 'recovery action for dirty LRU page: Recovered')]);
    t.same(r1.signals.map(sig), [`SIGBUS:AO@${pid}:${hx(w.resolve('p.m[0]').addr!)}:12`]);
    t.equal(w.procs.get('p')!.mm!.pte(w.resolve('p.m[0]').addr!)?.kind, 'hwpoison');
    const p0 = pfnOf(w, 'file:f[0]');
    const r0 = corruptPfn(w, 'file:f[0]');
    t.same(r0.log, [inj(p0), mf(p0, 'recovery action for dirty LRU page: Recovered')]);
    t.same(r0.signals, []);
    const task = w.task('p');
    const fd = w.fdFor('p', 'f');
    t.equal(w.k.fsync(task, fd), EIO, 'fsync reports EIO once');
    t.equal(w.k.fsync(task, fd), 0);
    t.equal(hc(w.k), 8);
  });

  t.test(`${v} row 12: page under writeback is waited for and then clean`, async (t) => {
    const w = fileWorld(v, { writeback: [2] });
    const pfn = pfnOf(w, 'file:f[2]');
    const r = corruptPfn(w, 'file:f[2]');
    t.same(r.log, [inj(pfn), mf(pfn, 'recovery action for clean LRU page: Recovered')]);
    t.equal(w.k.fsync(w.task('p'), w.fdFor('p', 'f')), 0, 'no mapping error');
  });

  t.test(`${v} row 13/14: block-device page cache (no error_remove_folio)`, async (t) => {
    const w = fileWorld(v, { device: 'vda', dirty: [0] }, undefined, {}, [{ name: 'vda', fs: 'bdev', major: 254, minor: 0 }]);
    const p0 = pfnOf(w, 'file:f[0]');
    const r0 = corruptPfn(w, 'file:f[0]');
    t.same(r0.log, [inj(p0), mf(p0, 'Failed to invalidate'), mf(p0, 'dirty LRU page still referenced by 1 users'), mf(p0, 'recovery action for dirty LRU page: Failed')]);
    t.equal(r0.ret, EBUSY);
    t.ok(w.files.get('f')!.cache.get(0)?.test(PG.hwpoison), 'stays in the page cache, poisoned');
    const p1 = pfnOf(w, 'file:f[1]');
    const r1 = corruptPfn(w, 'file:f[1]');
    t.same(r1.log, [inj(p1), mf(p1, 'recovery action for clean LRU page: Recovered')]);
    t.equal(r1.ret, 0);
  });

  t.test(`${v} row 15: shmem page kept poisoned in the file`, async (t) => {
    const w = world({
      machine: { kernel: v },
      workload: { devices: [{ name: 'shm0', fs: 'tmpfs' }], files: [{ name: 's', device: 'shm0', pages: 2 }], processes: [{ name: 'p', comm: 'victim', mappings: [{ name: 'm', kind: 'shmem', file: 's', pages: 2 }] }] },
    });
    const pfn = pfnOf(w, 'p.m[0]');
    const r = corruptPfn(w, 'p.m[0]');
    t.same(r.log, [inj(pfn), mf(pfn, 'recovery action for dirty LRU page: Recovered')]);
    const task = w.task('p');
    const fd = w.fdFor('p', 's');
    t.equal(w.k.pread(task, fd, 0, 1), EIO);
    t.equal(w.k.pwrite(task, fd, 0, 1), EIO);
    t.equal(w.k.fsync(task, fd), 0, 'tmpfs fsync stays 0 (K3)');
    t.equal(touch(w, 'p', 'p.m[0]').signals[0]?.code, 4, 'fault on the hwpoison entry: AR');
    const u = unpoison(w, pfn);
    t.equal(u.ret, EBUSY);
    t.same(u.log, [v === '6.1' ? `Unpoison: Someone grabs the hwpoison page ${hx(pfn)}` : `Unpoison: ${hx(pfn)}: someone grabs the hwpoison page`]);
  });

  t.test(`${v} row 16/17: clean and dirty swap-cache pages`, async (t) => {
    const w = simple(v, { 'swap-cache': [1, 2] });
    // swap.ts swapIn() does not set folio->index yet (reported); give the pages their linear index
    // so the anon rmap walk finds them, as the kernel's would.
    for (const i of [1, 2]) {
      const r = w.resolve(`p.buf[${i}]`);
      w.k.alloc.pfnToPage(r.pfn!)!.index = r.vma!.pgoffOf(r.addr!);
    }
    const pc = pfnOf(w, 'p.buf[1]');
    const rc = corruptPfn(w, 'p.buf[1]');
    t.same(rc.log, [inj(pc), mf(pc, 'keeping poisoned page in swap cache'), mf(pc, 'recovery action for clean swapcache page: Recovered')]);
    t.same(touch(w, 'p', 'p.buf[1]').signals, [], 'swaps in the good copy');
    t.equal(touch(w, 'p', 'p.buf[2]', true).ret, 0, 'dirty the second swap-cache page');
    const pd = pfnOf(w, 'p.buf[2]');
    const rd = corruptPfn(w, 'p.buf[2]');
    t.same(rd.log, [inj(pd), mf(pd, 'keeping poisoned page in swap cache'), mf(pd, 'recovery action for dirty swapcache page: Delayed')]);
    t.equal(rd.ret, 0);
    t.equal(w.procs.get('p')!.mm!.pte(w.resolve('p.buf[2]').addr!)?.kind, 'swap');
    t.equal(touch(w, 'p', 'p.buf[2]').signals[0]?.code, 4, 'next swap-in: AR');
    if (v !== '6.1') t.equal(w.k.mfStats(0).delayed, 1);
  });

  t.test(`${v} row 18: ramfs page (K4)`, async (t) => {
    const w = fileWorld(v, { device: 'r0' }, { populate: 'write', shared: true, pages: 1 }, {}, [{ name: 'r0', fs: 'ramfs' }]);
    const pfn = pfnOf(w, 'p.m[0]');
    const r = madvise(w, 'p', 'p.m[0]');
    const pid = w.procs.get('p')!.pid;
    const exp = [`Injecting memory failure for pfn ${hx(pfn)} at process virtual address ${hx(w.resolve('p.m[0]').addr!)}`];
    if (v !== '6.1') exp.push(mf(pfn, `Sending SIGBUS to victim:${pid} due to hardware memory corruption`));
    exp.push(mf(pfn, 'Failed to invalidate'), mf(pfn, 'dirty unevictable LRU page still referenced by 1 users'), mf(pfn, 'recovery action for dirty unevictable LRU page: Failed'));
    t.same(r.log, exp);
    t.equal(r.ret, EBUSY);
    t.same(r.signals.map((s) => s.code), v === '6.1' ? [] : [4], '6.12: the caller AR is delivered although madvise failed (§23.3.14)');
    t.equal(w.procs.get('p')!.mm?.pte(w.resolve('p.m[0]').addr!)?.kind, 'hwpoison', 'the ptes still become hwpoison entries');
  });

  t.test(`${v} row 19: mlocked pages come out as plain LRU rows; the knob reaches the other rows`, async (t) => {
    const w = simple(v, { mlock: true });
    const pfn = pfnOf(w, 'p.buf[0]');
    t.ok(kpf(w.k, pfn, 'mlocked'));
    t.same(corruptPfn(w, 'p.buf[0]').log.slice(1), [mf(pfn, 'recovery action for dirty LRU page: Recovered')]);
    mfTunables(w.k).mlockedState = 'unevictable';
    const p1 = pfnOf(w, 'p.buf[1]');
    t.same(corruptPfn(w, 'p.buf[1]').log.slice(1), [mf(p1, 'recovery action for dirty unevictable LRU page: Recovered')]);
    mfTunables(w.k).mlockedState = 'batched';
    const p2 = pfnOf(w, 'p.buf[2]');
    t.same(corruptPfn(w, 'p.buf[2]').log.slice(1), [mf(p2, 'recovery action for dirty mlocked LRU page: Recovered')]);
  });

  t.test(`${v} row 21: page truncated concurrently`, async (t) => {
    const w = fileWorld(v, {}, { populate: 'write', shared: true, pages: 1 });
    const pfn = pfnOf(w, 'p.m[0]');
    mfTunables(w.k).races.afterUnmap = (page) => {
      const inode = page.mapping as Inode;
      inode.cache.delete(page.index);
      page.refcount--;
      page.mapping = null;
    };
    const r = corruptPfn(w, 'p.m[0]');
    t.same(r.log.slice(1), [mf(pfn, 'recovery action for already truncated LRU page: Ignored')]);
    t.equal(r.ret, EBUSY);
  });

  t.test(`${v} row 22: slab and other kernel pages via corrupt-pfn`, async (t) => {
    const w = simple(v);
    for (const ref of ['slab[0]', 'kernel[0]', 'zero']) {
      const pfn = pfnOf(w, ref);
      const r = corruptPfn(w, ref);
      t.same(r.log, [inj(pfn), mf(pfn, 'unhandlable page.'), mf(pfn, `recovery action for ${v === '6.1' ? 'unknown page' : 'get hwpoison page'}: Ignored`)], ref);
      t.equal(r.ret, EBUSY);
      t.ok(kpf(w.k, pfn, 'hwpoison'), 'PG_hwpoison stays');
    }
    t.equal(hc(w.k), 12, '§21.16: kernel pages still count');
    if (v !== '6.1') t.equal(w.k.mfStats(0).ignored, 3);
  });

  t.test(`${v} row 23: zero page via madvise`, async (t) => {
    const w = simple(v, { populate: 'read' });
    const z = w.k.zeroPage.pfn;
    const addr = w.resolve('p.buf[0]').addr!;
    const r = madvise(w, 'p', 'p.buf[0]');
    t.same(r.log, [`Injecting memory failure for pfn ${hx(z)} at process virtual address ${hx(addr)}`, mf(z, 'recovery action for reserved kernel page: Ignored')]);
    t.equal(r.ret, EBUSY);
    t.same(r.signals, []);
    t.equal(touch(w, 'p', 'p.buf[1]').ret, 0, 'still readable (§21.14)');
    t.equal(hc(w.k), 4);
    t.equal(invariantsOk(w), undefined);
  });

  t.test(`${v} row 24: non-LRU page mapped to user space via madvise`, async (t) => {
    const w = simple(v);
    const page = w.k.alloc.pfnToPage(pfnOf(w, 'p.buf[0]'))!;
    page.clear(PG.lru);
    page.kind = 'kernel';
    page.mapping = null;
    const r = madvise(w, 'p', 'p.buf[0]');
    t.same(r.log.slice(1), [mf(page.pfn, 'Unknown page state'), mf(page.pfn, `recovery action for unknown page: ${v === '6.1' ? 'Failed' : 'Ignored'}`)]);
    t.equal(r.ret, EBUSY);
  });

  t.test(`${v} row 25: already poisoned, no AR`, async (t) => {
    const w = simple(v);
    const pfn = pfnOf(w, 'p.buf[0]');
    corruptPfn(w, 'p.buf[0]');
    const r = corruptPfn(w, pfn);
    t.same(r.log, [inj(pfn), v === '6.1' ? mf(pfn, 'already hardware poisoned') : mf(pfn, 'recovery action for already poisoned page: Failed')]);
    t.equal(r.ret, EHWPOISON);
    t.equal(hc(w.k), 4, 'not counted');
    const h = hardOffline(w, pfn);
    t.equal(h.ret, EHWPOISON, 'hard_offline_page repeat: EHWPOISON (§23.3.19)');
  });

  t.test(`${v} row 26: already poisoned with MF_ACTION_REQUIRED (kill_accessing_process)`, async (t) => {
    const w = simple(v, {}, {}, {});
    const pfn = pfnOf(w, 'p.buf[2]');
    const page = w.k.alloc.pfnToPage(pfn)!;
    page.pinned = 1; // unmap fails, the page stays mapped
    corruptPfn(w, pfn);
    page.pinned = 0;
    const task = w.task('p');
    const addr = w.resolve('p.buf[2]').addr!;
    const r = step(w, () => w.k.syscall(task, () => memoryFailure(w.k, pfn, MF_ACTION_REQUIRED), 0));
    const sending = mf(pfn, `Sending SIGBUS to victim:${task.tid} due to hardware memory corruption`);
    t.same(r.log, v === '6.1' ? [mf(pfn, 'already hardware poisoned'), sending] : [sending, mf(pfn, 'recovery action for already poisoned page: Failed')], 'K1 order');
    t.equal(r.ret, EHWPOISON);
    t.same(r.signals.map(sig), [`SIGBUS:AR@${task.tid}:${hx(addr)}:12`]);
    // not mapped by current: 0, nothing sent
    const w2 = simple(v);
    const q = pfnOf(w2, 'free[0]');
    corruptPfn(w2, q);
    const r2 = step(w2, () => w2.k.syscall(w2.task('p'), () => memoryFailure(w2.k, q, MF_ACTION_REQUIRED), 0));
    t.equal(r2.ret, 0);
    t.same(r2.signals, []);
  });

  t.test(`${v} row 27: filter rejects inside memory_failure (KPF_HWPOISON with value 0)`, async (t) => {
    const w = simple(v);
    const pfn = pfnOf(w, 'p.buf[0]');
    t.equal(w.k.filter.enable, 0);
    step(w, () => 0);
    for (const [f, val] of [['corrupt-filter-flags-mask', String(1n << 19n)], ['corrupt-filter-flags-value', '0'], ['corrupt-filter-enable', '1']] as const) {
      t.equal(step(w, () => w.k.syscall(null, () => 0, 0)).ret, 0);
      const { writeHwpoisonDebugfs } = await import('../../tsrc/kernel/mm/hwpoison-inject.js');
      t.equal(writeHwpoisonDebugfs(w.k, f, val), 0);
    }
    const r = corruptPfn(w, 'p.buf[0]');
    t.same(r.log, [inj(pfn)], 'only the injector line');
    t.equal(r.ret, 0);
    t.notOk(kpf(w.k, pfn, 'hwpoison'), 'PG_hwpoison cleared again');
    t.equal(hc(w.k), 0);
  });

  t.test(`${v} row 28: outside RAM`, async (t) => {
    const w = simple(v, {}, { memory: '4G', holes: [{ start: '3G', size: '256M' }] });
    const pfn = (3 * 2 ** 30) / 4096 + 5;
    const r = hardOffline(w, pfn, 0x123);
    t.same(r.log, [mf(pfn, 'memory outside kernel control')]);
    t.equal(r.ret, ENXIO);
    const c = corruptPfn(w, (4 * 2 ** 30) / 4096 + 1);
    t.same(c.log, [], 'corrupt-pfn beyond the last pfn: silent');
    t.equal(c.ret, ENXIO);
  });

  t.test(`${v} row 30: unmap failure (pinned anon page), early-kill process`, async (t) => {
    const w = simple(v, {}, { sysctl: { 'vm.memory_failure_early_kill': 1 } });
    const pfn = pfnOf(w, 'p.buf[0]');
    w.k.alloc.pfnToPage(pfn)!.pinned = 1;
    const pid = w.procs.get('p')!.pid;
    const r = corruptPfn(w, 'p.buf[0]');
    if (v === '6.1') {
      t.same(r.log.slice(1), [mf(pfn, 'failed to unmap page (mapcount=1)'), mf(pfn, `forcibly killing victim:${pid} because of failure to unmap corrupted page`), mf(pfn, 'recovery action for unmapping failed page: Ignored')]);
      t.same(r.signals.map(sig), [`SIGKILL:128@${pid}:-:-:fatal`]);
      t.notOk(w.procs.get('p')!.alive);
    } else {
      t.same(r.log.slice(1), [mf(pfn, 'failed to unmap page (folio mapcount=1)'), mf(pfn, `Sending SIGBUS to victim:${pid} due to hardware memory corruption`), mf(pfn, 'recovery action for unmapping failed page: Failed')]);
      t.same(r.signals.map(sig), [`SIGBUS:AO@${pid}:${hx(w.resolve('p.buf[0]').addr!)}:12`]);
    }
    t.equal(r.ret, EBUSY);
    t.equal(invariantsOk(w), undefined);
  });

  t.test(`${v} row 31: a to-kill entry without a user address gets SIGKILL`, async (t) => {
    const w = simple(v);
    const task = w.task('p');
    const r = step(w, () => (killProcs(w.k, [{ task, addr: 0, addrValid: false, sizeShift: 12 }], true, false, 0x1234, 0), 0));
    t.same(r.log, [mf(0x1234, `forcibly killing victim:${task.tid} because of failure to unmap corrupted page`)]);
    t.same(r.signals.map(sig), [`SIGKILL:128@${task.tid}:-:-:fatal`]);
    t.equal(invariantsOk(w), undefined, 'the killed process is torn down');
  });

  t.test(`${v} KSM page (row 20 / §23.3.15)`, async (t) => {
    const w = simple(v);
    const pfn = pfnOf(w, 'p.buf[0]');
    w.k.alloc.pfnToPage(pfn)!.ksm = true;
    const r = corruptPfn(w, 'p.buf[0]');
    if (v === '6.1') {
      t.same(r.log.slice(1), [mf(pfn, "can't handle KSM pages."), mf(pfn, 'recovery action for unmapping failed page: Ignored')]);
      t.equal(r.ret, EBUSY);
      t.equal(touch(w, 'p', 'p.buf[0]').ret, 0, 'still mapped and readable');
    } else {
      t.same(r.log.slice(1), [mf(pfn, 'recovery action for dirty LRU page: Recovered')]);
    }
    t.equal(hc(w.k), 4);
  });
}

t.test('6.11: already poisoned is logged twice and counted', async (t) => {
  const w = simple('6.11');
  const pfn = pfnOf(w, 'p.buf[0]');
  corruptPfn(w, 'p.buf[0]');
  const r = corruptPfn(w, pfn);
  t.same(r.log, [inj(pfn), mf(pfn, 'already hardware poisoned'), mf(pfn, 'recovery action for already poisoned: Failed')]);
  t.equal(r.ret, EHWPOISON);
  t.equal(hc(w.k), 8);
  t.equal(invariantsOk(w), undefined);
});


for (const v of ['6.1', '6.12']) {
  t.test(`${v} rows 2-4: hugetlb pages`, async (t) => {
    const w = world({ machine: { kernel: v, hugepages: { '2M': 4 }, sysctl: { 'vm.memory_failure_early_kill': 1 } }, workload: { processes: [{ name: 'p', comm: 'victim', mappings: [{ name: 'h', kind: 'hugetlb', pages: 512 }] }] } });
    const head = pfnOf(w, 'p.h[0]');
    const raw = head + 3;
    const pid = w.procs.get('p')!.pid;
    const r = corruptPfn(w, raw);
    t.same(r.log.at(-1), mf(raw, 'recovery action for huge page: Recovered'));
    t.ok(r.log.includes(mf(raw, `Sending SIGBUS to victim:${pid} due to hardware memory corruption`)));
    const base = w.resolve('p.h[0]').addr!;
    t.same(r.signals.map(sig), [`SIGBUS:AO@${pid}:${hx(v === '6.1' ? base : base + 3 * 4096)}:21`], 'K7');
    t.equal(hc(w.k), 4, '4 kB, not 2 MiB');
    const a = touch(w, 'p', 'p.h[100]');
    t.equal(a.signals[0]?.lsb, 21);
  });

  t.test(`${v} rows 6-7: THP split / unsplittable THP`, async (t) => {
    const w = world({ machine: { kernel: v, sysctl: { 'vm.memory_failure_early_kill': 1 } }, workload: { processes: [{ name: 'p', comm: 'victim', mappings: [{ name: 't', kind: 'anon', pages: 512, thp: true }] }] } });
    const pfn = pfnOf(w, 'p.t[5]');
    const r = corruptPfn(w, pfn);
    t.same(r.log.at(-1), mf(pfn, 'recovery action for dirty LRU page: Recovered'));
    t.same(r.signals.map((s) => s.lsb), [12]);
    const p2 = pfnOf(w, 'p.t[7]');
    t.not(w.k.alloc.pfnToPage(p2)!.folio().order, 9, 'split');
  });
}
