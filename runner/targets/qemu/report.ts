// Turns the agent's events for one case into the CaseObservation the checker reads (the same
// shape the simulator produces).
import type { CaseObservation, ObservedSignal, QueryAnswers, StepObservation } from '../target.js';
import type { LoadedCase } from '../../case/load.js';
import type { AgentEvent } from './vm.js';

interface AgentSignal { proc: string; thread?: string; pid: number; tid: number; signo: number; code: number; addr: string; lsb: number; fatal: boolean }
interface AgentProc { pid: number; alive: boolean; sig?: number; exit?: number; threads?: Record<string, number> }
interface AgentRef { pfn?: string; kpf?: string; kpfNow?: string; addr?: string; pagemap?: string; pid?: number; data?: string }
interface AgentStep extends AgentEvent {
  i: number;
  ret: number;
  errno: number;
  log: string[];
  signals: AgentSignal[];
  procs: Record<string, AgentProc>;
  refs: Record<string, AgentRef>;
  meminfo?: Record<string, number>;
  mf?: Record<string, Record<string, number>>;
}

const SIGNO: Record<number, ObservedSignal['signo']> = { 7: 'SIGBUS', 9: 'SIGKILL', 11: 'SIGSEGV' };
const SIGNAME: Record<number, string> = { 7: 'SIGBUS', 9: 'SIGKILL', 11: 'SIGSEGV', 6: 'SIGABRT', 15: 'SIGTERM' };
const BUS_CODE: Record<number, string> = { 1: 'BUS_ADRALN', 2: 'BUS_ADRERR', 3: 'BUS_OBJERR', 4: 'BUS_MCEERR_AR', 5: 'BUS_MCEERR_AO' };

function codeName(signo: number, code: number): string | undefined {
  if (code === 0x80) return 'SI_KERNEL';
  if (code === 0 || code === -6) return 'SI_USER';
  if (signo === 7) return BUS_CODE[code];
  if (signo === 11) return code === 1 ? 'SEGV_MAPERR' : code === 2 ? 'SEGV_ACCERR' : undefined;
  return undefined;
}

/** pagemap entry → what the checker asks: present / hwpoison / swap / none. */
export function pagemapState(raw: string | undefined, profile: string): 'present' | 'hwpoison' | 'swap' | 'none' | undefined {
  if (raw === undefined) return undefined;
  const v = BigInt(raw);
  if (v >> 63n) return 'present';
  if ((v >> 62n) & 1n) {
    const type = Number(v & 0x1fn);
    const hwpoison = profile === '6.1' ? 26 : 27;
    return type === hwpoison ? 'hwpoison' : 'swap';
  }
  return 'none';
}

function toSignals(list: AgentSignal[]): ObservedSignal[] {
  return list.map((s) => {
    const code = codeName(s.signo, s.code);
    const o: ObservedSignal = { proc: s.proc, pid: s.pid, tid: s.tid, signo: SIGNO[s.signo] ?? 'SIGBUS', fatal: s.fatal };
    if (s.thread) o.thread = s.thread;
    if (code) o.code = code;
    if (code !== 'SI_KERNEL' && s.signo !== 9) {
      o.addr = s.addr;
      if (s.signo === 7 && (s.code === 4 || s.code === 5)) o.lsb = s.lsb;
    }
    return o;
  });
}

/**
 * Counters since boot, taken relative to the case's setup: cases share a boot, and the pages an
 * earlier case poisoned stay poisoned (HardwareCorrupted, memory_failure statistics).
 */
export interface Baseline {
  hardwareCorrupted?: number;
  /** Huge pages the agent added to the pool past the case's N (poisoned ones of earlier cases). */
  hugeExtra?: number;
  mf?: Record<string, Record<string, number>>;
}

/** atEnd: the case's end expectations, read at the frames the refs map after the last step. */
function answersOf(ev: AgentStep, profile: string, comms: Map<string, string>, base: Baseline = {}, atEnd = false): QueryAnswers {
  const a: QueryAnswers = {};
  if (ev.meminfo) {
    a.meminfo = { ...ev.meminfo };
    const hc = a.meminfo['HardwareCorrupted'];
    if (hc !== undefined && base.hardwareCorrupted !== undefined) a.meminfo['HardwareCorrupted'] = hc - base.hardwareCorrupted;
    const ht = a.meminfo['HugePages_Total'];
    if (ht !== undefined && base.hugeExtra) a.meminfo['HugePages_Total'] = ht - base.hugeExtra;
    // num_poisoned_pages, which HardwareCorrupted shows in kB.
    if (a.meminfo['HardwareCorrupted'] !== undefined) a.poisonedPfns = a.meminfo['HardwareCorrupted'] / 4;
  }
  if (ev.mf) {
    a.mfStats = {};
    for (const [node, st] of Object.entries(ev.mf)) {
      a.mfStats[node] = {};
      for (const [k, v] of Object.entries(st)) a.mfStats[node][k] = v - (base.mf?.[node]?.[k] ?? 0);
    }
  }
  a.processes = {};
  a.refs = {};
  for (const [name, p] of Object.entries(ev.procs ?? {})) {
    a.processes[name] = p.alive ? { alive: true } : p.sig !== undefined ? { alive: false, killedBy: SIGNAME[p.sig] ?? `SIG${p.sig}` } : { alive: false };
    // Template keys (runner/check/templates.ts): {pid:PROC}, {tid:PROC.THREAD}, {comm:PROC}.
    const comm = comms.get(name) ?? name;
    a.refs[`pid:${name}`] = { pid: p.pid, comm };
    a.refs[`tid:${name}.main`] = { pid: p.pid, tid: p.pid, comm };
    for (const [t, tid] of Object.entries(p.threads ?? {})) if (t !== 'main') a.refs[`tid:${name}.${t}`] = { pid: p.pid, tid, comm };
  }
  a.kpageflags = {};
  a.pagemap = {};
  a.data = {};
  for (const [name, r] of Object.entries(ev.refs ?? {})) {
    const e: NonNullable<QueryAnswers['refs']>[string] = {};
    if (r.pfn) {
      e.pfn = r.pfn;
      e.phys = `0x${(BigInt(r.pfn) * 4096n).toString(16)}`;
    }
    if (r.addr) e.addr = r.addr;
    if (r.pid) e.pid = r.pid;
    a.refs[name] = e;
    if (r.kpf !== undefined) a.kpageflags[name] = atEnd && r.kpfNow !== undefined ? r.kpfNow : r.kpf;
    const pm = pagemapState(r.pagemap, profile);
    if (pm) a.pagemap[name] = pm;
    if (r.data === 'intact' || r.data === 'lost' || r.data === 'zero' || r.data === 'old') a.data[name] = r.data;
  }
  return a;
}

/**
 * A process that blocks or ignores SIGBUS dies of the forced signal without running a handler, so
 * its siginfo is never seen. The kernel's log line names the kill: "MCE: Killing COMM:PID due to
 * hardware memory corruption fault at ADDR" (action required, kill_accessing_process / do_sigbus)
 * or "Memory failure: PFN: Sending SIGBUS to COMM:PID ..." (action optional, kill_proc); the
 * address of an AO kill is the process's referenced page with that pfn. lsb: 21 in hugetlb mappings.
 */
function inferMceErr(c: LoadedCase, proc: string, pid: number, ev: AgentStep, profile: string): Partial<ObservedSignal> {
  const hugeMaps = new Set<string>();
  const byName = new Map((c.config.workload?.processes ?? []).map((p) => [p.name, p]));
  for (let p = byName.get(proc); p; p = p.parent ? byName.get(p.parent) : undefined) {
    for (const m of p.mappings ?? []) if (m.kind === 'hugetlb' || m.kind === 'hugetlbfs' || (m.kind === 'sysv-shm' && m.huge)) hugeMaps.add(m.name);
  }
  const lsbOf = (addr: bigint): number => {
    for (const [ref, r] of Object.entries(ev.refs ?? {})) {
      const map = /^[^.]+\.([^[.+]+)/.exec(ref)?.[1];
      if (r.addr && map && hugeMaps.has(map) && BigInt(r.addr) >> 21n === addr >> 21n) return 21;
    }
    return 12;
  };
  for (const l of ev.log ?? []) {
    const ar = new RegExp(`^MCE: Killing .*:${pid} due to hardware memory corruption fault at ([0-9a-f]+)$`).exec(l);
    if (ar) {
      const addr = BigInt(`0x${ar[1]}`);
      return { code: 'BUS_MCEERR_AR', addr: `0x${addr.toString(16)}`, lsb: lsbOf(addr) };
    }
    const ao = new RegExp(`^Memory failure: (0x[0-9a-f]+): Sending SIGBUS to .*:${pid} due to hardware memory corruption$`).exec(l);
    if (ao) {
      const pfn = BigInt(ao[1]!);
      for (const [ref, r] of Object.entries(ev.refs ?? {})) {
        if (r.pfn && r.addr && BigInt(r.pfn) === pfn && ref.startsWith(`${proc}.`)) {
          const addr = BigInt(r.addr);
          const lsb = lsbOf(addr);
          // 6.1 reports a hugetlb page by its aligned head address, 6.12 by the raw address.
          return { code: 'BUS_MCEERR_AO', addr: `0x${(lsb === 21 && profile === '6.1' ? (addr >> 21n) << 21n : addr).toString(16)}`, lsb };
        }
      }
      return { code: 'BUS_MCEERR_AO' };
    }
  }
  return {};
}

export interface CaseRun {
  events: AgentEvent[];
  /** Set when the machine panicked during this case. */
  panic?: string;
  /** The kernel's console messages from the last agent event to the panic. */
  panicLog?: string[];
  /** Set when the boot ended (timeout, crash) before the case did. */
  error?: string;
}

export function toObservation(c: LoadedCase, run: CaseRun, kernel: string, profile: string): CaseObservation {
  const comms = new Map<string, string>();
  // A workload process forked from another takes its own comm (the agent sets it after fork(), as
  // the simulator's world does); fork steps' children keep their parent's.
  for (const p of c.config.workload?.processes ?? []) comms.set(p.name, (p.comm ?? p.name).slice(0, 15));
  // fork() children keep their parent's comm.
  for (const s of c.config.steps ?? []) if (s.fork) comms.set(s.fork.child, comms.get(s.fork.process.split('.')[0] ?? '') ?? s.fork.child);
  const setup = run.events.find((e) => e.ev === 'setup') as (AgentStep & { ok: boolean; error?: string }) | undefined;
  const obs: CaseObservation = {
    target: 'qemu',
    kernel,
    setup: { log: setup?.log ?? [] },
    steps: [],
    final: { log: [...(setup?.log ?? [])], signals: [], answers: {} },
  };
  if (!setup) obs.setup.error = run.error ?? run.panic ?? 'the agent did not report the setup';
  else if (!setup.ok) obs.setup.error = setup.error ?? 'setup failed';
  const base: Baseline = {};
  if (setup?.meminfo?.['HardwareCorrupted'] !== undefined) base.hardwareCorrupted = setup.meminfo['HardwareCorrupted'];
  if (setup?.mf) base.mf = setup.mf;
  const wantHuge = c.config.machine?.hugepages?.['2M'];
  const hugeAtSetup = setup?.meminfo?.['HugePages_Total'];
  if (wantHuge !== undefined && hugeAtSetup !== undefined && hugeAtSetup > wantHuge) base.hugeExtra = hugeAtSetup - wantHuge;
  let last: AgentStep | undefined = setup;
  const byIndex = new Map<number, AgentStep>();
  // A step the program splits into several writes (hwpoison-filter, sysctl) runs its first ones as
  // `step -1`: their log and signals belong to the step, and its ret is the first failure.
  let pending: AgentStep[] = [];
  let setupSeen = false;
  for (const e of run.events) {
    if (e.ev === 'setup') setupSeen = true;
    if (e.ev !== 'step' || typeof e['i'] !== 'number') continue;
    const st = e as AgentStep;
    if (st.i < 0) {
      if (setupSeen) pending.push(st);
      continue;
    }
    if (pending.length) {
      const failed = pending.find((p) => p.ret < 0);
      byIndex.set(st.i, {
        ...st,
        ...(failed && st.ret >= 0 ? { ret: failed.ret, errno: failed.errno } : {}),
        log: [...pending.flatMap((p) => p.log ?? []), ...(st.log ?? [])],
        signals: [...pending.flatMap((p) => p.signals ?? []), ...(st.signals ?? [])],
      });
      pending = [];
    } else byIndex.set(st.i, st);
  }
  const prevProcs = new Map<string, AgentProc>(Object.entries(setup?.procs ?? {}));
  let stopped: string | undefined = obs.setup.error ? `setup failed: ${obs.setup.error}` : undefined;
  for (const [i, s] of (c.config.steps ?? []).entries()) {
    const ev = byIndex.get(i);
    if (!ev) {
      const so: StepObservation = { index: i, log: [], signals: [], trail: [], answers: {} };
      if (!stopped && run.panic) {
        so.panic = run.panic;
        so.log = run.panicLog ?? [`Kernel panic - not syncing: ${run.panic}`];
        // The pages and processes as last reported (for the templates of the panic's log lines).
        if (last) so.answers = answersOf(last, profile, comms, base);
        obs.final.log.push(...so.log);
        obs.final.panic = run.panic;
        stopped = 'the kernel panicked';
      } else {
        so.notRun = stopped ?? run.error ?? 'the agent did not report this step';
        stopped ??= so.notRun;
      }
      obs.steps.push(so);
      continue;
    }
    const signals = toSignals(ev.signals ?? []);
    // Processes killed without a recorded signal (SIGBUS ignored/blocked, SIGKILL).
    for (const [name, p] of Object.entries(ev.procs ?? {})) {
      const before = prevProcs.get(name);
      if (!p.alive && p.sig !== undefined && (before === undefined || before.alive) && !signals.some((x) => x.proc === name && x.fatal)) {
        signals.push({ proc: name, pid: p.pid, tid: p.pid, signo: SIGNO[p.sig] ?? 'SIGKILL', fatal: true, ...(p.sig === 7 ? inferMceErr(c, name, p.pid, ev, profile) : {}) });
      }
    }
    for (const [name, p] of Object.entries(ev.procs ?? {})) prevProcs.set(name, p);
    const answers = answersOf(ev, profile, comms, base);
    // A step's {pfn:REF}/{phys:REF} are the frames the refs had when the step started (as the
    // simulator resolves them before the action): after a migration (soft offline) the agent
    // reports the page's new pfn, but the kernel's lines name the old one.
    for (const [name, r] of Object.entries(last?.refs ?? {})) {
      const e = answers.refs?.[name];
      if (r.pfn && e) {
        e.pfn = r.pfn;
        e.phys = `0x${(BigInt(r.pfn) * 4096n).toString(16)}`;
      }
    }
    if (s.prctl) answers.prctl = ev.ret;
    const so: StepObservation = { index: i, ret: ev.ret, log: ev.log ?? [], signals, trail: [], answers };
    obs.steps.push(so);
    obs.final.log.push(...so.log);
    obs.final.signals.push(...signals);
    last = ev;
  }
  if (last) obs.final.answers = answersOf(last, profile, comms, base, true);
  if (run.panic && !obs.final.panic) obs.final.panic = run.panic;
  return obs;
}
