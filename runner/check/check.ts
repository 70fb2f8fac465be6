// The checker: compares what a target observed with a case's expectations. It knows nothing of
// the target; every assertion carries where in the case it came from, wanted and found.
import type { LoadedCase, Position } from '../case/load.js';
import type { Expectation, SignalExpectation } from '../case/schema.js';
import type { CaseObservation, ObservedSignal, QueryAnswers, StepObservation } from '../targets/target.js';
import { errnoName, errnoValue } from '../../tsrc/kernel/errno.js';
import { kpfBit } from '../../tsrc/kernel/fs/proc/page.js';
import { expandTemplate, lineMatches } from './templates.js';

export interface Assertion {
  /** Short name, e.g. "step 2 (access): signals". */
  name: string;
  ok: boolean;
  /** Kind of expectation, for agreement tables: ret, log, signals, meminfo ... */
  kind: string;
  wanted?: unknown;
  found?: unknown;
  at?: Position;
  /** Step index the assertion belongs to, or -1 for the case end. */
  step: number;
  message?: string;
}

export interface CaseVerdict {
  assertions: Assertion[];
  ok: boolean;
}

function stepLabel(c: LoadedCase, i: number): string {
  const s = c.config.steps?.[i];
  if (!s) return `step ${i + 1}`;
  const action = Object.keys(s).find((k) => k !== 'as' && k !== 'expect' && k !== 'repeat') ?? '?';
  return `step ${i + 1} (${s.as ?? action})`;
}

function signalMatches(want: SignalExpectation, got: ObservedSignal, refs: QueryAnswers['refs']): boolean {
  const [proc, thread] = want.to.split('.');
  if (got.proc !== proc) return false;
  if (thread && thread !== 'main' && got.thread !== thread) return false;
  if (thread === 'main' && got.thread) return false;
  if ((want.signo ?? 'SIGBUS') !== got.signo) return false;
  if (want.code && want.code !== got.code) return false;
  if (want.lsb !== undefined && want.lsb !== got.lsb) return false;
  if (want.addr !== undefined) {
    if (want.addr === 'none') return got.addr === undefined;
    const r = refs?.[want.addr];
    if (!r?.addr || got.addr === undefined || BigInt(r.addr) !== BigInt(got.addr)) return false;
  }
  return true;
}

function describeSignal(s: ObservedSignal): string {
  return `${s.proc}${s.thread ? `.${s.thread}` : ''}:${s.tid} ${s.signo}${s.code ? ` ${s.code}` : ''}${s.addr ? ` addr=${s.addr}` : ''}${s.lsb !== undefined ? ` lsb=${s.lsb}` : ''}${s.fatal ? ' (fatal)' : ''}`;
}

function describeWanted(w: SignalExpectation): string {
  return `${w.to} ${w.signo ?? 'SIGBUS'}${w.code ? ` ${w.code}` : ''}${w.addr ? ` addr=${w.addr}` : ''}${w.lsb !== undefined ? ` lsb=${w.lsb}` : ''}${(w.count ?? 1) > 1 ? ` x${w.count}` : ''}`;
}

/** Matches expected signals against observed ones; returns the claimed indexes or a problem. */
function matchSignals(wanted: SignalExpectation[], got: ObservedSignal[], refs: QueryAnswers['refs']): { claimed: Set<number>; missing: SignalExpectation[] } {
  const claimed = new Set<number>();
  const missing: SignalExpectation[] = [];
  for (const w of wanted) {
    let need = w.count ?? 1;
    for (let i = 0; i < got.length && need > 0; i++) {
      if (claimed.has(i)) continue;
      if (signalMatches(w, got[i]!, refs)) {
        claimed.add(i);
        need--;
      }
    }
    if (need > 0) missing.push(w);
  }
  return { claimed, missing };
}

interface Ctx {
  c: LoadedCase;
  out: Assertion[];
}

function add(ctx: Ctx, a: Omit<Assertion, 'ok'> & { ok: boolean }): void {
  // Only a failure points into the case: positions are resolved lazily, and resolving one
  // parses the file's node ranges, which a passing case never needs.
  if (a.ok) {
    const { at: _at, ...rest } = a;
    ctx.out.push(rest);
  } else ctx.out.push(a);
}

/** Checks the non-signal expectations of one block (a step's or the end's). */
function checkBlock(ctx: Ctx, e: Expectation, where: (string | number)[], step: number, label: string, so: StepObservation | undefined, answers: QueryAnswers, log: string[], primary: string | undefined): void {
  const pos = (...p: (string | number)[]): Position => ctx.c.positionOf([...where, ...p]);
  const refs = answers.refs;
  if (so && (e.ret !== undefined || e.errno !== undefined)) {
    const got = so.ret;
    if (e.ret !== undefined) {
      const ok = e.ret === 'ok' ? got !== undefined && got >= 0 : got === e.ret;
      add(ctx, { name: `${label}: ret`, kind: 'ret', ok, wanted: e.ret, found: got === undefined ? 'nothing' : got < 0 ? `${got} (${errnoName(got)})` : got, at: pos('ret'), step });
    }
    if (e.errno !== undefined) {
      const want = e.errno === 0 ? 0 : -(errnoValue(e.errno) ?? -1);
      const ok = e.errno === 0 ? got !== undefined && got >= 0 : got === want;
      add(ctx, { name: `${label}: errno`, kind: 'errno', ok, wanted: e.errno, found: got === undefined ? 'nothing' : got < 0 ? errnoName(got) : 0, at: pos('errno'), step });
    }
  }
  const expand = (p: string, key: string, i: number): string | undefined => {
    try {
      return expandTemplate(p, refs, primary);
    } catch (err) {
      add(ctx, { name: `${label}: ${key}[${i}]`, kind: 'log', ok: false, wanted: p, found: (err as Error).message, at: pos(key, i), step });
      return undefined;
    }
  };
  if (e.log) {
    let from = 0;
    for (const [i, p] of e.log.entries()) {
      const pat = expand(p, 'log', i);
      if (pat === undefined) continue;
      let idx = -1;
      for (let j = from; j < log.length; j++) if (lineMatches(log[j]!, pat)) { idx = j; break; }
      const anywhere = idx < 0 && log.some((l) => lineMatches(l, pat));
      add(ctx, { name: `${label}: log line ${i + 1}`, kind: 'log', ok: idx >= 0, wanted: pat, found: idx >= 0 ? log[idx] : anywhere ? 'the line appears, but out of order' : 'no such line', at: pos('log', i), step });
      if (idx >= 0) from = idx + 1;
    }
  }
  if (e['log-exact']) {
    const pats = e['log-exact'].map((p, i) => expand(p, 'log-exact', i));
    const ok = pats.length === log.length && pats.every((p, i) => p !== undefined && lineMatches(log[i]!, p));
    add(ctx, { name: `${label}: log (exact)`, kind: 'log', ok, wanted: pats, found: log, at: pos('log-exact'), step });
  }
  for (const [i, p] of (e['log-not'] ?? []).entries()) {
    const pat = expand(p, 'log-not', i);
    if (pat === undefined) continue;
    const hit = log.find((l) => lineMatches(l, pat));
    add(ctx, { name: `${label}: no log line ${i + 1}`, kind: 'log', ok: hit === undefined, wanted: `no line matching ${pat}`, found: hit ?? 'none', at: pos('log-not', i), step });
  }
  const procs = answers.processes ?? {};
  for (const [i, who] of (e.killed ?? []).entries()) {
    const [name, sig] = who.split(':');
    const st = procs[name!];
    const ok = !!st && !st.alive && (!sig || st.killedBy === sig);
    add(ctx, { name: `${label}: ${name} killed`, kind: 'killed', ok, wanted: `killed${sig ? ` by ${sig}` : ''}`, found: st ? (st.alive ? 'alive' : `killed by ${st.killedBy ?? 'exit'}`) : 'no such process', at: pos('killed', i), step });
  }
  for (const [i, name] of (e.alive ?? []).entries()) {
    const st = procs[name];
    add(ctx, { name: `${label}: ${name} alive`, kind: 'alive', ok: !!st?.alive, wanted: 'alive', found: st ? (st.alive ? 'alive' : `killed by ${st.killedBy ?? 'exit'}`) : 'no such process', at: pos('alive', i), step });
  }
  for (const [key, want] of Object.entries(e.meminfo ?? {})) {
    const got = answers.meminfo?.[key];
    add(ctx, { name: `${label}: meminfo ${key}`, kind: 'meminfo', ok: got === want, wanted: want, found: got ?? 'absent', at: pos('meminfo', key), step });
  }
  for (const [node, stats] of Object.entries(e['mf-stats'] ?? {})) {
    for (const [key, want] of Object.entries(stats)) {
      const got = answers.mfStats?.[node]?.[key];
      add(ctx, { name: `${label}: ${node} memory_failure/${key}`, kind: 'mf-stats', ok: got === want, wanted: want, found: got ?? 'absent', at: pos('mf-stats', node, key), step });
    }
  }
  for (const [ref, want] of Object.entries(e.kpageflags ?? {})) {
    const raw = answers.kpageflags?.[ref];
    const flags = raw === undefined ? undefined : BigInt(raw);
    for (const [mode, names] of [['set', want.set ?? []], ['clear', want.clear ?? []]] as const) {
      for (const n of names) {
        const bit = kpfBit(n);
        const isSet = flags !== undefined && bit !== undefined && (flags & bit) !== 0n;
        const ok = bit !== undefined && flags !== undefined && (mode === 'set' ? isSet : !isSet);
        add(ctx, { name: `${label}: kpageflags ${ref} ${n} ${mode}`, kind: 'kpageflags', ok, wanted: `${n} ${mode}`, found: bit === undefined ? `unknown flag ${n}` : flags === undefined ? 'not read' : `${n} ${isSet ? 'set' : 'clear'} (0x${flags.toString(16)})`, at: pos('kpageflags', ref), step });
      }
    }
  }
  for (const [ref, want] of Object.entries(e.data ?? {})) {
    const got = answers.data?.[ref];
    add(ctx, { name: `${label}: data of ${ref}`, kind: 'data', ok: got === want, wanted: want, found: got ?? 'not read', at: pos('data', ref), step });
  }
  for (const [ref, want] of Object.entries(e.pagemap ?? {})) {
    const got = answers.pagemap?.[ref];
    add(ctx, { name: `${label}: pagemap of ${ref}`, kind: 'pagemap', ok: got === want, wanted: want, found: got ?? 'not read', at: pos('pagemap', ref), step });
  }
  if (e['poisoned-pfns'] !== undefined) {
    add(ctx, { name: `${label}: poisoned pages`, kind: 'poisoned-pfns', ok: answers.poisonedPfns === e['poisoned-pfns'], wanted: e['poisoned-pfns'], found: answers.poisonedPfns ?? 'not read', at: pos('poisoned-pfns'), step });
  }
  if (e.prctl !== undefined) {
    add(ctx, { name: `${label}: PR_MCE_KILL_GET`, kind: 'prctl', ok: answers.prctl === e.prctl, wanted: e.prctl, found: answers.prctl ?? 'not read', at: pos('prctl'), step });
  }
  if (e.severity !== undefined && so) {
    const s = so.severity;
    const ok = !!s && (s.level === e.severity || s.msg === e.severity);
    add(ctx, { name: `${label}: severity`, kind: 'severity', ok, wanted: e.severity, found: s ? `${s.level} (${s.msg})` : 'no MCE graded', at: pos('severity'), step });
  }
  if (e['soft-offlined']) {
    const got = answers.softOfflined ?? [];
    const want = e['soft-offlined'].map((r) => answers.refs?.[r]?.pfn ?? r);
    const ok = want.length === got.length && want.every((w) => got.includes(w));
    add(ctx, { name: `${label}: soft-offlined pages`, kind: 'soft-offlined', ok, wanted: want, found: got, at: pos('soft-offlined'), step });
  }
  if (e.records !== undefined) {
    const r = answers.records;
    const ok = !!r && (e.records === 'injected' ? r.logged.join('\n') === r.injected.join('\n') : r.logged.length === e.records);
    add(ctx, { name: `${label}: logged MCE records`, kind: 'records', ok, wanted: e.records === 'injected' ? r?.injected ?? 'injected records' : e.records, found: r?.logged ?? 'none', at: pos('records'), step });
  }
}

/** Checks a whole case: every expectation, then strictness (unexpected signals, panics, BUG lines). */
export function checkCase(c: LoadedCase, obs: CaseObservation): CaseVerdict {
  const ctx: Ctx = { c, out: [] };
  const strict = c.config.strict ?? true;
  if (obs.setup.error) {
    add(ctx, { name: 'setup', kind: 'setup', ok: false, wanted: 'the machine and workload set up', found: obs.setup.error, at: c.positionOf(['workload']), step: -1 });
    return { assertions: ctx.out, ok: false };
  }
  const steps = c.config.steps ?? [];
  const claimedBySteps = new Set<string>();
  const allSignals: { sig: ObservedSignal; step: number; idx: number }[] = [];
  let expectedPanic = c.config.expect?.panic !== undefined && c.config.expect.panic !== false;
  for (const [i, step] of steps.entries()) {
    const so = obs.steps[i];
    const label = stepLabel(c, i);
    if (!so) continue;
    so.signals.forEach((sig, idx) => allSignals.push({ sig, step: i, idx }));
    const e = step.expect;
    if (e?.panic !== undefined && e.panic !== false) expectedPanic = true;
    if (so.notRun && !(so.notRun.startsWith('the machine stopped') && expectedPanic)) {
      add(ctx, { name: `${label}: ran`, kind: 'step', ok: false, wanted: 'the step to run', found: so.notRun, at: c.positionOf(['steps', i]), step: i });
      continue;
    }
    if (!e) continue;
    const primary = primaryOf(step);
    checkBlock(ctx, e, ['steps', i, 'expect'], i, label, so, so.answers, so.log, primary);
    if (e.signals) {
      const { claimed, missing } = matchSignals(e.signals, so.signals, so.answers.refs);
      claimed.forEach((idx) => claimedBySteps.add(`${i}:${idx}`));
      const extra = so.signals.filter((_, idx) => !claimed.has(idx));
      const ok = missing.length === 0 && extra.length === 0;
      add(ctx, { name: `${label}: signals`, kind: 'signals', ok, wanted: e.signals.length ? e.signals.map(describeWanted) : 'no signal', found: so.signals.length ? so.signals.map(describeSignal) : 'no signal', at: c.positionOf(['steps', i, 'expect', 'signals']), step: i });
      // Signals a step expectation already judged are not also "unexpected".
      extra.forEach((s) => claimedBySteps.add(`${i}:${so.signals.indexOf(s)}`));
    }
    if (e.panic !== undefined) {
      const ok = typeof e.panic === 'string' ? so.panic === e.panic : !!so.panic === e.panic;
      add(ctx, { name: `${label}: panic`, kind: 'panic', ok, wanted: e.panic === false ? 'no panic' : e.panic, found: so.panic ?? 'no panic', at: c.positionOf(['steps', i, 'expect', 'panic']), step: i });
    }
  }
  const end = c.config.expect;
  const lastRefs = mergeRefs(obs);
  const endAnswers: QueryAnswers = { ...obs.final.answers, refs: { ...lastRefs, ...(obs.final.answers.refs ?? {}) } };
  const unclaimed = allSignals.filter((s) => !claimedBySteps.has(`${s.step}:${s.idx}`));
  if (end) {
    checkBlock(ctx, end, ['expect'], -1, 'end', undefined, endAnswers, obs.final.log, undefined);
    if (end.signals) {
      const { claimed, missing } = matchSignals(end.signals, unclaimed.map((s) => s.sig), endAnswers.refs);
      const extra = unclaimed.filter((_, i) => !claimed.has(i));
      add(ctx, { name: 'end: signals', kind: 'signals', ok: missing.length === 0 && extra.length === 0, wanted: end.signals.length ? end.signals.map(describeWanted) : 'no signal', found: unclaimed.length ? unclaimed.map((s) => describeSignal(s.sig)) : 'no signal', at: c.positionOf(['expect', 'signals']), step: -1 });
      unclaimed.length = 0;
    }
    if (end.panic !== undefined) {
      const p = obs.final.panic;
      const ok = typeof end.panic === 'string' ? p === end.panic : !!p === end.panic;
      add(ctx, { name: 'end: panic', kind: 'panic', ok, wanted: end.panic === false ? 'no panic' : end.panic, found: p ?? 'no panic', at: c.positionOf(['expect', 'panic']), step: -1 });
    }
  }
  if (strict) {
    for (const s of unclaimed) {
      add(ctx, { name: `${stepLabel(c, s.step)}: unexpected signal`, kind: 'signals', ok: false, wanted: 'no signal (strict: every signal must be expected)', found: describeSignal(s.sig), at: c.positionOf(['steps', s.step]), step: s.step });
    }
    if (obs.final.panic && !expectedPanic) {
      add(ctx, { name: 'unexpected panic', kind: 'panic', ok: false, wanted: 'no panic (strict)', found: obs.final.panic, step: -1 });
    }
    const bug = obs.final.log.find((l) => /^(BUG:|WARNING:)/.test(l));
    if (bug) add(ctx, { name: 'kernel BUG/WARNING', kind: 'log', ok: false, wanted: 'no BUG: or WARNING: line', found: bug, step: -1 });
  }
  if (ctx.out.length === 0) add(ctx, { name: 'ran', kind: 'step', ok: true, step: -1 });
  return { assertions: ctx.out, ok: ctx.out.every((a) => a.ok) };
}

function primaryOf(step: object): string | undefined {
  for (const [k, v] of Object.entries(step)) {
    if (k === 'as' || k === 'expect' || k === 'repeat') continue;
    if (typeof v === 'string' && !/^(0x[0-9a-f]+|\d+)$/i.test(v)) return v;
    if (v && typeof v === 'object' && 'page' in v) return String((v as { page: unknown }).page);
  }
  return undefined;
}

/** Page addresses do not move; the end block may use refs resolved by any step. */
function mergeRefs(obs: CaseObservation): NonNullable<QueryAnswers['refs']> {
  const out: NonNullable<QueryAnswers['refs']> = {};
  for (const s of obs.steps) for (const [k, v] of Object.entries(s.answers.refs ?? {})) if (!out[k]) out[k] = v;
  return out;
}
