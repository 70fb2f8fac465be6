// Faults and file syscalls against §18 and §23.3: fork/COW, fork copying hwpoison entries,
// shared anon not copied, MADV_DONTNEED, private file mappings, the zero page, disk files
// (clean/dirty, fsync EIO once), tmpfs vs disk vs ramfs, the block-device page cache.
import t from 'tap';
import '../../runner/targets/sim/builtin-extensions.js';
import { corruptPfn, kpf, mf, simple, touch, world, invariantsOk } from '../memory-failure/helpers.js';
import { madviseDontneed } from '../../tsrc/kernel/mm/memory.js';
import { pagemapKind } from '../../tsrc/kernel/mm/pagemap.js';

t.test('fork: COW of private anon pages, hwpoison entries are copied (§23.3.9)', async (t) => {
  const w = simple('6.12', { pages: 2 });
  const k = w.k;
  const pfn = w.pfnOf('p.buf[0]');
  const child = k.fork(w.procs.get('p')!, 'c');
  w.procs.set('c', child);
  t.equal(w.pfnOf('c.buf[0]'), pfn, 'shared until written');
  t.equal(touch(w, 'c', 'c.buf[0]', true).ret, 0);
  t.not(w.pfnOf('c.buf[0]'), pfn, 'COW broke');
  t.equal(w.pfnOf('p.buf[0]'), pfn);
  // A hwpoison entry in the parent is copied into a new child.
  corruptPfn(w, w.pfnOf('p.buf[1]'));
  const c2 = k.fork(w.procs.get('p')!, 'c2');
  w.procs.set('c2', c2);
  t.equal(pagemapKind(k, c2, w.resolve('c2.buf[1]').addr!), 'hwpoison');
  t.equal(touch(w, 'c2', 'c2.buf[1]').signals[0]?.code, 4, 'AR on read in the child');
  t.equal(touch(w, 'c2', 'c2.buf[1]', true).signals[0]?.code, 4, 'and on write');
  t.equal(invariantsOk(w), undefined);
});

t.test('fork: a shared anonymous mapping is not copied; the child faults the poisoned shmem page', async (t) => {
  const w = simple('6.12', { pages: 1, shared: true });
  const k = w.k;
  corruptPfn(w, w.pfnOf('p.buf[0]'));
  const c = k.fork(w.procs.get('p')!, 'c');
  w.procs.set('c', c);
  t.equal(pagemapKind(k, c, w.resolve('c.buf[0]').addr!), 'none');
  t.equal(touch(w, 'c', 'c.buf[0]').signals[0]?.code, 4);
});

t.test('MADV_DONTNEED over poisoned ranges (§23.3.10)', async (t) => {
  const w = world({
    machine: { kernel: '6.12' },
    workload: { processes: [{ name: 'p', mappings: [{ name: 'priv', kind: 'anon', pages: 1 }, { name: 'shr', kind: 'anon', shared: true, pages: 1 }] }] },
  });
  const k = w.k;
  corruptPfn(w, w.pfnOf('p.priv[0]'));
  corruptPfn(w, w.pfnOf('p.shr[0]'));
  const task = w.task('p');
  t.equal(madviseDontneed(k, task, w.resolve('p.priv[0]').addr!, 4096), 0);
  t.equal(madviseDontneed(k, task, w.resolve('p.shr[0]').addr!, 4096), 0);
  t.equal(touch(w, 'p', 'p.priv[0]').signals.length, 0, 'private: discarded');
  t.equal(w.pfnOf('p.priv[0]'), k.zeroPage.pfn, 'next read sees the zero page');
  t.equal(touch(w, 'p', 'p.priv[0]', true).ret, 0, 'writes work');
  t.equal(touch(w, 'p', 'p.shr[0]').signals[0]?.code, 4, 'shared: the poisoned shmem page faults again');
  t.equal(invariantsOk(w), undefined);
});

t.test('MAP_PRIVATE file mappings (§23.3.12)', async (t) => {
  const w = world({
    machine: { kernel: '6.12', sysctl: { 'vm.memory_failure_early_kill': 1 } },
    workload: { files: [{ name: 'f', pages: 2 }], processes: [{ name: 'p', mappings: [{ name: 'm', kind: 'file', file: 'f', pages: 2, populate: 'read' }] }] },
  });
  const k = w.k;
  const cachePfn = w.pfnOf('file:f[0]');
  t.equal(w.pfnOf('p.m[0]'), cachePfn, 'never written: the page-cache page');
  let r = corruptPfn(w, cachePfn);
  t.same(r.log.slice(-1), [mf(cachePfn, 'recovery action for clean LRU page: Recovered')]);
  t.same(r.signals, []);
  t.equal(touch(w, 'p', 'p.m[0]').signals.length, 0, 'refault from disk, no signal');
  t.not(w.pfnOf('p.m[0]'), cachePfn);
  // A written page is an anonymous COW copy.
  touch(w, 'p', 'p.m[1]', true);
  const copy = w.pfnOf('p.m[1]');
  t.not(copy, w.pfnOf('file:f[1]'));
  t.ok(kpf(k, copy, 'anon'));
  r = corruptPfn(w, copy);
  t.same(r.log.slice(-1), [mf(copy, 'recovery action for dirty LRU page: Recovered')]);
  t.equal(r.signals.length, 1);
  t.notOk(kpf(k, w.pfnOf('file:f[1]'), 'hwpoison'), 'the file page behind the copy is unaffected');
});

t.test('zero page: read faults map it, corrupt-pfn cannot handle it (row 22)', async (t) => {
  const w = simple('6.12', { pages: 1, populate: 'read' });
  const k = w.k;
  t.equal(w.pfnOf('p.buf[0]'), k.zeroPage.pfn);
  t.ok(kpf(k, k.zeroPage.pfn, 'zero_page') && kpf(k, k.zeroPage.pfn, 'reserved'));
  const r = corruptPfn(w, k.zeroPage.pfn);
  t.same(r.log.slice(1), [mf(k.zeroPage.pfn, 'unhandlable page.'), mf(k.zeroPage.pfn, 'recovery action for get hwpoison page: Ignored')]);
  t.equal(touch(w, 'p', 'p.buf[0]', true).ret, 0, 'a write COWs away from it');
  t.not(w.pfnOf('p.buf[0]'), k.zeroPage.pfn);
});

for (const kernel of ['6.1', '6.12']) {
  t.test(`${kernel}: disk, tmpfs, ramfs and block-device page caches`, async (t) => {
    const w = world({
      machine: { kernel },
      workload: {
        devices: [{ name: 'tmp', fs: 'tmpfs' }, { name: 'ram', fs: 'ramfs' }, { name: 'blk', fs: 'bdev' }],
        files: [
          { name: 'disk', pages: 3, dirty: [1, 2] },
          { name: 'shm', device: 'tmp', pages: 2 },
          { name: 'rf', device: 'ram', pages: 1 },
          { name: 'bd', device: 'blk', pages: 2, dirty: [1] },
        ],
        processes: [{ name: 'p', mappings: [] }],
      },
    });
    const k = w.k;
    const task = w.task('p');
    const fd = w.fdFor('p', 'disk');
    const fd2 = w.fdFor('p', 'shm');
    // Disk: clean page dropped; dirty page lost, fsync EIO exactly once.
    let r = corruptPfn(w, w.pfnOf('file:disk[0]'));
    t.match(r.log.slice(-1)[0], /clean LRU page: Recovered$/);
    r = corruptPfn(w, w.pfnOf('file:disk[1]'));
    t.match(r.log.slice(-1)[0], /dirty LRU page: Recovered$/);
    t.equal(k.fsync(task, fd), -5);
    t.equal(k.fsync(task, fd), 0, 'once');
    t.equal(k.pread(task, fd, 0, 3), 3 * 4096, 'reads the old on-disk data');
    // tmpfs keeps the poisoned page: EIO on read and write, fsync 0 (K3).
    const shmPfn = w.pfnOf('file:shm[1]');
    r = corruptPfn(w, shmPfn);
    t.match(r.log.slice(-1)[0], /dirty LRU page: Recovered$/);
    t.equal(k.pread(task, fd2, 0, 2), 4096, 'short read');
    t.equal(k.pread(task, fd2, 1, 1), -5);
    t.equal(k.pwrite(task, fd2, 1, 1), -5);
    t.equal(k.fsync(task, fd2), 0);
    t.equal(kpf(k, shmPfn, 'error'), kernel === '6.1', 'PG_error only on 6.1 (K2)');
    // ramfs: unevictable, no error_remove_folio: Failed (K4).
    const rf = w.pfnOf('file:rf[0]');
    t.ok(kpf(k, rf, 'unevictable'));
    r = corruptPfn(w, rf);
    t.same(r.log.slice(1), [mf(rf, 'Failed to invalidate'), mf(rf, 'dirty unevictable LRU page still referenced by 1 users'), mf(rf, 'recovery action for dirty unevictable LRU page: Failed')]);
    t.equal(r.ret, -16);
    // Block-device cache: no error_remove_folio either; clean unreferenced evicted, dirty fails.
    r = corruptPfn(w, w.pfnOf('file:bd[0]'));
    t.match(r.log.slice(-1)[0], /clean LRU page: Recovered$/);
    r = corruptPfn(w, w.pfnOf('file:bd[1]'));
    t.match(r.log.slice(-1)[0], /dirty LRU page: Failed$/);
  });
}
