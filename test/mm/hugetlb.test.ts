// hugetlb through the model's syscalls: pools, faults, memory_failure's hugetlb branch, unpoison,
// soft offline, hugetlbfs reads (kernel-model.md §5 rows 2–4, §6, §18, §23 K5/K7/K8).
import t from 'tap';
import '../../runner/targets/sim/builtin-extensions.js';
import { corruptPfn, hc, kpf, madvise, mf, simple, softOffline, touch, unpoison, world, invariantsOk, sig } from '../memory-failure/helpers.js';
import { hugetlbSysfs } from '../../tsrc/kernel/mm/hugetlb.js';
import { pagemapKind } from '../../tsrc/kernel/mm/pagemap.js';

const HP = { hugepages: { '2M': 4 } };

for (const kernel of ['6.1', '6.12']) {
  t.test(`${kernel}: pool accounting and a free huge page`, async (t) => {
    const w = simple(kernel, { kind: 'hugetlb', pages: 512 }, HP);
    const k = w.k;
    t.equal(k.meminfo().HugePages_Total, 4);
    t.equal(k.meminfo().HugePages_Free, 3, 'one huge page faulted in by the mapping');
    const head = w.pfnOf('p.buf[0]');
    t.equal(head % 512, 0, 'naturally aligned');
    t.ok(kpf(k, head, 'huge') && kpf(k, head, 'compound_head'));
    t.ok(kpf(k, head + 7, 'compound_tail') && kpf(k, head + 7, 'huge'));
    // A free pool page: the pool is a free list; find one through sysfs counts after poisoning.
    const freeHead = [...k.alloc.pages.values()].find((p) => p.hugetlb?.free)!.pfn;
    const r = corruptPfn(w, freeHead + 3);
    t.equal(r.ret, 0);
    t.same(r.log.slice(-1), [mf(freeHead + 3, 'recovery action for free huge page: Recovered')]);
    t.equal(k.meminfo().HugePages_Total, 3, 'pool shrinks');
    t.equal(k.meminfo().HugePages_Free, 2);
    t.ok(kpf(k, freeHead, 'buddy'), 'head back in buddy');
    t.ok(kpf(k, freeHead + 3, 'hwpoison') && !kpf(k, freeHead + 3, 'buddy'), 'raw page taken off');
    t.notOk(kpf(k, freeHead, 'hwpoison'));
    t.equal(hc(k), 4);
    t.equal(invariantsOk(w), undefined);
  });

  t.test(`${kernel}: in-use private hugetlb page (row 3)`, async (t) => {
    const w = simple(kernel, { kind: 'hugetlb', pages: 1024 }, { ...HP, sysctl: { 'vm.memory_failure_early_kill': 1 } });
    const k = w.k;
    const head = w.pfnOf('p.buf[512]');
    const raw = head + 5;
    const pid = w.procs.get('p')!.pid;
    const r = corruptPfn(w, raw);
    t.equal(r.ret, 0);
    t.same(r.log, [`Injecting memory failure at pfn 0x${raw.toString(16)}`, mf(raw, `Sending SIGBUS to victim:${pid} due to hardware memory corruption`), mf(raw, 'recovery action for huge page: Recovered')]);
    const start = w.resolve('p.buf[0]').addr!;
    // K7: 6.12 reports the raw subpage address, 6.1 the head-aligned one; lsb 21 on both.
    const want = kernel === '6.12' ? start + (512 + 5) * 4096 : start + 512 * 4096;
    t.same(r.signals.map(sig), [`SIGBUS:AO@${pid}:0x${want.toString(16)}:21`]);
    t.equal(k.meminfo().HugePages_Total, 3, 'freed and dissolved');
    t.equal(k.meminfo().HugePages_Free, 2);
    // The whole 2 MiB range is gone: any access -> AR lsb 21 at the exact address.
    const a = touch(w, 'p', 'p.buf[700]+0x10');
    t.equal(a.signals.length, 1);
    t.equal(a.signals[0]!.lsb, 21);
    t.equal(a.signals[0]!.addr, start + 700 * 4096 + 0x10);
    t.match(a.log[0], /^MCE: Killing victim:\d+ due to hardware memory corruption fault at [0-9a-f]+$/);
    t.equal(pagemapKind(k, w.procs.get('p')!, start + 600 * 4096), 'none', 'hugetlb hwpoison entry reads as nothing');
    t.equal(pagemapKind(k, w.procs.get('p')!, start), 'present');
    // The other huge page is intact.
    t.equal(touch(w, 'p', 'p.buf[3]').signals.length, 0);
    t.ok(kpf(k, raw, 'hwpoison'));
    t.notOk(kpf(k, head, 'hwpoison'));
    // Unpoison of the raw (now order-0, taken-off) page.
    t.equal(unpoison(w, raw).ret, 0);
    t.equal(hc(k), 0);
    t.equal(invariantsOk(w), undefined);
  });

  t.test(`${kernel}: shared hugetlb page stays, second error, unpoison of the head (row 4, K5, K8)`, async (t) => {
    const w = world({
      machine: { kernel, ...HP },
      workload: { processes: [{ name: 'p', comm: 'victim', 'mce-kill': 'early', mappings: [{ name: 'buf', kind: 'hugetlb', shared: true, pages: 512 }] }] },
    });
    const k = w.k;
    const head = w.pfnOf('p.buf[0]');
    let r = corruptPfn(w, head + 1);
    t.same(r.log.slice(-1), [mf(head + 1, 'recovery action for huge page: Recovered')]);
    t.equal(r.signals.length, 1);
    t.equal(r.signals[0]!.lsb, 21);
    t.equal(k.meminfo().HugePages_Total, 4, 'kept in the page cache');
    t.equal(k.meminfo().HugePages_Free, 3);
    t.equal(kpf(k, head + 9, 'hwpoison'), kernel === '6.12', 'KPF_HWPOISON on tails only on 6.12');
    t.ok(kpf(k, head, 'hwpoison'));
    // A second error on another subpage: counted; 6.12.117 (hugetlb_update_hwpoison(),
    // MF_HUGETLB_FOLIO_PRE_POISONED) reports it as "huge page: Failed".
    r = corruptPfn(w, head + 2);
    t.equal(r.ret, -133);
    t.same(r.log.slice(-1), [kernel === '6.12' ? mf(head + 2, 'recovery action for huge page: Failed') : mf(head + 2, 'already hardware poisoned')]);
    t.equal(hc(k), 8);
    // Same raw page again: not counted.
    r = corruptPfn(w, head + 2);
    t.equal(hc(k), 8);
    t.equal(unpoison(w, head).ret, -16, 'still mapped/held: refused');
    // K8: the last mapping goes; the folio is held by the hwpoison reference only.
    k.exitProcess(w.procs.get('p')!);
    t.equal(k.meminfo().HugePages_Total, 4);
    t.equal(k.meminfo().HugePages_Free, 3);
    t.ok(kpf(k, head, 'huge') && kpf(k, head, 'hwpoison'));
    t.equal(unpoison(w, head + 1).ret, -16, 'hugetlb needs the head pfn');
    r = unpoison(w, head);
    t.equal(r.ret, 0);
    t.equal(k.meminfo().HugePages_Free, 4, 'back in the free pool');
    t.equal(hc(k), 0, 'every raw error released');
  });

  t.test(`${kernel}: hugetlbfs file: short read, fault, madvise`, async (t) => {
    const w = world({
      machine: { kernel, ...HP },
      workload: {
        devices: [{ name: 'huge', fs: 'hugetlbfs' }],
        files: [{ name: 'hf', device: 'huge', pages: 1024, huge: '2M' }],
        processes: [{ name: 'p', comm: 'victim', mappings: [{ name: 'm', kind: 'hugetlbfs', file: 'hf', pages: 1024 }] }],
      },
    });
    const k = w.k;
    const head = w.pfnOf('p.m[0]');
    t.equal(k.meminfo().HugePages_Free, 2);
    const r = madvise(w, 'p', 'p.m[4]');
    t.equal(r.ret, 0);
    t.same(r.log.slice(-1), [mf(head + 4, 'recovery action for huge page: Recovered')]);
    if (kernel === '6.12') t.same(r.signals.map((s) => [s.code, s.lsb]), [[4, 21]], 'madvise AR, lsb 21');
    else t.same(r.signals, []);
    const task = w.task('p');
    const fd = w.fdFor('p', 'hf');
    if (kernel === '6.12') {
      t.equal(k.pread(task, fd, 0, 10), 4 * 4096, 'short read up to the raw error');
      t.equal(k.pread(task, fd, 4, 1), -5, 'EIO at the poisoned subpage');
      t.equal(k.pread(task, fd, 5, 2), 2 * 4096, 'past it the folio reads');
    } else {
      t.equal(k.pread(task, fd, 0, 10), -5, 'before 6.5 the whole huge page is EIO');
    }
    t.equal(k.pread(task, fd, 512, 4), 4 * 4096, 'other huge page fine');
    const a = touch(w, 'p', 'p.m[100]', true);
    t.equal(a.signals[0]?.lsb, 21);
    t.equal(k.meminfo().HugePages_Total, 4);
  });

  t.test(`${kernel}: soft offline of hugetlb pages`, async (t) => {
    const w = simple(kernel, { kind: 'hugetlb', pages: 512 }, { hugepages: { '2M': 2 } });
    const k = w.k;
    const old = w.pfnOf('p.buf[0]');
    const before = touch(w, 'p', 'p.buf[3]');
    void before;
    const data = w.written.get('p.buf[3]');
    let r = softOffline(w, old + 3);
    t.equal(r.ret, 0);
    t.equal(r.signals.length, 0);
    t.equal(k.meminfo().HugePages_Total, 1, 'old one dissolved');
    t.equal(k.meminfo().HugePages_Free, 0);
    t.not(w.pfnOf('p.buf[3]'), old + 3, 'mapping moved');
    t.equal(k.access(w.task('p'), w.resolve('p.buf[3]').addr!, false).kind === 'ok' ? 'ok' : 'bad', 'ok');
    const res = k.access(w.task('p'), w.resolve('p.buf[3]').addr!, false);
    t.equal(res.kind === 'ok' ? res.data : -1, data, 'data intact');
    t.ok(kpf(k, old + 3, 'hwpoison'));
    t.equal(hc(k), 4);
    // No free huge page left: the target is a fresh temporary huge page from buddy
    // (alloc_migrate_hugetlb_folio(), overcommit not consulted; checked on 6.12.117).
    const cur = w.pfnOf('p.buf[0]');
    r = softOffline(w, cur);
    t.equal(r.ret, 0);
    t.equal(k.meminfo().HugePages_Total, 1, 'temporary page took over, old one went to buddy');
    t.equal(k.meminfo().HugePages_Free, 0);
    t.equal(hc(k), 8);
    t.not(w.pfnOf('p.buf[0]'), cur, 'mapping moved again');
    t.equal(invariantsOk(w), undefined);
  });
}

t.test('1 GiB hugetlb pages: lsb 30', async (t) => {
  const w = simple('6.12', { kind: 'hugetlb', pages: 262144, huge: '1G' }, { memory: '8G', hugepages: { '1G': 2 }, sysctl: { 'vm.memory_failure_early_kill': 1 } });
  const k = w.k;
  t.same(hugetlbSysfs(k, 30), { nr_hugepages: 2, free_hugepages: 1 });
  const head = w.pfnOf('p.buf[0]');
  t.equal(head % 262144, 0);
  const r = corruptPfn(w, head + 1000);
  t.equal(r.signals[0]?.lsb, 30);
  t.same(hugetlbSysfs(k, 30), { nr_hugepages: 1, free_hugepages: 1 });
  const a = touch(w, 'p', 'p.buf[5]');
  t.equal(a.signals[0]?.lsb, 30);
});

t.test('pool exhaustion: a fault without a free huge page is a plain SIGBUS', async (t) => {
  const w = simple('6.12', { kind: 'hugetlb', pages: 512, populate: 'none' }, { hugepages: { '2M': 0 } });
  const a = touch(w, 'p', 'p.buf[0]', true);
  t.same(a.signals.map((s) => [s.signo, s.code, s.lsb]), [[7, 2, 0]]);
  t.same(a.log, []);
});
