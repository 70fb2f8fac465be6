// The QEMU test set of npm test: a few cases run on the simulator and on the real 6.1 and 6.12
// kernels (one shared boot per kernel, the two boots at once), compared assertion by assertion
// with hwpsim diff's machinery. They must agree everywhere. Skips when QEMU is not set up
// (npm run qemu:setup) or HWPSIM_QEMU=off.
import { join } from 'node:path';
import t from 'tap';
import { discover } from '../../runner/suite.js';
import { runDiff } from '../../runner/diff/run.js';
import { qemuProfiles, qemuUnavailable } from '../../runner/targets/index.js';

const unavailable = qemuUnavailable();

t.test('sim and qemu agree on the qemu test set', { timeout: 170_000 }, async (t) => {
  if (unavailable) return t.skip(unavailable);
  const profiles = qemuProfiles();
  const found = discover([join(import.meta.dirname, 'cases')]);
  t.ok(found.files.length >= 3);
  const t0 = Date.now();
  const res = await runDiff({ files: found.files, root: found.root, timeoutMs: 20_000, jobs: 2, seed: 1 });
  t.comment(`sim ${res.wallMs.sim.toFixed(0)} ms, qemu ${res.wallMs.qemu.toFixed(0)} ms (${Date.now() - t0} ms in all)`);
  t.equal(res.diffs.length, found.files.length * profiles.length, 'every case under every installed kernel');
  for (const d of res.diffs) {
    t.equal(d.status, 'compared', `${d.id} [${d.kernel}] ran on both targets${d.reason ? `: ${d.reason}` : ''}`);
    const differ = d.assertions.filter((a) => !a.agree).map((a) => `${a.name}: sim ${JSON.stringify(a.sim.found)} / qemu ${JSON.stringify(a.qemu.found)}`);
    t.same(differ, [], `${d.id} [${d.kernel}]: ${d.agreed}/${d.compared} agree`);
    t.equal(d.qemu, 'pass', `${d.id} [${d.kernel}] passes on the real kernel`);
  }
  for (const s of res.summaries) {
    t.equal(s.agreement, 1, `${s.kernel}: agreement ${s.assertions.agreed}/${s.assertions.compared}`);
    t.comment(`${s.kernel}: ${s.simMsPerCase.toFixed(1)} ms/case on sim, ${s.qemuMsPerCase.toFixed(0)} ms/case on qemu (amortised)`);
  }
});
