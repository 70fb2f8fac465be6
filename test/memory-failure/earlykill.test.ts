// kernel-model.md §4, §16, §21.5–21.8, §21.26: who is signalled. Early-kill thread selection for
// every combination of thread policies (prctl) and the sysctl, AR vs AO, coalescing, SIG_IGN and
// blocked SIGBUS, prctl semantics.
import t from 'tap';
import { prctl, PR_MCE_KILL, PR_MCE_KILL_GET, PR_MCE_KILL_SET, PR_MCE_KILL_CLEAR, PR_MCE_KILL_EARLY, PR_MCE_KILL_LATE, PR_MCE_KILL_DEFAULT } from '../../tsrc/kernel/kernel/sys.js';
import { memoryFailure, MF_ACTION_REQUIRED, MF_MUST_KILL } from '../../tsrc/kernel/mm/memory-failure.js';
import { corruptPfn, hx, invariantsOk, madvise, mf, pfnOf, sig, step, touch, world } from './helpers.js';

type Pol = 'early' | 'late' | 'default';
const EINVAL = -22;

function threadsWorld(kernel: string, pols: Pol[], earlyKill: number, sigbus: 'handler' | 'ignore' | 'block' | 'default' = 'handler') {
  return world({
    machine: { kernel, sysctl: { 'vm.memory_failure_early_kill': earlyKill } },
    workload: {
      processes: [
        {
          name: 'p',
          comm: 'app',
          sigbus,
          ...(pols[0] === 'default' ? {} : { 'mce-kill': pols[0] }),
          threads: pols.slice(1).map((pol, i) => ({ name: `t${i + 1}`, 'mce-kill': pol })),
          mappings: [{ name: 'buf', kind: 'anon', pages: 2 }],
        },
      ],
    },
  });
}

/** find_early_kill_thread() by hand: the expected thread index, or -1. */
function expected(pols: Pol[], earlyKill: number): number {
  for (const [i, p] of pols.entries()) {
    if (p === 'early') return i;
    if (p === 'default' && earlyKill) return i;
  }
  return -1;
}

const POLS: Pol[] = ['early', 'late', 'default'];
const combos: Pol[][] = [];
for (const a of POLS) for (const b of POLS) for (const c of POLS) combos.push([a, b, c]);

for (const v of ['6.1', '6.12']) {
  t.test(`${v}: early-kill thread selection, 27 thread-policy combinations x sysctl 0/1`, async (t) => {
    for (const ek of [0, 1]) {
      for (const pols of combos) {
        const w = threadsWorld(v, pols, ek);
        const proc = w.procs.get('p')!;
        const pfn = pfnOf(w, 'p.buf[0]');
        const r = corruptPfn(w, 'p.buf[0]');
        const want = expected(pols, ek);
        const label = `${pols.join(',')} sysctl=${ek}`;
        if (want < 0) {
          t.same(r.signals, [], `${label}: nobody`);
          t.equal(r.log.length, 2, label);
        } else {
          const tid = proc.threads[want]!.tid;
          t.same(r.signals.map(sig), [`SIGBUS:AO@${tid}:${hx(w.resolve('p.buf[0]').addr!)}:12`], `${label}: thread ${want}`);
          t.equal(r.log[1], mf(pfn, `Sending SIGBUS to app:${tid} due to hardware memory corruption`), label);
        }
      }
    }
  });

  t.test(`${v}: AR goes to the consuming thread whatever its policy; others by their policy`, async (t) => {
    const w = world({
      machine: { kernel: v },
      workload: {
        processes: [
          { name: 'a', comm: 'a', 'mce-kill': 'late', threads: [{ name: 'x', 'mce-kill': 'early' }], mappings: [{ name: 'sh', kind: 'anon', pages: 1, shared: true }] },
          { name: 'b', comm: 'b', parent: 'a', 'mce-kill': 'early' },
          { name: 'c', comm: 'c', parent: 'a' },
        ],
      },
    });
    const pfn = pfnOf(w, 'a.sh[0]');
    const cur = w.task('a');
    const r = step(w, () => w.k.syscall(cur, () => memoryFailure(w.k, pfn, MF_ACTION_REQUIRED), 0));
    const addr = hx(w.resolve('a.sh[0]').addr!);
    t.same(r.signals.map(sig), [`SIGBUS:AR@${cur.tid}:${addr}:12`, `SIGBUS:AO@${w.task('b').tid}:${addr}:12`], 'consumer AR, EARLY sibling thread x gets nothing, b AO, c (default) nothing');
    t.equal(r.ret, 0);
  });

  t.test(`${v}: madvise AR (6.11+) vs late kill (6.1)`, async (t) => {
    const w = threadsWorld(v, ['late'], 0);
    const r = madvise(w, 'p', 'p.buf[1]');
    const pfn = pfnOf(w, 'p.buf[1]');
    const addr = w.resolve('p.buf[1]').addr!;
    const tid = w.task('p').tid;
    if (v === '6.1') {
      t.same(r.log, [`Injecting memory failure for pfn ${hx(pfn)} at process virtual address ${hx(addr)}`, mf(pfn, 'recovery action for dirty LRU page: Recovered')]);
      t.same(r.signals, []);
      t.same(touch(w, 'p', 'p.buf[1]').signals.map(sig), [`SIGBUS:AR@${tid}:${hx(addr)}:12`]);
    } else {
      t.same(r.log, [`Injecting memory failure for pfn ${hx(pfn)} at process virtual address ${hx(addr)}`, mf(pfn, `Sending SIGBUS to app:${tid} due to hardware memory corruption`), mf(pfn, 'recovery action for dirty LRU page: Recovered')]);
      t.same(r.signals.map(sig), [`SIGBUS:AR@${tid}:${hx(addr)}:12`]);
    }
    t.equal(r.ret, 0);
  });

  t.test(`${v}: fork-shared anon page: parent and child each by their policy (§21.5)`, async (t) => {
    const w = world({
      machine: { kernel: v },
      workload: { processes: [{ name: 'a', comm: 'a', 'mce-kill': 'early', mappings: [{ name: 'buf', kind: 'anon', pages: 1 }] }, { name: 'b', comm: 'b', parent: 'a', 'mce-kill': 'late' }] },
    });
    t.equal(pfnOf(w, 'a.buf[0]'), pfnOf(w, 'b.buf[0]'));
    const r = corruptPfn(w, 'a.buf[0]');
    t.same(r.signals.map((s) => s.tid), [w.task('a').tid]);
    t.equal(w.procs.get('b')!.mm!.pte(w.resolve('b.buf[0]').addr!)?.kind, 'hwpoison');
    t.equal(touch(w, 'b', 'b.buf[0]').signals[0]?.code, 4);
  });

  t.test(`${v}: two VMAs of one process map a shared page: two sends coalesce (§21.4)`, async (t) => {
    const w = world({
      machine: { kernel: v },
      workload: {
        files: [{ name: 'f', pages: 2 }],
        processes: [{ name: 'a', comm: 'a', 'mce-kill': 'early', mappings: [{ name: 'm1', kind: 'file', file: 'f', shared: true, pages: 1 }, { name: 'm2', kind: 'file', file: 'f', shared: true, pages: 1 }] }],
      },
    });
    const pfn = pfnOf(w, 'a.m1[0]');
    const r = corruptPfn(w, pfn);
    const tid = w.task('a').tid;
    t.equal(r.log.filter((l) => l.includes('Sending SIGBUS')).length, 2);
    t.same(r.signals.map(sig), [`SIGBUS:AO@${tid}:${hx(w.resolve('a.m1[0]').addr!)}:12`], 'one signal, first address');
  });

  t.test(`${v}: SIG_IGN and blocked SIGBUS (§4.4, §21.7)`, async (t) => {
    for (const disp of ['ignore', 'block', 'default'] as const) {
      const w = threadsWorld(v, ['early'], 0, disp);
      const r = corruptPfn(w, 'p.buf[0]');
      const proc = w.procs.get('p')!;
      if (disp === 'ignore') {
        t.same(r.signals, [], 'AO to SIG_IGN: discarded');
        t.ok(proc.alive);
      } else if (disp === 'block') {
        t.equal(r.signals[0]?.pending, true, 'AO blocked: stays pending');
        t.ok(proc.alive);
      } else {
        t.equal(r.signals[0]?.fatal, true, 'default action kills');
        t.notOk(proc.alive);
        t.equal(invariantsOk(w), undefined);
      }
      // AR with force semantics kills an ignoring / blocking process.
      const w2 = threadsWorld(v, ['late'], 0, disp);
      const pfn = pfnOf(w2, 'p.buf[1]');
      const r2 = step(w2, () => w2.k.syscall(w2.task('p'), () => memoryFailure(w2.k, pfn, MF_ACTION_REQUIRED), 0));
      t.equal(r2.signals[0]?.fatal, true, `AR to ${disp}: fatal`);
      t.notOk(w2.procs.get('p')!.alive);
    }
  });

  t.test(`${v}: MF_MUST_KILL signals even a clean page's mappers (§21.20)`, async (t) => {
    const w = world({ machine: { kernel: v, sysctl: { 'vm.memory_failure_early_kill': 1 } }, workload: { files: [{ name: 'f', pages: 1 }], processes: [{ name: 'a', comm: 'a', mappings: [{ name: 'm', kind: 'file', file: 'f', shared: true, pages: 1, populate: 'read' }] }] } });
    const pfn = pfnOf(w, 'a.m[0]');
    const r = step(w, () => w.k.syscall(null, () => memoryFailure(w.k, pfn, MF_MUST_KILL), 0));
    t.same(r.log, [mf(pfn, 'Sending SIGBUS to a:' + w.task('a').tid + ' due to hardware memory corruption'), mf(pfn, 'recovery action for clean LRU page: Recovered')]);
    t.equal(r.signals.length, 1);
  });

  t.test(`${v}: CLONE_VM processes resolve to current for AR (§21.26)`, async (t) => {
    const w = world({ machine: { kernel: v }, workload: { processes: [{ name: 'a', comm: 'a', mappings: [{ name: 'buf', kind: 'anon', pages: 1 }] }, { name: 'b', comm: 'b' }] } });
    const a = w.procs.get('a')!;
    const b = w.procs.get('b')!;
    b.mm = a.mm; // clone(CLONE_VM) without CLONE_THREAD: b shares a's mm (mm_users 2)
    a.mm!.users++;
    const pfn = pfnOf(w, 'a.buf[0]');
    const r = step(w, () => w.k.syscall(w.task('a'), () => memoryFailure(w.k, pfn, MF_ACTION_REQUIRED), 0));
    t.equal(r.log.filter((l) => l.includes(`Sending SIGBUS to a:${a.pid}`)).length, 2, 'current listed twice');
    t.equal(r.signals.length, 1, 'coalesced');
  });
}

t.test('prctl PR_MCE_KILL / PR_MCE_KILL_GET (§16)', async (t) => {
  const w = threadsWorld('6.12', ['default'], 0);
  const task = w.task('p');
  t.equal(prctl(task, PR_MCE_KILL_GET), PR_MCE_KILL_DEFAULT);
  t.equal(prctl(task, PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY), 0);
  t.equal(prctl(task, PR_MCE_KILL_GET), PR_MCE_KILL_EARLY);
  t.equal(prctl(task, PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_LATE), 0);
  t.equal(prctl(task, PR_MCE_KILL_GET), PR_MCE_KILL_LATE);
  t.equal(prctl(task, PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_DEFAULT), 0);
  t.equal(prctl(task, PR_MCE_KILL_GET), PR_MCE_KILL_DEFAULT);
  // CLEAR leaves PF_MCE_EARLY: a later invalid SET yields EARLY.
  prctl(task, PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY);
  t.equal(prctl(task, PR_MCE_KILL, PR_MCE_KILL_CLEAR, 0), 0);
  t.equal(prctl(task, PR_MCE_KILL_GET), PR_MCE_KILL_DEFAULT);
  t.equal(prctl(task, PR_MCE_KILL, PR_MCE_KILL_SET, 7), EINVAL);
  t.equal(prctl(task, PR_MCE_KILL_GET), PR_MCE_KILL_EARLY, 'quirk: PF_MCE_PROCESS set, old EARLY bit');
  t.equal(prctl(task, PR_MCE_KILL, PR_MCE_KILL_CLEAR, 1), EINVAL);
  t.equal(prctl(task, PR_MCE_KILL, 5, 0), EINVAL);
  t.equal(prctl(task, PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_LATE, 1), EINVAL, 'arg4 checked first');
  t.equal(prctl(task, PR_MCE_KILL_GET), PR_MCE_KILL_EARLY, 'unchanged by the rejected call');
  t.equal(prctl(task, PR_MCE_KILL_GET, 1), EINVAL);
  t.equal(prctl(task, PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_LATE, 0, 1), EINVAL);
  t.equal(prctl(task, 99), EINVAL);
  // inherited by threads and fork children created afterwards
  prctl(task, PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY);
  const th = w.k.createThread(task.group, 'later', task);
  t.equal(prctl(th, PR_MCE_KILL_GET), PR_MCE_KILL_EARLY);
  const child = w.k.fork(task.group, 'kid');
  t.equal(prctl(child.leader, PR_MCE_KILL_GET), PR_MCE_KILL_EARLY);
  t.not(prctl(task, PR_MCE_KILL_GET), w.k.sysctl.earlyKill + 10, 'the sysctl never shows in GET');
});
