// End to end through execa: every flag of `hwpsim run`.
import t, { type Test } from 'tap';
import { execa } from 'execa';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIX, ROOT, parseTap, readJson, run, testPoints } from './helpers.js';

const BASIC = `${FIX}/basic`;
const ALL = [`${FIX}/basic`, `${FIX}/failing`];

t.test('--grep and --tag select cases', async (t) => {
  const g = await run([BASIC, '--grep', 'page[01]']);
  t.same(testPoints(g.stdout), ['ok 1 - anon page 0', 'ok 2 - anon page 1']);
  const byName = await run([BASIC, '-g', '^idle machine$']);
  t.same(testPoints(byName.stdout), ['ok 1 - idle machine'], 'grep matches the case name too');
  const tag = await run([BASIC, '--tag', 'late-kill', '--tag', 'idle']);
  t.same(testPoints(tag.stdout), ['ok 1 - anon page 1', 'ok 2 - idle machine']);
});

t.test('-j/--jobs: same report whatever the parallelism', async (t) => {
  const one = await run([...ALL, '-j', '1', '--seed', '9']);
  const two = await run([...ALL, '--jobs', '2', '--seed', '9']);
  t.equal(one.exitCode, 1);
  t.equal(two.exitCode, 1);
  t.equal(two.stdout, one.stdout);
});

t.test('--shard i/n partitions the selection', async (t) => {
  const all = testPoints((await run(ALL)).stdout).map((l) => l.replace(/^(not )?ok \d+ - /, ''));
  const parts: string[][] = [];
  for (const i of [1, 2, 3]) {
    const r = await run([...ALL, '--shard', `${i}/3`]);
    parts.push(testPoints(r.stdout).map((l) => l.replace(/^(not )?ok \d+ - /, '')));
  }
  t.ok(parts.every((p) => p.length > 0), 'no shard is empty');
  t.same(parts.flat().sort(), [...all].sort(), 'the shards together are the whole set, each case once');
});

t.test('--bail stops after the first failure, and the report says so', async (t) => {
  // bad-cases/ sorts before cases/: the invalid case fails first and nothing else runs.
  const r = await run(['test/fixtures/bad-cases/empty.yaml', BASIC, '--bail', '-j', '1']);
  t.equal(r.exitCode, 1);
  t.same(testPoints(r.stdout), ['not ok 1 - test/fixtures/bad-cases/empty.yaml']);
  t.match(r.stdout, /\nBail out! --bail: stopped after the first failure\n# 0 passed, 1 failed, 0 skipped\n$/);
  const res = await parseTap(r.stdout);
  t.not(res.bailout, false, 'tap-parser sees the bail out');
  // Without --bail the same selection runs everything.
  t.equal(testPoints((await run(['test/fixtures/bad-cases/empty.yaml', BASIC, '-j', '1'])).stdout).length, 7);
  // A failure sorted last: everything before it is reported, in order.
  const last = await run([BASIC, `${FIX}/failing`, '--bail', '-j', '2']);
  t.equal(testPoints(last.stdout).at(-1), 'not ok 7 - wrong si_addr_lsb');
});

t.test('--timeout stops a runaway case', async (t) => {
  const r = await run([`${FIX}/runaway`, `${BASIC}/idle.yaml`, '--timeout', '300', '-j', '1']);
  t.equal(r.exitCode, 1);
  t.match(r.stdout, /\nnot ok 2 - runaway \# timeout: timeout after 300 ms\n {2}---\n {2}message: timeout after 300 ms/);
  t.match(r.stdout, /\nok 1 - idle machine\n/);
});

t.test('--seed is printed, and a failing run prints a copy-paste rerun line', async (t) => {
  const r = await run([...ALL, '--seed', '1234', '--shuffle', '--grep', 'lsb|page']);
  t.match(r.stdout, /^# seed: 1234$/m);
  t.match(r.stderr, /^rerun: npx hwpsim run test\/fixtures\/cases\/basic test\/fixtures\/cases\/failing --grep 'lsb\|page' --shuffle --seed 1234$/m);
  const random = await run([`${BASIC}/idle.yaml`]);
  t.match(random.stdout, /^# seed: \d+$/m, 'a random seed is printed too');
  // The rerun line really reruns it.
  const line = /^rerun: npx hwpsim (.*)$/m.exec(r.stderr)![1]!;
  const again = await execa('sh', ['-c', `node bin/hwpsim.js ${line} --quiet --reports-dir "${r.dir}/again"`], { reject: false, cwd: ROOT, stripFinalNewline: false });
  t.equal(String(again.stdout), r.stdout, 'same TAP');
});

t.test('--reporter tap|junit|json and --reports-dir', async (t) => {
  const r = await run([...ALL, '-r', 'tap', '-r', 'junit', '--reporter', 'json', '--seed', '2']);
  t.same(readdirSync(r.dir).sort(), ['hwpsim.json', 'hwpsim.junit.xml', 'hwpsim.tap']);
  const json = readJson<{ summary: { passed: number; failed: number; skipped: number; todo: number; seed: number }; cases: { id: string; status: string }[] }>(join(r.dir, 'hwpsim.json'));
  t.match(json.summary, { passed: 4, failed: 1, skipped: 1, todo: 1, seed: 2 });
  t.equal(json.cases.length, 7);
  t.same(json.cases.find((c) => c.id.endsWith('wrong-lsb.yaml'))?.status, 'fail');
  const xml = readFileSync(join(r.dir, 'hwpsim.junit.xml'), 'utf8');
  checkJunit(t, xml, { tests: 7, failures: 1, skipped: 2 });
  t.match(xml, /<failure message="step 2 \(access\): signals" type="fail">/);
  const only = await run([BASIC, '-r', 'junit']);
  t.equal(only.stdout, '', 'no TAP on stdout without the tap reporter');
  t.same(readdirSync(only.dir), ['hwpsim.junit.xml']);
});

/** A minimal well-formedness check: balanced tags, one root, counts on <testsuite>. */
function checkJunit(t: Test, xml: string, want: { tests: number; failures: number; skipped: number }): void {
  t.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites /);
  const stack: string[] = [];
  let roots = 0;
  for (const m of xml.replace(/^<\?xml[^>]*\?>/, '').matchAll(/<(\/?)([A-Za-z][\w-]*)([^>]*?)(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (close) t.equal(stack.pop(), name, `</${name}> closes <${name}>`);
    else if (!self) {
      if (stack.length === 0) roots++;
      stack.push(name!);
    }
  }
  t.same(stack, [], 'every element is closed');
  t.equal(roots, 1, 'one root element');
  t.notMatch(xml.replace(/&(amp|lt|gt|quot|apos);/g, ''), /&/, 'no unescaped &');
  const suite = /<testsuite name="hwpsim" tests="(\d+)" failures="(\d+)" skipped="(\d+)"/.exec(xml);
  t.same(suite?.slice(1).map(Number), [want.tests, want.failures, want.skipped]);
  t.equal(xml.match(/<testcase /g)?.length, want.tests);
  t.equal(xml.match(/<failure /g)?.length ?? 0, want.failures);
  t.equal(xml.match(/<skipped /g)?.length ?? 0, want.skipped);
}

t.test('TAP 14 parses with tap-parser and counts right', async (t) => {
  const r = await run([...ALL, '--tap-version', '14']);
  const res = await parseTap(r.stdout);
  t.equal(res.ok, false);
  // tap-parser counts a failing TODO point in `fail` (but not against `ok`), a SKIP in `pass`.
  t.match(res, { count: 7, pass: 5, fail: 2, todo: 1, skip: 1, plan: { start: 1, end: 7 } });
  t.equal(res.failures.filter((f) => !f.todo).length, 1, 'one real failure');
  t.match(r.stdout, /^# Subtest: anon page 0\n {4}ok 1 - step 1 \(corrupt-pfn\): ret$/m);
});

t.test('--tap-version 13 is flat and passes prove', async (t) => {
  const r = await run([BASIC, '--tap-version', '13']);
  t.match(r.stdout, /^TAP version 13\n/);
  t.notMatch(r.stdout, /# Subtest/);
  const res = await parseTap(r.stdout);
  t.match(res, { ok: true, count: 6, pass: 5, todo: 1, skip: 1 });
  const prove = await execa('prove', ['--version'], { reject: false });
  if (prove.exitCode !== 0) {
    t.comment('prove not installed: parse check only');
    return;
  }
  const file = join(r.dir, 'basic.tap');
  writeFileSync(file, r.stdout);
  const p = await execa('prove', ['--exec', 'cat', file], { reject: false });
  t.equal(p.exitCode, 0, String(p.stdout));
  t.match(String(p.stdout), /Result: PASS/);
  const f = await run([`${FIX}/failing`, '--tap-version', '13']);
  const ffile = join(f.dir, 'failing.tap');
  writeFileSync(ffile, f.stdout);
  const pf = await execa('prove', ['--exec', 'cat', ffile], { reject: false });
  t.not(pf.exitCode, 0, 'a failing TAP 13 run fails prove');
  t.match(String(pf.stdout), /Result: FAIL/);
});

t.test('--kernel runs a matrix', async (t) => {
  const r = await run([`${BASIC}/anon-page1.yaml`, '--kernel', '6.1', '--kernel', '6.12,6.18']);
  t.equal(r.exitCode, 0, r.stdout);
  t.same(testPoints(r.stdout), ['ok 1 - anon page 1 [6.1]', 'ok 2 - anon page 1 [6.12]', 'ok 3 - anon page 1 [6.18]']);
});

t.test('--pass-with-no-tests', async (t) => {
  t.equal((await run([BASIC, '--grep', 'nothing-here'])).exitCode, 4);
  t.equal((await run([BASIC, '--grep', 'nothing-here', '--pass-with-no-tests'])).exitCode, 0);
});

t.test('--check-invariants', async (t) => {
  const r = await run([BASIC, '--check-invariants']);
  t.equal(r.exitCode, 0, r.stdout);
});

t.test('--coverage prints the error_states rows hit', async (t) => {
  const r = await run([`${BASIC}/anon-page1.yaml`, '--coverage']);
  t.equal(r.exitCode, 0);
  t.match(r.stderr, /# coverage: memory_failure result types/);
  t.match(r.stderr, /#   hit  /);
});

t.test('--shuffle: order from the seed, report in the stable order', async (t) => {
  const a = await run([...ALL, '--shuffle', '--seed', '77', '-j', '1']);
  const b = await run([...ALL, '--seed', '77', '-j', '1']);
  t.equal(a.stdout, b.stdout, 'the report does not depend on the execution order');
});
