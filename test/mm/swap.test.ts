// Swap cache states for memory_failure (kernel-model.md §5 rows 16–17, §21.11), write faults
// freeing swap, swapoff with a poisoned swap-cache page per profile (§23.3.7), pagemap encodings.
import t from 'tap';
import '../../runner/targets/sim/builtin-extensions.js';
import { corruptPfn, kpf, mf, simple, touch, invariantsOk } from '../memory-failure/helpers.js';
import { decodePagemap, pagemapEntry } from '../../tsrc/kernel/mm/pagemap.js';

for (const kernel of ['6.1', '6.12']) {
  t.test(`${kernel}: clean swap-cache page (row 16)`, async (t) => {
    const w = simple(kernel, { pages: 2, 'swap-cache': [0] }, { sysctl: { 'vm.memory_failure_early_kill': 1 } });
    const k = w.k;
    const pfn = w.pfnOf('p.buf[0]');
    t.ok(kpf(k, pfn, 'swapcache'));
    const r = corruptPfn(w, pfn);
    t.equal(r.ret, 0);
    t.same(r.log.slice(1), [mf(pfn, 'keeping poisoned page in swap cache'), mf(pfn, 'recovery action for clean swapcache page: Recovered')]);
    t.same(r.signals, [], 'clean: nobody signalled');
    const p = w.procs.get('p')!;
    t.equal(decodePagemap(pagemapEntry(k, p, w.resolve('p.buf[0]').addr!)).swapType, 0, 'an ordinary swap entry again');
    const a = k.access(w.task('p'), w.resolve('p.buf[0]').addr!, false);
    t.equal(a.kind === 'ok' ? a.data : -1, w.written.get('p.buf[0]'), 'the good copy is swapped in');
    t.equal(invariantsOk(w), undefined);
  });

  t.test(`${kernel}: dirty swap-cache page (row 17) and swapoff (§23.3.7)`, async (t) => {
    const w = simple(kernel, { pages: 2, 'swap-cache': [0] });
    const k = w.k;
    // Modified after swap-in: the pte is writable, the store only sets its dirty bit.
    t.equal(touch(w, 'p', 'p.buf[0]', true).ret, 0);
    const pfn = w.pfnOf('p.buf[0]');
    t.ok(kpf(k, pfn, 'swapcache'), 'still in the swap cache');
    const r = corruptPfn(w, pfn);
    t.equal(r.ret, 0);
    t.same(r.log.slice(-1), [mf(pfn, 'recovery action for dirty swapcache page: Delayed')]);
    t.ok(kpf(k, pfn, 'swapcache') && !kpf(k, pfn, 'uptodate') && !kpf(k, pfn, 'dirty'));
    const p = w.procs.get('p')!;
    const addr = w.resolve('p.buf[0]').addr!;
    t.equal(decodePagemap(pagemapEntry(k, p, addr)).swap, true);
    k.swap.swapoff();
    const d = decodePagemap(pagemapEntry(k, p, addr));
    t.notOk(kpf(k, pfn, 'swapcache'), 'the page left the swap cache');
    const a = touch(w, 'p', 'p.buf[0]');
    if (kernel === '6.1') {
      t.equal(d.swapType, 31, 'swap-in error marker');
      t.same(a.signals.map((s) => [s.code, s.addr, s.lsb]), [[2, addr, 0]]);
      t.same(a.log, [], 'no MCE: Killing line');
    } else {
      t.same([d.swapType, d.swapOffset], [27, pfn], 'hwpoison entry, offset = pfn');
      t.same(a.signals.map((s) => [s.code, s.lsb]), [[4, 12]]);
      t.match(a.log[0], /^MCE: Killing/);
    }
    t.equal(touch(w, 'p', 'p.buf[1]').signals.length, 0, 'other pages swapped back in');
  });

  t.test(`${kernel}: a page being swapped out is a dirty swap-cache page`, async (t) => {
    const w = simple(kernel, { pages: 1 }, {}, { 'mce-kill': 'early' });
    const k = w.k;
    const pfn = w.pfnOf('p.buf[0]');
    k.swap.swapOut(k.alloc.pfnToPage(pfn)!, 'writing');
    const r = corruptPfn(w, pfn);
    t.same(r.log.slice(1), [mf(pfn, 'recovery action for dirty swapcache page: Delayed')], 'unmapped: no keeping line');
    t.same(r.signals, []);
    t.equal(touch(w, 'p', 'p.buf[0]').signals[0]?.code, 4, 'swap-in finds the poisoned page: AR');
  });

  t.test(`${kernel}: a write fault on a swap entry frees the swap copy`, async (t) => {
    const w = simple(kernel, { pages: 1, 'swapped-out': [0] });
    const k = w.k;
    t.equal(touch(w, 'p', 'p.buf[0]', true).ret, 0);
    const pfn = w.pfnOf('p.buf[0]');
    t.notOk(kpf(k, pfn, 'swapcache'));
    const r = corruptPfn(w, pfn);
    t.same(r.log.slice(-1), [mf(pfn, 'recovery action for dirty LRU page: Recovered')]);
  });
}
