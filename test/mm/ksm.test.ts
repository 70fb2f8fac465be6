// KSM: merged pages are one write-protected page; ≥6.4 memory_failure signals one entry per
// process, 6.1 refuses (`can't handle KSM pages.`) and leaves it mapped (kernel-model.md §5 row
// 20, §8.1, §23.3.1, §23.3.14–15).
import t from 'tap';
import '../../runner/targets/sim/builtin-extensions.js';
import { corruptPfn, hc, kpf, madvise, mf, touch, unpoison, world, invariantsOk } from '../memory-failure/helpers.js';
import type { World } from '../../runner/targets/sim/world.js';

function ksmWorld(kernel: string): World {
  return world({
    machine: { kernel, sysctl: { 'vm.memory_failure_early_kill': 1 } },
    workload: {
      processes: [
        { name: 'a', comm: 'a', mappings: [{ name: 'buf', kind: 'anon', pages: 2 }] },
        { name: 'b', comm: 'b', mappings: [{ name: 'buf', kind: 'anon', pages: 2, ksm: 'a.buf' }] },
        { name: 'plain', comm: 'plain', mappings: [{ name: 'buf', kind: 'anon', pages: 1 }] },
      ],
    },
  });
}

for (const kernel of ['6.1', '6.12']) {
  t.test(`${kernel}: merge, COW, kpageflags`, async (t) => {
    const w = ksmWorld(kernel);
    const k = w.k;
    const pfn = w.pfnOf('a.buf[0]');
    t.equal(w.pfnOf('b.buf[0]'), pfn, 'one KSM page behind both');
    t.equal(k.alloc.pfnToPage(pfn)!.mapcount, 2);
    t.ok(kpf(k, pfn, 'ksm') && kpf(k, pfn, 'anon'));
    const plain = w.pfnOf('plain.buf[0]');
    t.equal(kpf(k, plain, 'ksm'), kernel === '6.12', 'KPF_KSM bug on plain anon pages on 6.12 (§23.3.1)');
    // A write breaks COW onto a new page.
    t.equal(touch(w, 'b', 'b.buf[1]', true).ret, 0);
    t.not(w.pfnOf('b.buf[1]'), w.pfnOf('a.buf[1]'));
    t.equal(invariantsOk(w), undefined);
  });

  t.test(`${kernel}: memory_failure on a KSM page`, async (t) => {
    const w = ksmWorld(kernel);
    const k = w.k;
    const pfn = w.pfnOf('a.buf[0]');
    const [pa, pb] = [w.procs.get('a')!.pid, w.procs.get('b')!.pid];
    const r = corruptPfn(w, pfn);
    if (kernel === '6.12') {
      t.equal(r.ret, 0);
      t.same(r.log.slice(1), [
        mf(pfn, `Sending SIGBUS to b:${pb} due to hardware memory corruption`),
        mf(pfn, `Sending SIGBUS to a:${pa} due to hardware memory corruption`),
        mf(pfn, 'recovery action for dirty LRU page: Recovered'),
      ]);
      t.same(r.signals.map((s) => [s.pid, s.code, s.addr, s.lsb]).sort(), [
        [pa, 5, w.resolve('a.buf[0]').addr, 12],
        [pb, 5, w.resolve('b.buf[0]').addr, 12],
      ].sort());
      t.equal(touch(w, 'b', 'b.buf[0]').signals[0]?.code, 4, 'every sharer has a hwpoison entry');
    } else {
      t.equal(r.ret, -16);
      t.same(r.log.slice(1), [mf(pfn, "can't handle KSM pages."), mf(pfn, 'recovery action for unmapping failed page: Ignored')]);
      t.same(r.signals, []);
      t.equal(hc(k), 4);
      t.equal(touch(w, 'a', 'a.buf[0]').signals.length, 0, 'still mapped and readable');
      t.equal(unpoison(w, pfn).ret, -16);
      const m = madvise(w, 'b', 'b.buf[0]');
      t.equal(m.ret, -133, 'already poisoned through another mapping');
    }
  });
}
