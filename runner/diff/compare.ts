// Model vs kernel: compares the sim and the qemu results of one case under one kernel profile,
// expectation by expectation. Two results agree on an assertion when both targets give it the
// same verdict (both met or both missed); the agreement figure is equal verdicts / compared.
import type { Assertion } from '../check/check.js';
import type { CaseResult } from '../result.js';

export interface Side {
  ok: boolean;
  found?: unknown;
  /** The assertion was not made on this side (its step did not run, or nothing was checked). */
  absent?: boolean;
}

export interface AssertionDiff {
  name: string;
  kind: string;
  step: number;
  wanted?: unknown;
  at?: { line: number; col: number };
  sim: Side;
  qemu: Side;
  agree: boolean;
  /** False for what the real kernel does not show (left out of the agreement figures). */
  comparable?: false;
}

/** Expectation kinds the QEMU target cannot observe: the severity grade and the logged records. */
export const NOT_OBSERVED_ON_QEMU = new Set(['severity', 'records']);

export type CaseDiffStatus =
  /** Both targets ran the case; the assertions were compared. */
  | 'compared'
  /** A target skipped the case (the reason says which and why). */
  | 'skip'
  /** A target could not produce a result to compare (invalid case, setup failure, timeout, crash). */
  | 'error';

export interface CaseDiff {
  id: string;
  file: string;
  name: string;
  /** Kernel profile both targets ran. */
  kernel: string;
  status: CaseDiffStatus;
  reason?: string;
  /** Case verdict per target: pass / fail / skip / ... */
  sim: string;
  qemu: string;
  assertions: AssertionDiff[];
  compared: number;
  agreed: number;
  /** Every compared assertion has the same verdict on both targets. */
  agree: boolean;
  simMs: number;
  qemuMs: number;
  /** The kernel log the real kernel printed (for disagreements). */
  qemuLog?: string[];
}

/** Assertions a checker only adds when something went wrong: their absence means "met". */
const CONDITIONAL = /: unexpected signal$|^unexpected panic$|^kernel BUG\/WARNING$|(^|: )ran$/;

function keyed(list: Assertion[]): Map<string, Assertion> {
  const out = new Map<string, Assertion>();
  const seen = new Map<string, number>();
  for (const a of list) {
    const n = seen.get(a.name) ?? 0;
    seen.set(a.name, n + 1);
    out.set(n ? `${a.name} #${n + 1}` : a.name, a);
  }
  return out;
}

function side(a: Assertion | undefined, name: string): Side {
  if (a) return { ok: a.ok, ...(a.found !== undefined ? { found: a.found } : {}) };
  if (CONDITIONAL.test(name.replace(/ #\d+$/, ''))) return { ok: true, found: 'none', absent: true };
  return { ok: false, found: 'not checked', absent: true };
}

/** Why a result cannot be compared assertion by assertion, if it cannot. */
function unusable(r: CaseResult): string | undefined {
  if (r.status === 'invalid' || r.status === 'error' || r.status === 'timeout') return `${r.target}: ${r.status}: ${r.reason ?? ''}`.trim();
  const setup = r.assertions.find((a) => a.kind === 'setup' && !a.ok);
  if (setup) return `${r.target}: setup failed: ${String(setup.found)}`;
  return undefined;
}

export function compareCase(sim: CaseResult, qemu: CaseResult): CaseDiff {
  const base = {
    id: sim.id,
    file: sim.file,
    name: sim.name,
    kernel: sim.kernel,
    sim: sim.status,
    qemu: qemu.status,
    simMs: sim.durationMs,
    qemuMs: qemu.durationMs,
    assertions: [] as AssertionDiff[],
    compared: 0,
    agreed: 0,
  };
  if (sim.status === 'invalid') return { ...base, status: 'error', reason: unusable(sim), agree: false };
  if (qemu.status === 'skip') return { ...base, status: 'skip', reason: `qemu: ${qemu.reason ?? ''}`, agree: true };
  if (sim.status === 'skip') return { ...base, status: 'skip', reason: `sim: ${sim.reason ?? ''}`, agree: true };
  const bad = unusable(sim) ?? unusable(qemu);
  if (bad) return { ...base, status: 'error', reason: bad, agree: false, ...(qemu.log ? { qemuLog: qemu.log } : {}) };
  const s = keyed(sim.assertions);
  const q = keyed(qemu.assertions);
  const names = [...s.keys()];
  for (const n of q.keys()) if (!s.has(n)) names.push(n);
  for (const n of names) {
    const a = s.get(n) ?? q.get(n)!;
    const d: AssertionDiff = {
      name: n,
      kind: a.kind,
      step: a.step,
      ...(a.wanted !== undefined ? { wanted: a.wanted } : {}),
      ...(a.at ? { at: { line: a.at.line, col: a.at.col } } : {}),
      sim: side(s.get(n), n),
      qemu: side(q.get(n), n),
      agree: false,
    };
    d.agree = d.sim.ok === d.qemu.ok;
    if (NOT_OBSERVED_ON_QEMU.has(d.kind)) {
      d.comparable = false;
      d.agree = true;
    }
    base.assertions.push(d);
  }
  const cmp = base.assertions.filter((a) => a.comparable !== false);
  base.compared = cmp.length;
  base.agreed = cmp.filter((a) => a.agree).length;
  return { ...base, status: 'compared', agree: base.agreed === base.compared, ...(qemu.log ? { qemuLog: qemu.log } : {}) };
}

export interface Tally {
  compared: number;
  agreed: number;
}

export interface KernelSummary {
  kernel: string;
  cases: number;
  comparedCases: number;
  agreeingCases: number;
  skipped: number;
  errors: number;
  assertions: Tally;
  /** assertions.agreed / assertions.compared (1 when nothing was compared). */
  agreement: number;
  byKind: Record<string, Tally>;
  /** Mean time per case on each target (qemu: amortised over the boots' wall time). */
  simMsPerCase: number;
  qemuMsPerCase: number;
}

export function summarize(kernel: string, diffs: CaseDiff[]): KernelSummary {
  const mine = diffs.filter((d) => d.kernel === kernel);
  const ran = mine.filter((d) => d.status === 'compared');
  const byKind: Record<string, Tally> = {};
  const total: Tally = { compared: 0, agreed: 0 };
  for (const d of ran) {
    for (const a of d.assertions) {
      if (a.comparable === false) continue;
      const t = (byKind[a.kind] ??= { compared: 0, agreed: 0 });
      t.compared++;
      total.compared++;
      if (a.agree) {
        t.agreed++;
        total.agreed++;
      }
    }
  }
  const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  return {
    kernel,
    cases: mine.length,
    comparedCases: ran.length,
    agreeingCases: ran.filter((d) => d.agree).length,
    skipped: mine.filter((d) => d.status === 'skip').length,
    errors: mine.filter((d) => d.status === 'error').length,
    assertions: total,
    agreement: total.compared ? total.agreed / total.compared : 1,
    byKind,
    simMsPerCase: mean(ran.map((d) => d.simMs)),
    qemuMsPerCase: mean(ran.map((d) => d.qemuMs)),
  };
}
