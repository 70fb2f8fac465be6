// End to end through execa: every command of the CLI and the exit codes 0/1/2/3/4.
import t from 'tap';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BAD, FIX, ROOT, hwpsim, parseTap, run, testPoints, tmp } from './helpers.js';

const LIB_CASE = 'hwpoison/anon/dirty-late-kill.yaml';

t.test('run: the built-in library by default (selected with --grep)', async (t) => {
  const r = await run(['--grep', '^hwpoison/anon/dirty-late-kill\\.yaml$', '--seed', '1']);
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, /^TAP version 14\n1\.\.1\n# seed: 1\n/);
  t.match(r.stdout, /\nok 1 - anon dirty page, late kill, touched after corrupt-pfn\n/);
  t.equal(readFileSync(join(r.dir, 'hwpsim.tap'), 'utf8'), r.stdout, 'reports/hwpsim.tap is the same TAP');
});

t.test('run: a file, a directory and a glob', async (t) => {
  const file = await run([`${FIX}/basic/idle.yaml`]);
  t.equal(file.exitCode, 0, file.stderr);
  t.same(testPoints(file.stdout), ['ok 1 - idle machine']);
  const dir = await run([`${FIX}/basic`]);
  t.equal(dir.exitCode, 0, dir.stderr);
  t.equal(testPoints(dir.stdout).length, 6);
  const glob = await run([`${FIX}/basic/anon-*.yaml`]);
  t.equal(glob.exitCode, 0, glob.stderr);
  t.same(testPoints(glob.stdout), ['ok 1 - anon page 0', 'ok 2 - anon page 1', 'ok 3 - anon page 3']);
  const deep = await run([`${FIX}/**/anon-page1.yaml`, `${FIX}/basic/idle.yaml`]);
  t.same(testPoints(deep.stdout), ['ok 1 - anon page 1', 'ok 2 - idle machine'], 'globs and files together, sorted');
});

t.test('list', async (t) => {
  const lib = await hwpsim(['list']);
  t.equal(lib.exitCode, 0);
  t.match(lib.stdout, new RegExp(`^${LIB_CASE.replace(/\./g, '\\.')}  \\[tinjpage, anon, late-kill\\]$`, 'm'));
  const fx = await hwpsim(['list', `${FIX}/basic`, '--tag', 'anon']);
  t.same(fx.stdout.trim().split('\n'), [
    'test/fixtures/cases/basic/anon-page0.yaml  [anon]',
    'test/fixtures/cases/basic/anon-page1.yaml  [anon, late-kill]',
    'test/fixtures/cases/basic/anon-page3.yaml  [anon, third]',
  ]);
  const bad = await hwpsim(['list', `${BAD}/empty.yaml`]);
  t.match(bad.stdout, /empty\.yaml  \(invalid\)/);
  const none = await hwpsim(['list', `${FIX}/basic`, '--grep', 'no-such-case']);
  t.equal(none.exitCode, 4, 'nothing matched');
});

t.test('validate', async (t) => {
  const good = await hwpsim(['validate', `${FIX}/basic`, `${FIX}/failing`]);
  t.equal(good.exitCode, 0, good.stderr);
  t.match(good.stderr, /^7 case\(s\) valid/);
  const bad = await hwpsim(['validate', `${BAD}/no-such-process.yaml`]);
  t.equal(bad.exitCode, 2);
  t.equal(bad.stderr, 'test/fixtures/bad-cases/no-such-process.yaml:7:24: no process named "victm" (did you mean "victim"?)\n', 'one line: file:line:col: message');
  const missing = await hwpsim(['validate', 'no/such/dir']);
  t.equal(missing.exitCode, 2);
  t.match(missing.stderr, /no such case file or directory: no\/such\/dir/);
});

t.test('schema is a JSON Schema of the case format', async (t) => {
  const r = await hwpsim(['schema']);
  t.equal(r.exitCode, 0);
  const s = JSON.parse(r.stdout) as { $schema: string; type: string; properties: Record<string, unknown>; additionalProperties: boolean };
  t.match(s.$schema, /json-schema\.org/);
  t.equal(s.type, 'object');
  t.same(Object.keys(s.properties).sort(), ['description', 'expect', 'machine', 'name', 'requires', 'skip', 'steps', 'strict', 'tags', 'todo', 'workload']);
  t.equal(s.additionalProperties, false, 'unknown keys are flagged in editors too');
});

t.test('explain', async (t) => {
  const r = await hwpsim(['explain', `${FIX}/basic/anon-page1.yaml`]);
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, /^case: anon page 1\nkernel profile: /);
  t.match(r.stdout, /step 1: corrupt-pfn {2}\(test\/fixtures\/cases\/basic\/anon-page1\.yaml:11:5\)/);
  t.match(r.stdout, /signal: SIGBUS BUS_MCEERR_AR to victim/);
  t.match(r.stdout, /verdict: pass\n$/);
  const bad = await hwpsim(['explain', `${BAD}/empty.yaml`]);
  t.equal(bad.exitCode, 2);
  t.match(bad.stderr, /empty\.yaml:1:1: empty case/);
});

t.test('record writes the observed expectations and keeps comments; refuses under CI', async (t) => {
  const dir = tmp();
  const file = join(dir, 'case.yaml');
  copyFileSync(join(ROOT, FIX, 'basic/anon-page1.yaml'), file);
  const src = readFileSync(file, 'utf8');
  // Drop the expectations: record must put them back from what the simulator observes.
  writeFileSync(file, src.replace(/\nexpect:[\s\S]*$/, '\n').replace(/\n {4}expect:\n( {6}.*\n| {8}.*\n)+/g, '\n'));
  const ci = await hwpsim(['record', file], { CI: '1' });
  t.equal(ci.exitCode, 2);
  t.match(ci.stderr, /refusing to record under CI/);
  const r = await hwpsim(['record', file]);
  t.equal(r.exitCode, 0, r.stderr);
  const out = readFileSync(file, 'utf8');
  t.match(out, /^# A small valid case for the runner's own tests/, 'the comment is kept');
  t.match(out, /Injecting memory failure at pfn \{pfn\}/, 'log lines recorded with templates');
  t.match(out, /code: BUS_MCEERR_AR/);
  t.match(out, /alive:\n\s+- victim/);
  const again = await run([file]);
  t.equal(again.exitCode, 0, 'the recorded case passes');
  const forced = await hwpsim(['record', file, '--force'], { CI: '1' });
  t.equal(forced.exitCode, 0, '--force records under CI');
});

t.test('mce-inject --dump', async (t) => {
  const r = await hwpsim(['mce-inject', '--dump', 'test/fixtures/mce-inject/recoverable_ucr/srar_usr_dcu.mce']);
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, /^CPU 0\nBANK 2\n/);
  t.match(r.stdout, /STATUS 0xbd80000000000134/);
  const bad = await hwpsim(['mce-inject', '--dump', `${BAD}/mce-malformed.yaml`]);
  t.equal(bad.exitCode, 2);
  t.match(bad.stderr, /mce-malformed\.yaml:\d+:\d+: /);
});

t.test('exit codes', async (t) => {
  t.equal((await run([`${FIX}/basic`])).exitCode, 0, '0: passed (skip and todo do not fail)');
  const failing = await run([`${FIX}/failing`, '--seed', '3']);
  t.equal(failing.exitCode, 1, '1: a case failed');
  const usage = await hwpsim(['run', '--no-such-flag']);
  t.equal(usage.exitCode, 2, '2: usage error');
  t.match(usage.stderr, /Unknown argument/);
  t.equal((await hwpsim(['frobnicate'])).exitCode, 2, '2: unknown command');
  t.equal((await hwpsim([])).exitCode, 2, '2: no command');
  for (const bad of [['--shard', '3/2'], ['--jobs', 'many'], ['--timeout', '0'], ['--reporter', 'xml'], ['--kernel', '9.9'], ['--grep', '(']]) {
    const r = await run([`${FIX}/basic/idle.yaml`, ...bad]);
    t.equal(r.exitCode, 2, `2: ${bad.join(' ')}`);
    t.match(r.stderr, /^hwpsim: /);
  }
  const invalid = await run([`${BAD}/empty.yaml`]);
  t.equal(invalid.exitCode, 1, 'an invalid case in a run is a failing case (validate gives 2)');
  const dir = tmp();
  writeFileSync(join(dir, 'a-file'), '');
  const internal = await hwpsim(['run', '--quiet', `${FIX}/basic/idle.yaml`, '--reports-dir', join(dir, 'a-file')]);
  t.equal(internal.exitCode, 3, '3: internal error (reports dir is a file)');
  t.match(internal.stderr, /internal error/);
  const nothing = await run([`${FIX}/basic`, '--grep', 'matches-nothing']);
  t.equal(nothing.exitCode, 4, '4: nothing matched');
  t.match(nothing.stderr, /no cases matched/);
  const missing = await run(['no/such/case.yaml']);
  t.equal(missing.exitCode, 4, '4: no such file');
  const tap = await parseTap(failing.stdout);
  t.equal(tap.fail, 1);
});
