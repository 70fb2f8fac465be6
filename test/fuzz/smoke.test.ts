// A 2,000-run fuzz smoke: random valid cases never crash the simulator or break an invariant.
import t from 'tap';
import fc from 'fast-check';
import { caseArb } from '../../fuzz/generate.js';
import { checkOne } from '../../fuzz/property.js';

t.test('random valid cases run without crash or invariant violation', async (t) => {
  const result = fc.check(
    fc.property(caseArb, (cfg) => {
      const f = checkOne(cfg);
      if (f) throw new Error(`${f.problem}\n${f.yaml}`);
    }),
    { numRuns: 2000, seed: 20261126 },
  );
  t.notOk(result.failed, result.failed ? String(result.errorInstance) : 'no counterexample');
});

t.test('the property notices a broken case', async (t) => {
  const f = checkOne({ name: 'bad', workload: { processes: [{ name: 'p', mappings: [{ name: 'm', kind: 'file', file: 'nope', pages: 1 }] }] } });
  t.ok(f, 'a case naming a missing file is reported');
});
