// The fuzz property: any valid case runs on the simulator without an internal error and
// without breaking a model invariant after any step.
import { stringify } from 'yaml';
import type { CaseConfig } from '../runner/case/schema.js';
import { parseCase } from '../runner/case/load.js';
import { runSim } from '../runner/targets/sim/index.js';

export interface FuzzFailure {
  yaml: string;
  problem: string;
}

/** Runs one generated case; returns a problem description, or undefined when all is well. */
export function checkOne(cfg: CaseConfig): FuzzFailure | undefined {
  const yaml = stringify(cfg);
  let c;
  try {
    c = parseCase(yaml, 'fuzz.yaml');
  } catch (e) {
    return { yaml, problem: `generated case rejected: ${(e as Error).message}` };
  }
  try {
    const obs = runSim(c, { timeoutMs: 5000, checkInvariants: true, seed: 0 });
    if (obs.setup.error) return { yaml, problem: `setup: ${obs.setup.error}` };
    const bad = obs.steps.find((s) => s.notRun?.startsWith('model invariant violated'));
    if (bad) return { yaml, problem: `step ${bad.index + 1}: ${bad.notRun}` };
  } catch (e) {
    return { yaml, problem: `crash: ${(e as Error).stack ?? String(e)}` };
  }
  return undefined;
}
