// Running one case on one target: load, decide skip, run, check. Never throws: every outcome,
// including a broken case file or an internal error, becomes a CaseResult.
import { CaseError, loadCase, type LoadedCase } from './case/load.js';
import { checkCase } from './check/check.js';
import type { CaseResult } from './result.js';
import type { RunContext, SystemUnderTest } from './targets/target.js';
import { DEFAULT_KERNEL, versionSatisfies } from '../tsrc/kernel/profiles.js';

export interface ExecuteOptions extends RunContext {
  grep?: RegExp;
  tags?: string[];
}

/** Why a loaded case is skipped before running, if it is. */
export function skipReason(c: LoadedCase, kernel: string): string | undefined {
  if (c.config.skip) return c.config.skip;
  const req = c.config.requires;
  if (req?.kernel && !versionSatisfies(kernel, req.kernel)) return `requires kernel ${req.kernel}, profile is ${kernel}`;
  const mca = c.config.machine?.mca ?? {};
  for (const f of req?.features ?? []) {
    const has =
      f === 'ser' ? (mca.ser ?? true) : f === 'noser' ? mca.ser === false : f === 'cmci' ? (mca.cmci ?? true) : f === 'lmce' ? (mca.lmce ?? true) : f === 'hwpoison-inject' ? (c.config.machine?.['hwpoison-inject'] ?? true) : f === 'cec' ? !!c.config.machine?.cec?.enabled : false;
    if (!has) return `requires machine feature "${f}"`;
  }
  return undefined;
}

export function kernelOf(c: LoadedCase | undefined, ctx: RunContext): string {
  return ctx.kernel ?? c?.config.machine?.kernel ?? DEFAULT_KERNEL;
}

export function invalidResult(file: string, id: string, err: CaseError | Error, target: string, kernel: string): CaseResult {
  return { id, file, name: id, target, kernel, status: 'invalid', reason: err.message, assertions: [], durationMs: 0 };
}

export async function executeLoaded(c: LoadedCase, target: SystemUnderTest, ctx: RunContext): Promise<CaseResult> {
  const t0 = performance.now();
  const kernel = kernelOf(c, ctx);
  const name = ctx.kernel ? `${c.name} [${kernel}]` : c.name;
  const base = { id: c.id, file: c.file, name, target: target.name, kernel };
  const skip = skipReason(c, kernel) ?? target.cannotRun(c, ctx);
  if (skip) return { ...base, status: 'skip', reason: skip, assertions: [], durationMs: 0 };
  try {
    // Without the decision trail first: most cases pass, and the trail is costly on big cases.
    const obs = await target.run(c, { ...ctx, trace: false });
    const verdict = checkCase(c, obs);
    const timedOut = obs.steps.find((s) => s.notRun?.startsWith('timeout'));
    // A failure's diagnostic shows why the model did what it did: run it again with the trail.
    const traced = !verdict.ok && !timedOut && target.traces ? await target.run(c, { ...ctx, trace: true }) : obs;
    const status = timedOut ? 'timeout' : c.config.todo ? 'todo' : verdict.ok ? 'pass' : 'fail';
    return {
      ...base,
      status,
      ...(timedOut ? { reason: timedOut.notRun } : c.config.todo ? { reason: c.config.todo } : {}),
      assertions: verdict.assertions,
      durationMs: performance.now() - t0,
      // The log and the trail are for a failure's diagnostic: a passing simulator case does not
      // carry them (they are most of what a worker would send back; the simulator can rerun it).
      // Real-kernel logs are kept: hwpsim diff shows them.
      ...((status === 'pass' || status === 'todo') && target.traces ? {} : { log: obs.final.log, trail: traced.steps.flatMap((s) => s.trail.map((e) => `${e.fn}: ${e.msg}`)) }),
      ...(obs.coverage ? { coverage: obs.coverage } : {}),
    };
  } catch (e) {
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return { ...base, status: 'error', reason: `internal error: ${msg}`, assertions: [], durationMs: performance.now() - t0 };
  }
}

/** Loads and runs a case file. */
export async function executeFile(file: string, id: string, root: string, target: SystemUnderTest, ctx: RunContext): Promise<CaseResult> {
  let c: LoadedCase;
  try {
    c = loadCase(file, root);
    c.id = id;
  } catch (e) {
    return invalidResult(file, id, e instanceof Error ? e : new Error(String(e)), target.name, ctx.kernel ?? DEFAULT_KERNEL);
  }
  return executeLoaded(c, target, ctx);
}
