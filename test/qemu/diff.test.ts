// sim-vs-qemu comparison (no QEMU needed): pairing of assertions, agreement figures, TAP, and
// the QEMU target's behaviour when it is not set up (every case a clear skip, never a crash).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Assertion } from '../../runner/check/check.js';
import type { CaseResult } from '../../runner/result.js';
import { compareCase, summarize } from '../../runner/diff/compare.js';
import { agreementTable, tapPoint } from '../../runner/diff/report.js';
import { qemuKernelsFor } from '../../runner/diff/run.js';
import { isBatchTarget, makeQemuTarget, qemuUnavailable } from '../../runner/targets/index.js';
import { parseCase } from '../../runner/case/load.js';

const a = (name: string, kind: string, ok: boolean, found?: unknown): Assertion => ({ name, kind, ok, step: 0, ...(found !== undefined ? { found } : {}) });
const result = (target: string, assertions: Assertion[], extra: Partial<CaseResult> = {}): CaseResult => ({
  id: 'x/y.yaml',
  file: '/cases/x/y.yaml',
  name: 'y',
  target,
  kernel: '6.12',
  status: assertions.every((x) => x.ok) ? 'pass' : 'fail',
  assertions,
  durationMs: target === 'sim' ? 2 : 900,
  ...extra,
});

t.test('same verdicts agree, different verdicts are listed with both found values', async (t) => {
  const sim = result('sim', [a('step 1 (corrupt-pfn): ret', 'ret', true, 0), a('step 2 (access): signals', 'signals', true, 'v SIGBUS'), a('end: meminfo HardwareCorrupted', 'meminfo', false, 8)]);
  const qemu = result('qemu', [a('step 1 (corrupt-pfn): ret', 'ret', true, 0), a('step 2 (access): signals', 'signals', false, 'no signal'), a('end: meminfo HardwareCorrupted', 'meminfo', false, 0)]);
  const d = compareCase(sim, qemu);
  t.equal(d.status, 'compared');
  t.equal(d.compared, 3);
  t.equal(d.agreed, 2, 'both missing the meminfo value is agreement');
  t.notOk(d.agree);
  const tap = tapPoint(d, 1);
  t.match(tap, /^not ok 1 - y \[6\.12\] \(2\/3 agree\)/);
  t.match(tap, /assertion: "step 2 \(access\): signals"/);
  t.match(tap, /found: v SIGBUS/);
  t.match(tap, /found: no signal/);
  const s = summarize('6.12', [d]);
  t.same(s.byKind['signals'], { compared: 1, agreed: 0 });
  t.same(s.assertions, { compared: 3, agreed: 2 });
  t.equal(s.qemuMsPerCase, 900);
  t.ok(agreementTable([d], [s]).some((l) => l.includes('66.7%')));
});

t.test('checker-added assertions: absent means met; a step that did not run is "not checked"', async (t) => {
  const sim = result('sim', [a('step 1 (access): signals', 'signals', true)]);
  const qemu = result('qemu', [a('step 1 (access): signals', 'signals', true), a('step 1 (access): unexpected signal', 'signals', false, 'v SIGKILL')]);
  const d = compareCase(sim, qemu);
  t.equal(d.compared, 2);
  t.equal(d.agreed, 1);
  t.same(d.assertions[1]?.sim, { ok: true, found: 'none', absent: true });
  const d2 = compareCase(result('sim', [a('step 2 (x): ret', 'ret', true)]), result('qemu', [a('step 2 (x): ran', 'step', false, 'timeout')]));
  t.equal(d2.compared, 2);
  t.equal(d2.agreed, 0);
});

t.test('skips and unusable results are not compared', async (t) => {
  const skip = compareCase(result('sim', [a('r', 'ret', true)]), result('qemu', [], { status: 'skip', reason: 'the VM has one NUMA node' }));
  t.equal(skip.status, 'skip');
  t.equal(tapPoint(skip, 3), 'ok 3 - y [6.12] # SKIP qemu: the VM has one NUMA node');
  const setup = compareCase(result('sim', [a('r', 'ret', true)]), result('qemu', [{ ...a('setup', 'setup', false, 'map: -12'), step: -1 }]));
  t.equal(setup.status, 'error');
  t.match(setup.reason, /qemu: setup failed: map: -12/);
  t.equal(summarize('6.12', [skip, setup]).assertions.compared, 0);
});

t.test('default kernels: the case\'s own, else every installed profile', async (t) => {
  const f = qemuKernelsFor(['6.1', '6.12']);
  t.same(f(parseCase('machine: { kernel: "6.1" }\n', 'a.yaml')), [undefined]);
  t.same(f(parseCase('name: x\n', 'b.yaml')), ['6.1', '6.12']);
  t.same(qemuKernelsFor([])(parseCase('name: x\n', 'b.yaml')), [undefined]);
});

t.test('not set up: every case is a skip with the setup command, never a crash', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'hwpsim-noqemu-'));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  const why = qemuUnavailable(empty);
  t.match(why, /^QEMU target not set up: (run npm run qemu:setup|disabled)/);
  const target = makeQemuTarget({ cacheDir: empty });
  t.ok(isBatchTarget(target));
  t.equal(target.name, 'qemu');
  t.equal(target.cannotRun(parseCase('name: x\n', 'b.yaml'), { timeoutMs: 1000, checkInvariants: false, seed: 1 }), why);
  await target.close();
});
