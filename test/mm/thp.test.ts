// Transparent huge pages: 2 MiB folios at fault time, split on memory_failure (only the raw
// 4 KiB page is lost, mce-test ttranshuge), unsplittable (pinned / huge zero page) THPs per
// profile, AnonHugePages (kernel-model.md §5 rows 6–7, §7, §8.3).
import t from 'tap';
import '../../runner/targets/sim/builtin-extensions.js';
import { corruptPfn, hc, kpf, madvise, mf, simple, softOffline, touch, invariantsOk, sig } from '../memory-failure/helpers.js';
import { pinUserPage } from '../../tsrc/kernel/mm/gup.js';

for (const kernel of ['6.1', '6.12']) {
  t.test(`${kernel}: THP fault, split on memory_failure, neighbours intact`, async (t) => {
    const w = simple(kernel, { kind: 'anon', thp: true, pages: 1024 }, { sysctl: { 'vm.memory_failure_early_kill': 1 } });
    const k = w.k;
    t.equal(k.meminfo().AnonHugePages, 4096, 'two THPs');
    const head = w.pfnOf('p.buf[0]');
    t.equal(head % 512, 0);
    t.equal(w.pfnOf('p.buf[17]'), head + 17, 'one folio behind the 2 MiB');
    t.ok(kpf(k, head + 17, 'thp') && kpf(k, head + 17, 'compound_tail'));
    t.equal(kpf(k, head + 17, 'lru'), kernel === '6.12', 'tail shows folio flags only on 6.12 (K6)');
    t.equal(kpf(k, head + 17, 'ksm'), kernel === '6.12', '6.12 KPF_KSM bug on every anon page');
    const raw = head + 17;
    const pid = w.procs.get('p')!.pid;
    const r = corruptPfn(w, raw);
    t.equal(r.ret, 0);
    t.same(r.log.slice(1), [mf(raw, `Sending SIGBUS to victim:${pid} due to hardware memory corruption`), mf(raw, 'recovery action for dirty LRU page: Recovered')]);
    t.same(r.signals.map((s) => s.lsb), [12], 'split first: lsb 12');
    t.equal(k.meminfo().AnonHugePages, 2048, 'the split THP no longer counts');
    t.notOk(kpf(k, head, 'thp'), 'subpages are base pages now');
    t.equal(touch(w, 'p', 'p.buf[17]').signals[0]?.code, 4, 'the raw page is lost');
    for (const i of [0, 16, 18, 511]) {
      const a = k.access(w.task('p'), w.resolve(`p.buf[${i}]`).addr!, false);
      t.equal(a.kind === 'ok' ? a.data : -1, w.written.get(`p.buf[${i}]`), `page ${i} keeps its data`);
    }
    t.equal(hc(k), 4);
    t.equal(invariantsOk(w), undefined);
  });

  t.test(`${kernel}: a pinned THP cannot be split (row 7)`, async (t) => {
    const w = simple(kernel, { kind: 'anon', thp: true, pages: 512 }, {}, { 'mce-kill': 'early' });
    const k = w.k;
    const head = w.pfnOf('p.buf[0]');
    k.syscall(w.task('p'), () => pinUserPage(k, w.task('p'), w.resolve('p.buf[0]').addr!), 0);
    const r = corruptPfn(w, head + 3);
    if (kernel === '6.12') {
      t.equal(r.ret, -133);
      t.same(r.log.slice(-1), [mf(head + 3, 'recovery action for unsplit thp: Failed')]);
      t.same(r.signals.map((s) => [s.code, s.lsb]), [[5, 21]], 'AO with lsb 21');
      t.ok(kpf(k, head + 3, 'hwpoison'));
    } else {
      t.equal(r.ret, -16);
      t.same(r.log.slice(-1), [mf(head + 3, 'recovery action for unsplit thp: Ignored')]);
      t.same(r.signals, []);
    }
    t.ok(kpf(k, head, 'thp'), 'still a THP, still mapped');
    t.equal(touch(w, 'p', 'p.buf[4]').signals.length, 0);
  });

  t.test(`${kernel}: read faults map the huge zero page`, async (t) => {
    const w = simple(kernel, { kind: 'anon', thp: true, pages: 512, populate: 'read' });
    const k = w.k;
    const pfn = w.pfnOf('p.buf[5]');
    t.ok(kpf(k, pfn, 'zero_page') && kpf(k, pfn, 'thp'));
    t.equal(k.meminfo().AnonHugePages, 0);
    // Writing one page COWs it away from the huge zero page.
    const a = touch(w, 'p', 'p.buf[5]', true);
    t.equal(a.ret, 0);
    t.not(w.pfnOf('p.buf[5]'), pfn);
    t.equal(w.pfnOf('p.buf[6]'), pfn + 1);
    if (kernel === '6.12') {
      // madvise on the huge zero page: cannot be split -> unsplit thp: Failed, nobody signalled.
      const r = madvise(w, 'p', 'p.buf[6]');
      t.same(r.log.slice(-1), [mf(pfn + 1, 'recovery action for unsplit thp: Failed')]);
      t.same(r.signals.map(sig), []);
    }
  });

  t.test(`${kernel}: soft offline of a THP splits it and migrates one page`, async (t) => {
    const w = simple(kernel, { kind: 'anon', thp: true, pages: 512 });
    const k = w.k;
    const head = w.pfnOf('p.buf[0]');
    const r = softOffline(w, head + 9);
    t.equal(r.ret, 0);
    t.not(w.pfnOf('p.buf[9]'), head + 9);
    t.equal(w.pfnOf('p.buf[10]'), head + 10);
    t.ok(kpf(k, head + 9, 'hwpoison'));
    const a = k.access(w.task('p'), w.resolve('p.buf[9]').addr!, false);
    t.equal(a.kind === 'ok' ? a.data : -1, w.written.get('p.buf[9]'));
    t.equal(invariantsOk(w), undefined);
  });
}

t.test('fork of a THP: COW-shared, both processes found on poison', async (t) => {
  const w = simple('6.12', { kind: 'anon', thp: true, pages: 512 }, { sysctl: { 'vm.memory_failure_early_kill': 1 } });
  const k = w.k;
  const child = k.fork(w.procs.get('p')!, 'c');
  w.procs.set('c', child);
  const head = w.pfnOf('p.buf[0]');
  t.equal(w.pfnOf('c.buf[0]'), head);
  const r = corruptPfn(w, head + 2);
  t.equal(r.signals.length, 2);
  t.same(r.log.slice(-1), [mf(head + 2, 'recovery action for dirty LRU page: Recovered')]);
  t.equal(invariantsOk(w), undefined);
});
