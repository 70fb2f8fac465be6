// Reliability: runaway cases, dying workers, SIGINT/SIGTERM, and a report that never depends on
// the parallelism or the execution order.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIX, parseTap, readJson, run, start, testPoints, tmp } from '../cli/helpers.js';

const BASIC = `${FIX}/basic`;

for (const jobs of ['1', '2']) {
  t.test(`a runaway case is stopped by its timeout and the run goes on (--jobs ${jobs})`, async (t) => {
    const r = await run([`${FIX}/runaway`, BASIC, '--timeout', '400', '--jobs', jobs, '--seed', '1']);
    t.equal(r.exitCode, 1);
    const points = testPoints(r.stdout);
    t.equal(points.length, 7);
    t.equal(points.filter((p) => p.startsWith('not ok') && !p.includes('# TODO')).length, 1);
    t.match(r.stdout, /\nnot ok 7 - runaway \# timeout: timeout after 400 ms\n {2}---\n {2}message: timeout after 400 ms/);
    t.match(r.stdout, /\nok 1 - anon page 0\n/);
  });
}

for (const fault of ['exit', 'throw', 'hang']) {
  t.test(`a worker that dies (${fault}) is reported for its case and replaced`, async (t) => {
    const r = await run([BASIC, '-j', '2', '--timeout', '300', '--seed', '1'], { HWPSIM_TEST_WORKER_FAULT: `${fault}:anon-page1` });
    t.equal(r.exitCode, 1);
    const points = testPoints(r.stdout);
    t.equal(points.length, 6, 'every case is reported');
    t.match(points[1], /^not ok 2 - anon page 1( # timeout: .*)?$/);
    const why = { exit: /worker exited running this case \(exit code 7\)/, throw: /worker died running this case: injected fault/, hang: /timeout after 300 ms \(the worker was stopped\)/ }[fault]!;
    t.match(r.stdout, why);
    t.same(points.slice(2, 4), ['ok 3 - anon page 3', 'ok 4 - idle machine'], 'the cases after it ran on a new worker');
  });
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`${sig}: the summary so far, complete reports, exit 130`, async (t) => {
    const dir = tmp();
    // The runaway case sorts last; the others finish, then the run waits on the runaway one.
    const child = start(['run', BASIC, `${FIX}/runaway`, '-j', '2', '--timeout', '600000', '--seed', '1', '-r', 'tap', '-r', 'junit', '-r', 'json', '--reports-dir', dir]);
    let out = '';
    await new Promise<void>((resolve) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/^not ok 6 - todo case/m.test(out)) resolve();
      });
    });
    child.kill(sig);
    const r = await child;
    t.equal(r.exitCode, 130, String(r.stderr));
    const stdout = String(r.stdout);
    t.match(stdout, /\nBail out! interrupted\n# 4 passed, 0 failed, 1 skipped, 1 todo\n$/);
    t.notMatch(stdout, /runaway/, 'the unfinished case is not reported');
    t.same(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary files left');
    t.same(readdirSync(dir).sort(), ['hwpsim.json', 'hwpsim.junit.xml', 'hwpsim.tap']);
    const json = readJson<{ summary: { interrupted: boolean; passed: number; total: number } }>(join(dir, 'hwpsim.json'));
    t.match(json.summary, { interrupted: true, passed: 4, total: 7 });
    t.match(readFileSync(join(dir, 'hwpsim.junit.xml'), 'utf8'), /<testsuite name="hwpsim" tests="6" failures="0" skipped="2"[^]*<\/testsuites>\n$/);
    const tap = await parseTap(readFileSync(join(dir, 'hwpsim.tap'), 'utf8'));
    t.match(tap, { ok: false, count: 6, pass: 5, todo: 1, skip: 1 }, 'ok: false because of the Bail out!');
    t.not(tap.bailout, false);
  });
}

t.test('determinism: twice, --jobs 1 and 2, --shuffle with a seed: identical TAP', async (t) => {
  const sets = [`${FIX}/basic`, `${FIX}/failing`, 'test/fixtures/bad-cases/no-such-process.yaml'];
  const runs = await Promise.all([
    run([...sets, '--seed', '42', '-j', '1']),
    run([...sets, '--seed', '42', '-j', '1']),
    run([...sets, '--seed', '42', '-j', '2']),
    run([...sets, '--seed', '42', '-j', '2', '--shuffle']),
    run([...sets, '--seed', '42', '-j', '1', '--shuffle']),
  ]);
  const first = runs[0]!.stdout;
  t.match(first, /^# seed: 42$/m);
  t.notMatch(first, /time=|duration|\d+ms/, 'no timing in the TAP');
  for (const [i, r] of runs.entries()) t.equal(r.stdout, first, `run ${i + 1} is identical`);
});
