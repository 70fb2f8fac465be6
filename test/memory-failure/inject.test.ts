// kernel-model.md §13–14, §17, §10, §9, §12: injection interfaces (corrupt-pfn parsing, every
// corrupt-filter-* file bit by bit, madvise checks, sysfs files, the queue), unpoison and soft offline.
import t from 'tap';
import { kstrtoullRet, writeHwpoisonDebugfs, readHwpoisonDebugfs, unloadHwpoisonInject } from '../../tsrc/kernel/mm/hwpoison-inject.js';
import { memoryFailure, memoryFailureQueue, mfTunables } from '../../tsrc/kernel/mm/memory-failure.js';
import { KPF, readKpageflags } from '../../tsrc/kernel/fs/proc/page.js';
import { corruptPfn, debugfs, hardOffline, hc, hx, invariantsOk, kpf, madvise, mf, pfnOf, simple, softOffline, step, touch, unpoison, world } from './helpers.js';

const EINVAL = -22, EPERM = -1, EBUSY = -16, EFAULT = -14, EHWPOISON = -133, EOPNOTSUPP = -95, EIO = -5, ENXIO = -6, EACCES = -13;

t.test('kstrtoull(s, 0)', async (t) => {
  t.equal(kstrtoullRet('123'), 123n);
  t.equal(kstrtoullRet('0x1F'), 31n);
  t.equal(kstrtoullRet('017'), 15n, 'leading 0 is octal');
  t.equal(kstrtoullRet('0'), 0n);
  t.equal(kstrtoullRet('+5\n'), 5n);
  t.equal(kstrtoullRet('08'), EINVAL);
  t.equal(kstrtoullRet('-1'), EINVAL);
  t.equal(kstrtoullRet(' 1'), EINVAL);
  t.equal(kstrtoullRet('abc'), EINVAL);
  t.equal(kstrtoullRet('18446744073709551616'), -34, 'ERANGE');
});

for (const v of ['6.1', '6.12']) {
  t.test(`${v}: debugfs files`, async (t) => {
    const w = simple(v);
    t.equal(readHwpoisonDebugfs(w.k, 'corrupt-filter-dev-major'), '4294967295');
    t.equal(readHwpoisonDebugfs(w.k, 'corrupt-filter-enable'), '0');
    t.equal(readHwpoisonDebugfs(w.k, 'corrupt-pfn'), EACCES);
    t.equal(debugfs(w, 'corrupt-filter-dev-major', '-1').ret, EINVAL, '-1 is rejected, old value kept');
    t.equal(w.k.filter.devMajor, 0xffffffff);
    t.equal(debugfs(w, 'corrupt-filter-dev-major', '4294967296').ret, 0);
    t.equal(w.k.filter.devMajor, 0, 'u32 truncation: 2^32 stores 0, not the wildcard');
    t.equal(debugfs(w, 'corrupt-filter-dev-major', '0xffffffff').ret, 0);
    t.equal(debugfs(w, 'corrupt-pfn', 'abc').ret, EINVAL);
    const pfn = pfnOf(w, 'p.buf[0]');
    const r = debugfs(w, 'corrupt-pfn', '0' + pfn.toString(8));
    t.equal(r.log[0], `Injecting memory failure at pfn ${hx(pfn)}`, 'octal pfn');
    w.k.capSysAdmin = false;
    t.equal(debugfs(w, 'corrupt-pfn', '1').ret, EACCES, 'non-root: open fails (K11)');
    w.k.capSysAdmin = true;
    unloadHwpoisonInject(w.k);
    t.equal(w.k.filter.enable, 0);
  });

  t.test(`${v}: filter enabled: pre-check skips non-LRU pages, passes free pages`, async (t) => {
    const w = simple(v);
    debugfs(w, 'corrupt-filter-enable', '1');
    const slab = pfnOf(w, 'slab[0]');
    const r = corruptPfn(w, slab);
    t.same(r.log, []);
    t.equal(r.ret, 0);
    t.notOk(kpf(w.k, slab, 'hwpoison'));
    const free = pfnOf(w, 'free[2]');
    t.same(corruptPfn(w, free).log.at(-1), mf(free, 'recovery action for free buddy page: Recovered'));
  });

  t.test(`${v}: flags filter, bit by bit (KPF bit space, HWPOISON/LOCKED set inside memory_failure)`, async (t) => {
    for (const [name, bit] of Object.entries(KPF)) {
      for (const value of [0, 1]) {
        const w = simple(v, { pages: 1 });
        const pfn = pfnOf(w, 'p.buf[0]');
        const before = readKpageflags(w.k, pfn);
        const mask = 1n << BigInt(bit);
        debugfs(w, 'corrupt-filter-flags-mask', mask.toString());
        debugfs(w, 'corrupt-filter-flags-value', value ? mask.toString() : '0');
        debugfs(w, 'corrupt-filter-enable', '1');
        // In memory_failure the raw page also has PG_hwpoison and PG_locked.
        const inside = before | (1n << BigInt(KPF.hwpoison)) | (1n << BigInt(KPF.locked));
        const preOk = (before & mask) === (value ? mask : 0n);
        const inOk = (inside & mask) === (value ? mask : 0n);
        const r = corruptPfn(w, pfn);
        t.equal(r.ret, 0, `${name}=${value}`);
        t.equal(kpf(w.k, pfn, 'hwpoison'), preOk && inOk, `${name}=${value}: poisoned iff both checks pass`);
        t.equal(r.log.length, preOk ? (inOk ? 2 : 1) : 0, `${name}=${value}: log`);
      }
    }
  });

  t.test(`${v}: dev and memcg filters`, async (t) => {
    const w = world({
      machine: { kernel: v },
      workload: {
        devices: [{ name: 'sdb', fs: 'xfs', major: 8, minor: 16 }],
        memcgs: [{ name: 'test', ino: 4242 }],
        files: [{ name: 'f', device: 'sdb', pages: 2 }],
        processes: [{ name: 'p', comm: 'p', memcg: 'test', mappings: [{ name: 'buf', kind: 'anon', pages: 2 }] }],
      },
    });
    debugfs(w, 'corrupt-filter-enable', '1');
    debugfs(w, 'corrupt-filter-dev-major', '8');
    t.same(corruptPfn(w, 'p.buf[0]').log, [], 'anon rejected by a dev filter');
    debugfs(w, 'corrupt-filter-dev-minor', '17');
    t.same(corruptPfn(w, 'file:f[0]').log, [], 'wrong minor');
    debugfs(w, 'corrupt-filter-dev-minor', '16');
    t.equal(corruptPfn(w, 'file:f[0]').log.length, 2, 'matching device');
    debugfs(w, 'corrupt-filter-dev-major', '4294967295');
    debugfs(w, 'corrupt-filter-dev-minor', '4294967295');
    debugfs(w, 'corrupt-filter-memcg', '4242');
    t.equal(corruptPfn(w, 'p.buf[1]').log.length, 2, 'page of the memcg');
    const free = pfnOf(w, 'free[0]');
    t.same(corruptPfn(w, free).log, [], 'free page: ino 0, rejected');
  });

  t.test(`${v}: madvise argument checks and loop`, async (t) => {
    const w = simple(v, { pages: 4 });
    t.equal(madvise(w, 'p', 'p.buf[0]', 'hwpoison', 4096, 1).ret, EINVAL, 'unaligned');
    t.equal(madvise(w, 'p', 'p.buf[0]', 'hwpoison', 0).ret, 0, 'len 0');
    w.k.capSysAdmin = false;
    t.equal(madvise(w, 'p', 'p.buf[0]', 'hwpoison', 4096, 1).ret, EINVAL, 'alignment before the capability');
    t.equal(madvise(w, 'p', 'p.buf[0]').ret, EPERM);
    t.equal(madvise(w, 'p', 'p.buf[0]', 'soft-offline').ret, EPERM);
    w.k.capSysAdmin = true;
    const r = madvise(w, 'p', 'p.buf[0]', 'hwpoison', 3 * 4096 - 100);
    t.equal(r.log.filter((l) => l.startsWith('Injecting')).length, 3, 'three pages');
    t.equal(hc(w.k), 12);
    t.equal(madvise(w, 'p', 'p.buf[0]').ret, EFAULT, 'hwpoison entry: GUP fails, nothing logged');
    t.equal(madvise(w, 'p', 'p.buf[10]').ret, EFAULT, 'unmapped address');
    t.equal(invariantsOk(w), undefined);
  });

  t.test(`${v}: madvise stops at the first error`, async (t) => {
    const w = simple(v, { pages: 3, populate: 'read' });
    const r = madvise(w, 'p', 'p.buf[0]', 'hwpoison', 3 * 4096);
    t.equal(r.ret, EBUSY, 'zero page: reserved kernel page Ignored');
    t.equal(r.log.filter((l) => l.startsWith('Injecting')).length, 1);
  });

  t.test(`${v}: sysfs hard_offline_page / soft_offline_page`, async (t) => {
    const w = simple(v);
    const pfn = pfnOf(w, 'p.buf[0]');
    const r = hardOffline(w, pfn, 0x7ff);
    t.same(r.log, [mf(pfn, 'recovery action for dirty LRU page: Recovered')], 'no Injecting line; offset ignored');
    t.same(r.signals, [], 'never AR');
    const s = softOffline(w, pfn);
    t.equal(s.ret, 0);
    t.same(s.log, [v === '6.1' ? `soft_offline_page: ${hx(pfn)} page already poisoned` : `Soft offline: ${hx(pfn)}: page already poisoned`]);
    w.k.capSysAdmin = false;
    t.equal(hardOffline(w, pfn).ret, EPERM);
  });

  t.test(`${v}: vm.memory_failure_recovery=0 panics on every memory_failure, not soft offline`, async (t) => {
    const w = simple(v, {}, { sysctl: { 'vm.memory_failure_recovery': 0 } });
    const s = softOffline(w, 'p.buf[1]');
    t.equal(s.ret, 0);
    const pfn = pfnOf(w, 'p.buf[0]');
    const r = madvise(w, 'p', 'p.buf[0]');
    t.same(r.log, [`Injecting memory failure for pfn ${hx(pfn)} at process virtual address ${hx(w.resolve('p.buf[0]').addr!)}`, `Kernel panic - not syncing: Memory failure on page ${pfn.toString(16)}`]);
    t.ok(w.k.panicked);
  });

  t.test(`${v}: memory_failure_queue overflows at 16`, async (t) => {
    const w = simple(v);
    const base = pfnOf(w, 'free[0]');
    const r = step(w, () => {
      for (let i = 0; i < 17; i++) memoryFailureQueue(w.k, base + i, 0, 0);
      return 0;
    });
    t.equal(r.log[0], `Memory failure: buffer overflow when queuing memory failure at ${hx(base + 16)}`);
    t.equal(r.log.filter((l) => l.includes('free buddy page: Recovered')).length, 16);
    t.ok(w.k.hwMemoryFailure, 'flags 0: hardware-originated');
  });

  t.test(`${v}: unpoison refusals and successes (§10)`, async (t) => {
    const w = simple(v);
    const fmt = (pfn: number, nw: string, old: string): string => (v === '6.1' ? `Unpoison: ${old} ${hx(pfn)}` : `Unpoison: ${hx(pfn)}: ${nw}`);
    const a = pfnOf(w, 'p.buf[0]');
    let r = unpoison(w, a);
    t.equal(r.ret, EBUSY);
    t.same(r.log, [fmt(a, 'page was already unpoisoned', 'Page was already unpoisoned')]);
    corruptPfn(w, 'p.buf[0]');
    r = unpoison(w, a);
    t.equal(r.ret, 0);
    t.same(r.log, [fmt(a, 'software-unpoisoned page', 'Software-unpoisoned page')]);
    t.equal(hc(w.k), 0);
    const f = pfnOf(w, 'free[1]');
    corruptPfn(w, f);
    t.equal(unpoison(w, f).ret, 0, 'taken-off free page back to buddy');
    t.ok(kpf(w.k, f, 'buddy'));
    const slab = pfnOf(w, 'slab[0]');
    corruptPfn(w, slab);
    r = unpoison(w, slab);
    t.equal(r.ret, EBUSY);
    t.same(r.log, [], 'slab: silent');
    // still mapped (unmap failed)
    const b = pfnOf(w, 'p.buf[1]');
    w.k.alloc.pfnToPage(b)!.pinned = 1;
    corruptPfn(w, b);
    r = unpoison(w, b);
    t.equal(r.ret, EBUSY);
    t.same(r.log, [fmt(b, 'someone grabs the hwpoison page', 'Someone grabs the hwpoison page')]);
    t.equal(unpoison(w, 0x7fffffff).ret, EIO, 'not RAM');
    // rate limit: 10 lines per 5 s
    w.k.now += 6;
    const n = w.k.log.mark();
    for (let i = 0; i < 15; i++) unpoison(w, a);
    t.equal(w.k.log.since(n).length, 10);
    w.k.now += 6;
    t.equal(unpoison(w, a).log.length, 1);
    // hw_memory_failure is sticky
    step(w, () => w.k.syscall(null, () => memoryFailure(w.k, pfnOf(w, 'free[5]'), 0), 0));
    w.k.now += 6;
    r = unpoison(w, f);
    t.equal(r.ret, EOPNOTSUPP);
    t.same(r.log, [fmt(f, 'disabled after HW memory failure', 'Disabled after HW memory failure')]);
    t.equal(invariantsOk(w), undefined);
  });

  t.test(`${v}: soft offline per page type (§9)`, async (t) => {
    const w = world({ machine: { kernel: v }, workload: { files: [{ name: 'f', pages: 2 }], processes: [{ name: 'p', comm: 'p', mappings: [{ name: 'buf', kind: 'anon', pages: 2 }] }] } });
    const anon = pfnOf(w, 'p.buf[0]');
    let r = softOffline(w, anon);
    t.equal(r.ret, 0);
    t.same(r.log, []);
    t.not(w.resolve('p.buf[0]').pfn, anon, 'migrated');
    t.same(touch(w, 'p', 'p.buf[0]').signals, [], 'no signal, data intact');
    t.ok(kpf(w.k, anon, 'hwpoison'));
    const fc = pfnOf(w, 'file:f[0]');
    r = softOffline(w, fc);
    t.same(r.log, [v === '6.1' ? `soft_offline: ${hx(fc)}: invalidated` : `Soft offline: ${hx(fc)}: invalidated`]);
    const free = pfnOf(w, 'free[0]');
    t.equal(softOffline(w, free).ret, 0);
    const slab = pfnOf(w, 'slab[0]');
    r = softOffline(w, slab);
    t.equal(r.ret, EIO);
    t.same(r.log, [mf(slab, 'unhandlable page.')]);
    t.equal(softOffline(w, 0x7fffffff).ret, ENXIO);
    t.equal(hc(w.k), 12, 'HC +4 per soft-offlined page, no mf_stats');
    t.equal(w.k.mfStats(0).total, 0);
    t.notOk(w.k.hwMemoryFailure);
    t.equal(unpoison(w, anon).ret, 0, 'soft-offlined pages can be unpoisoned');
    const m = madvise(w, 'p', 'p.buf[1]', 'soft-offline');
    t.equal(m.ret, 0);
    t.match(m.log[0], new RegExp(`^Soft offlining pfn 0x[0-9a-f]+ at process virtual address ${hx(w.resolve('p.buf[1]').addr!)}$`));
    t.equal(invariantsOk(w), undefined);
  });
}

t.test('vm.enable_soft_offline per profile', async (t) => {
  t.equal(simple('6.1').k.writeSysctl('vm.enable_soft_offline', 0), -2, 'absent on 6.1');
  const w = simple('6.12');
  t.equal(w.k.writeSysctl('vm.enable_soft_offline', 3), EINVAL, '0..1 on 6.12');
  t.equal(w.k.writeSysctl('vm.enable_soft_offline', 0), 0);
  let r = softOffline(w, 'p.buf[0]');
  t.equal(r.ret, EOPNOTSUPP);
  t.same(r.log, ['Soft offline: disabled by /proc/sys/vm/enable_soft_offline']);
  r = madvise(w, 'p', 'p.buf[0]', 'soft-offline');
  t.equal(r.ret, EOPNOTSUPP);
  t.equal(r.log.length, 1, 'pr_info_once');
  const w18 = simple('6.18');
  t.equal(w18.k.writeSysctl('vm.enable_soft_offline', 3), 0, '0..3 on 6.18');
  t.equal(softOffline(w18, 'p.buf[0]').ret, 0, 'bit 1 only skips hugetlb');
  t.equal(w18.k.writeSysctl('vm.enable_soft_offline', 2), 0);
  t.equal(softOffline(w18, 'p.buf[1]').ret, EOPNOTSUPP, '2 = disabled');
});

t.test('MADV_SOFT_OFFLINE filtered: EOPNOTSUPP (K12); MADV_HWPOISON filtered: 0', async (t) => {
  for (const v of ['6.1', '6.12']) {
    const w = simple(v);
    debugfs(w, 'corrupt-filter-memcg', '999');
    debugfs(w, 'corrupt-filter-enable', '1');
    t.equal(madvise(w, 'p', 'p.buf[0]', 'soft-offline').ret, EOPNOTSUPP);
    t.equal(madvise(w, 'p', 'p.buf[1]', 'hwpoison').ret, 0);
    t.notOk(kpf(w.k, pfnOf(w, 'p.buf[1]'), 'hwpoison'));
  }
});

t.test('buddy races (§21.3)', async (t) => {
  const w = simple('6.12');
  const pfn = pfnOf(w, 'free[0]');
  mfTunables(w.k).races.beforeTakeOffBuddy = (page) => {
    mfTunables(w.k).races.beforeTakeOffBuddy = undefined;
    page.clear(1 << 18);
    page.refcount = 1;
    page.kind = 'kernel';
  };
  let r = corruptPfn(w, pfn);
  t.same(r.log.slice(1), [mf(pfn, 'unhandlable page.'), mf(pfn, 'recovery action for get hwpoison page: Ignored')], 'retried once as an in-use page');
  const q = pfnOf(w, 'free[1]');
  mfTunables(w.k).races.afterGetFreePage = (page) => {
    mfTunables(w.k).races.afterGetFreePage = undefined;
    page.clear(1 << 18);
  };
  r = corruptPfn(w, q);
  t.same(r.log.slice(1), [mf(q, 'recovery action for high-order kernel page: Ignored')]);
  t.equal(r.ret, EBUSY);
  t.equal(EHWPOISON, -133);
});
