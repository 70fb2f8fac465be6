// The built-in target: runs a case on the simulated machine and kernel model.
import type { LoadedCase } from '../../case/load.js';
import type { Expectation, StepConfig } from '../../case/schema.js';
import { DEFAULT_KERNEL, profileFor } from '../../../tsrc/kernel/profiles.js';
import { errnoValue } from '../../../tsrc/kernel/errno.js';
import { hex } from '../../../tsrc/kernel/printk.js';
import { SIG_NAMES, SI_CODE_NAMES } from '../../../tsrc/kernel/sched.js';
import { writeHwpoisonDebugfs } from '../../../tsrc/kernel/mm/hwpoison-inject.js';
import { madviseInjectError, MADV_HWPOISON, MADV_SOFT_OFFLINE } from '../../../tsrc/kernel/mm/madvise.js';
import { hardOfflinePageStore, softOfflinePageStore } from '../../../tsrc/kernel/drivers/base/memory.js';
import { prctl, PR_MCE_KILL, PR_MCE_KILL_GET } from '../../../tsrc/kernel/kernel/sys.js';
import { readKpageflags } from '../../../tsrc/kernel/fs/proc/page.js';
import { pagemapKind } from '../../../tsrc/kernel/mm/pagemap.js';
import { followPfn } from '../../../tsrc/kernel/mm/memory.js';
import { PG } from '../../../tsrc/kernel/mm/page.js';
import { PAGE_SIZE } from '../../../tsrc/kernel/mm/mm.js';
import { checkInvariants, watchInvariants } from '../../../tsrc/kernel/invariants.js';
import type { CaseObservation, ObservedSignal, QueryAnswers, RunContext, StepObservation, SystemUnderTest } from '../target.js';
import { collectRefs, expectRefs, isPageRef } from '../../check/templates.js';
import { stepAction } from './extensions.js';
import { SetupError, World } from './world.js';
import './builtin-extensions.js';

export class StepError extends Error {}

function toObserved(w: World, sig: { pid: number; tid: number; signo: number; code: number; addr?: number; lsb?: number; fatal: boolean }): ObservedSignal {
  const names = w.namesOf(sig.pid, sig.tid);
  const signo = SIG_NAMES[sig.signo] ?? 'SIGBUS';
  const code = SI_CODE_NAMES[signo]?.[sig.code];
  return {
    ...names,
    pid: sig.pid,
    tid: sig.tid,
    signo,
    ...(code && signo !== 'SIGKILL' ? { code } : {}),
    ...(sig.addr !== undefined && signo !== 'SIGKILL' ? { addr: `0x${hex(sig.addr)}` } : {}),
    ...(sig.lsb !== undefined && signo !== 'SIGKILL' ? { lsb: sig.lsb } : {}),
    fatal: sig.fatal,
  };
}

/** The action name of a step (its one action key). */
export function actionOf(step: StepConfig): string {
  for (const k of Object.keys(step)) if (k !== 'as' && k !== 'expect' && k !== 'repeat') return k;
  return '';
}

/** The page a step acts on, for the {pfn} template. */
function primaryRef(step: StepConfig): string | undefined {
  const a = actionOf(step);
  const v = (step as Record<string, unknown>)[a];
  if (typeof v === 'string' && /[.:[]|^(zero|free|free-huge|kernel|slab)/.test(v) && !/^(0x[0-9a-f]+|\d+)$/i.test(v)) return v;
  if (v && typeof v === 'object' && 'page' in v && typeof (v as { page: unknown }).page === 'string') return (v as { page: string }).page;
  return undefined;
}

function parseNum(v: number | string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  const s = v.trim();
  return /^0x/i.test(s) ? parseInt(s, 16) : Number(s);
}

/** Performs one step's action; returns its return value. */
function runAction(w: World, step: StepConfig, obs: StepObservation): number | undefined {
  const k = w.k;
  const a = actionOf(step);
  const ext = stepAction(a);
  if (ext) return ext(w, step, obs);
  // A page reference is resolved to its pfn; anything else is written as the user gave it, so the
  // kernel's own parsing (kstrtoull) decides, e.g. "-1" or "abc" -> EINVAL.
  const valueOf = (v: string): string => (isPageRef(v) && !/^(0x[0-9a-fA-F]+|\d+)$/.test(v) ? `0x${w.pfnOf(v).toString(16)}` : v);
  switch (a) {
    case 'corrupt-pfn':
      return k.syscall(null, () => writeHwpoisonDebugfs(k, 'corrupt-pfn', valueOf(step['corrupt-pfn']!)), 0);
    case 'unpoison-pfn':
      return k.syscall(null, () => writeHwpoisonDebugfs(k, 'unpoison-pfn', valueOf(step['unpoison-pfn']!)), 0);
    case 'hwpoison-filter': {
      const f = step['hwpoison-filter']!;
      const write = (file: string, v: number | string | undefined): number => (v === undefined ? 0 : writeHwpoisonDebugfs(k, file, String(v)));
      let memcg = f.memcg;
      if (typeof memcg === 'string') memcg = k.memcgs.get(memcg) ?? 0;
      const rets = [
        write('corrupt-filter-dev-major', f['dev-major'] === -1 ? 4294967295 : f['dev-major']),
        write('corrupt-filter-dev-minor', f['dev-minor'] === -1 ? 4294967295 : f['dev-minor']),
        write('corrupt-filter-flags-mask', f['flags-mask']),
        write('corrupt-filter-flags-value', f['flags-value']),
        write('corrupt-filter-memcg', memcg),
        write('corrupt-filter-enable', f.enable),
      ];
      return rets.find((r) => r !== 0) ?? 0;
    }
    case 'madvise': {
      const m = step.madvise!;
      const task = w.task(m.process);
      const r = w.resolve(m.page);
      if (r.addr === undefined) throw new StepError(`madvise needs a page of a mapping, got "${m.page}"`);
      const len = m.len ?? (m.pages ?? 1) * PAGE_SIZE;
      return k.syscall(task, () => madviseInjectError(k, task, r.addr!, len, m.advice === 'hwpoison' ? MADV_HWPOISON : MADV_SOFT_OFFLINE), 0);
    }
    case 'hard-offline':
      return k.syscall(null, () => hardOfflinePageStore(k, `0x${(w.pfnOf(step['hard-offline']!) * PAGE_SIZE).toString(16)}`), 0);
    case 'soft-offline':
      return k.syscall(null, () => softOfflinePageStore(k, `0x${(w.pfnOf(step['soft-offline']!) * PAGE_SIZE).toString(16)}`), 0);
    case 'access': {
      const s = step.access!;
      const task = w.task(s.process);
      const r = w.resolve(s.page);
      if (r.addr === undefined) throw new StepError(`access needs a page of a mapping, got "${s.page}"`);
      const res = k.access(task, r.addr, s.op === 'write');
      if (res.kind === 'ok' && s.op === 'write') w.written.set(s.page.replace(/\+.*$/, ''), res.data);
      return res.kind === 'ok' ? 0 : res.kind === 'sigbus' ? -errnoValue('EFAULT')! : -errnoValue('EFAULT')!;
    }
    case 'read': {
      const s = step.read!;
      const task = w.task(s.process);
      return k.pread(task, w.fdFor(task.group.name, s.file), s.page ?? 0, s.pages ?? 1);
    }
    case 'write': {
      const s = step.write!;
      const task = w.task(s.process);
      const ret = k.pwrite(task, w.fdFor(task.group.name, s.file), s.page ?? 0, s.pages ?? 1);
      const inode = w.files.get(s.file)!;
      for (let i = s.page ?? 0; i < (s.page ?? 0) + (s.pages ?? 1); i++) {
        const p = inode.cache.get(i);
        if (p && !p.test(PG.hwpoison)) w.written.set(`file:${s.file}[${i}]`, p.data);
      }
      return ret;
    }
    case 'fsync': {
      const s = step.fsync!;
      const task = w.task(s.process);
      return k.fsync(task, w.fdFor(task.group.name, s.file));
    }
    case 'msync': {
      const s = step.msync!;
      const task = w.task(s.process);
      const vma = task.group.mm?.vmas.find((v) => v.name === s.mapping.split('.').pop());
      if (!vma?.file) return 0;
      return k.fsync(task, w.fdFor(task.group.name, vma.file.name));
    }
    case 'munmap': {
      const s = step.munmap!;
      const task = w.task(s.process);
      const vma = task.group.mm?.vmas.find((v) => v.name === s.mapping.split('.').pop());
      if (!vma) return -errnoValue('EINVAL')!;
      return k.syscall(task, () => (k.unmapVma(vma), 0), 0);
    }
    case 'truncate':
      return k.truncate(w.files.get(step.truncate!.file)!, step.truncate!.pages);
    case 'sysctl': {
      let ret = 0;
      for (const [name, v] of Object.entries(step.sysctl!)) if (v !== undefined) ret = k.writeSysctl(name, v) || ret;
      return ret;
    }
    case 'prctl': {
      const s = step.prctl!;
      const task = w.task(s.process);
      const ret = prctl(task, s.option === 'PR_MCE_KILL' ? PR_MCE_KILL : PR_MCE_KILL_GET, s.arg2 ?? 0, s.arg3 ?? 0, s.arg4 ?? 0, s.arg5 ?? 0);
      if (s.option === 'PR_MCE_KILL_GET' && ret >= 0) obs.answers.prctl = ret;
      return ret;
    }
    case 'fork': {
      const s = step.fork!;
      const parent = w.task(s.process).group;
      const child = k.fork(parent, s.child);
      w.procs.set(s.child, child);
      for (const [key, v] of [...w.written]) if (key.startsWith(`${parent.name}.`)) w.written.set(`${s.child}.${key.slice(parent.name.length + 1)}`, v);
      return child.pid;
    }
    case 'exit': {
      const proc = w.task(step.exit!).group;
      k.syscall(null, () => k.exitProcess(proc), undefined);
      return 0;
    }
    case 'swap-out': {
      const r = w.resolve(step['swap-out']!);
      if (!r.proc || r.addr === undefined) throw new StepError('swap-out needs a page of a process mapping');
      return w.swapOutAt(r.proc, r.addr, false) ? 0 : -errnoValue('EBUSY')!;
    }
    case 'drop-caches':
      k.dropCaches();
      return 0;
    case 'writeback':
      k.writeback(w.files.get(step.writeback!)!);
      return 0;
    case 'wait': {
      const secs = typeof step.wait === 'number' ? step.wait : parseFloat(String(step.wait));
      k.now += secs;
      k.runWork();
      return 0;
    }
    default:
      throw new StepError(`the simulator cannot run "${a}" steps yet`);
  }
}

/** Reads everything the expectations of a step (or the end) ask about. */
function answer(w: World, e: Expectation | undefined, resolvedPfns: Map<string, number>): QueryAnswers {
  const k = w.k;
  const ans: QueryAnswers = {};
  if (!e) return ans;
  if (e.meminfo) ans.meminfo = k.meminfo();
  if (e['mf-stats']) {
    ans.mfStats = {};
    for (const n of k.alloc.layout.nodes) {
      const s = k.mfStats(n.nid);
      ans.mfStats[`node${n.nid}`] = { ...s };
    }
  }
  if (e.killed || e.alive) {
    ans.processes = {};
    for (const [name, p] of w.procs) ans.processes[name] = { alive: p.alive, ...(p.killedBy !== undefined ? { killedBy: SIG_NAMES[p.killedBy] ?? String(p.killedBy) } : {}) };
  }
  if (e.kpageflags) {
    ans.kpageflags = {};
    for (const ref of Object.keys(e.kpageflags)) {
      const pfn = resolvedPfns.get(ref) ?? w.resolve(ref).pfn;
      ans.kpageflags[ref] = pfn === undefined ? '0' : readKpageflags(k, pfn).toString();
    }
  }
  if (e.data) {
    ans.data = {};
    for (const ref of Object.keys(e.data)) ans.data[ref] = peekData(w, ref);
  }
  if (e.pagemap) {
    ans.pagemap = {};
    for (const ref of Object.keys(e.pagemap)) {
      const r = w.resolve(ref);
      // Read through /proc/PID/pagemap, as the QEMU agent does (huge mappings included).
      ans.pagemap[ref] = r.proc?.alive && r.addr !== undefined ? pagemapKind(k, r.proc, r.addr) : 'none';
    }
  }
  for (const hook of w.answerHooks) hook(e, ans);
  if (e['poisoned-pfns'] !== undefined) {
    let n = 0;
    for (const p of k.alloc.pages.values()) if (p.test(PG.hwpoison)) n++;
    ans.poisonedPfns = n;
  }
  return ans;
}

/** What reading a page would show now, compared with what the workload last wrote. */
function peekData(w: World, ref: string): 'intact' | 'lost' | 'zero' | 'old' {
  const k = w.k;
  const r = w.resolve(ref);
  const key = ref.replace(/\+.*$/, '');
  const want = w.written.get(key);
  let got: number | undefined;
  if (r.inode && r.index !== undefined) {
    const res = k.readFilePage(r.inode, r.index);
    if ('err' in res) return 'lost';
    got = res.data;
  } else if (r.proc && r.addr !== undefined) {
    const mm = r.proc.mm;
    // entryFor() finds the huge pte of a hugetlb mapping; followPfn() the subpage under it.
    const pte = mm?.entryFor(r.addr, r.vma).pte;
    if (!mm || pte?.kind === 'hwpoison') return 'lost';
    if (pte?.kind === 'present') {
      const page = k.alloc.pfnToPage(followPfn(mm, r.addr) ?? pte.pfn)!;
      if (page.test(PG.hwpoison) && page.kind !== 'zero') return 'lost';
      got = page.data;
    } else if (pte?.kind === 'swap') {
      const sc = k.swap.cache.get(pte.slot);
      if (sc?.test(PG.hwpoison)) return 'lost';
      got = sc ? sc.data : (k.swap.device.get(pte.slot) ?? 0);
    } else if (r.vma?.file) {
      const idx = r.vma.pgoffOf(r.addr);
      const res = k.readFilePage(r.vma.file, idx);
      if ('err' in res) return 'lost';
      if (r.vma.file.cache.get(idx)?.test(PG.hwpoison)) return 'lost';
      got = res.data;
    } else {
      got = 0;
    }
  }
  if (got === 0 && want !== 0) return 'zero';
  if (want === undefined || got === want) return 'intact';
  return 'old';
}

export class SimTarget implements SystemUnderTest {
  readonly name = 'sim';
  readonly traces = true;

  cannotRun(c: LoadedCase, ctx: RunContext): string | undefined {
    const version = ctx.kernel ?? c.config.machine?.kernel ?? DEFAULT_KERNEL;
    if (!profileFor(version)) return `no kernel profile "${version}" in the simulator`;
    const targets = c.config.requires?.targets;
    if (targets && !targets.includes('sim')) return 'case runs only on ' + targets.join(', ');
    return undefined;
  }

  async run(c: LoadedCase, ctx: RunContext): Promise<CaseObservation> {
    return runSim(c, ctx);
  }

  async close(): Promise<void> {}
}

/** Runs a case synchronously on a fresh simulated machine. */
export function runSim(c: LoadedCase, ctx: RunContext): CaseObservation {
  const version = ctx.kernel ?? c.config.machine?.kernel ?? DEFAULT_KERNEL;
  const obs: CaseObservation = {
    target: 'sim',
    kernel: version,
    setup: { log: [] },
    steps: [],
    final: { log: [], signals: [], answers: {} },
  };
  let w: World;
  try {
    w = new World(c.config, ctx.kernel);
    w.caseFile = c.file;
  } catch (e) {
    obs.setup.error = e instanceof Error ? e.message : String(e);
    return obs;
  }
  const k = w.k;
  k.tracing = ctx.trace ?? true;
  if (ctx.checkInvariants) watchInvariants(k);
  obs.setup.log = k.log.since(0);
  let signalMark = k.delivered.length;
  const deadline = Date.now() + ctx.timeoutMs;
  const steps = c.config.steps ?? [];
  for (const [i, step] of steps.entries()) {
    const so: StepObservation = { index: i, log: [], signals: [], trail: [], answers: {} };
    obs.steps.push(so);
    if (k.panicked && k.panicMode === 'stop') {
      so.notRun = 'the machine stopped after a kernel panic';
      continue;
    }
    const logMark = k.log.mark();
    const trailMark = k.trailEvents.length;
    // Resolve every page the step and its expectations name, before the action.
    const resolved = new Map<string, number>();
    so.answers.refs = {};
    const refs = new Set(collectRefs(step));
    const primary = primaryRef(step);
    if (primary) refs.add(primary);
    try {
      for (const ref of refs) {
        if (ref.startsWith('pid:') || ref.startsWith('tid:') || ref.startsWith('comm:')) continue;
        const r = w.resolve(ref);
        const entry: NonNullable<QueryAnswers['refs']>[string] = {};
        if (r.pfn !== undefined) {
          entry.pfn = `0x${r.pfn.toString(16)}`;
          entry.phys = `0x${(r.pfn * PAGE_SIZE).toString(16)}`;
          resolved.set(ref, r.pfn);
        }
        if (r.addr !== undefined) entry.addr = `0x${r.addr.toString(16)}`;
        so.answers.refs[ref] = entry;
      }
      for (const [name, p] of w.procs) {
        so.answers.refs[`pid:${name}`] = { pid: p.pid, comm: p.comm };
        for (const t of p.threads) so.answers.refs[`tid:${name}.${t.name}`] = { tid: t.tid, comm: t.comm };
      }
      // Injections name a page frame: an unpopulated page is faulted in first, as a test
      // program would touch it before writing its pfn to corrupt-pfn.
      const needsPfn = ['corrupt-pfn', 'unpoison-pfn', 'hard-offline', 'soft-offline', 'mce', 'corrected'].includes(actionOf(step));
      if (needsPfn && primary && so.answers.refs[primary] && !so.answers.refs[primary]!.pfn) {
        const pfn = w.pfnOf(primary);
        so.answers.refs[primary]!.pfn = `0x${pfn.toString(16)}`;
        so.answers.refs[primary]!.phys = `0x${(pfn * PAGE_SIZE).toString(16)}`;
        resolved.set(primary, pfn);
      }
      const repeat = step.repeat ?? 1;
      for (let r = 0; r < repeat; r++) {
        so.ret = runAction(w, step, so);
        if (Date.now() > deadline) throw new StepError(`timeout after ${ctx.timeoutMs} ms`);
      }
      k.runWork();
      k.returnToUser();
    } catch (e) {
      if (e instanceof SetupError || e instanceof StepError) {
        so.notRun = e.message;
      } else throw e;
    }
    if (ctx.checkInvariants) {
      const bad = checkInvariants(k);
      if (bad) so.notRun = `model invariant violated: ${bad}`;
    }
    so.log = k.log.since(logMark);
    so.trail = k.trailEvents.slice(trailMark);
    // A signal that stays blocked was never delivered: the process did not see it (as on a real kernel).
    so.signals = k.delivered.slice(signalMark).filter((s) => !s.pending).map((s) => toObserved(w, s));
    signalMark = k.delivered.length;
    if (k.panicked && !so.panic) so.panic = k.panicked;
    Object.assign(so.answers, answer(w, step.expect, resolved));
    if (so.notRun?.startsWith('timeout')) break;
  }
  obs.final.log = k.log.since(0);
  obs.final.signals = k.delivered.filter((s) => !s.pending).map((s) => toObserved(w, s));
  obs.final.answers = answer(w, c.config.expect, new Map());
  obs.final.answers.refs = {};
  for (const ref of expectRefs(c.config.expect)) {
    try {
      const r = w.resolve(ref);
      obs.final.answers.refs[ref] = { ...(r.pfn !== undefined ? { pfn: `0x${r.pfn.toString(16)}` } : {}), ...(r.addr !== undefined ? { addr: `0x${r.addr.toString(16)}` } : {}) };
    } catch {
      /* resolved by a step, or gone with its process */
    }
  }
  if (k.panicked) obs.final.panic = k.panicked;
  obs.coverage = { errorStates: [...k.coverage.errorStates], severities: [...k.coverage.severities] };
  return obs;
}

export { parseNum };
