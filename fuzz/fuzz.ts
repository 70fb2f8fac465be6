// `npm run fuzz -- --runs N [--seed S]`: property-based fuzzing of the simulator. Prints the
// shrunk counterexample as a YAML case (add it to cases/regression/ once the bug is fixed).
import fc from 'fast-check';
import { caseArb } from './generate.js';
import { checkOne } from './property.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const runs = arg('runs', 10000);
const seed = arg('seed', Date.now() % 2 ** 31);
const t0 = performance.now();
const result = fc.check(
  fc.property(caseArb, (cfg) => {
    const f = checkOne(cfg);
    if (f) throw new Error(f.problem);
  }),
  { numRuns: runs, seed },
);
const secs = ((performance.now() - t0) / 1000).toFixed(1);
if (result.failed) {
  const cex = result.counterexample?.[0];
  const f = cex ? checkOne(cex) : undefined;
  process.stdout.write(`fuzz: FAILED after ${result.numRuns} runs (seed ${seed}, ${secs}s)\n${f?.problem ?? result.errorInstance}\n--- counterexample ---\n${f?.yaml ?? ''}`);
  process.exitCode = 1;
} else {
  process.stdout.write(`fuzz: ${result.numRuns} runs, no crash and no invariant violation (seed ${seed}, ${secs}s)\n`);
}
