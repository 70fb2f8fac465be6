// The bad-input corpus (test/fixtures/bad-cases): each file gets exactly one precise message with
// file:line:col, `validate` exits 2, and `run` reports each one `not ok` and still runs good cases.
import t from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BAD, FIX, ROOT, hwpsim, parseTap, run, testPoints, tmp } from '../cli/helpers.js';

const expected = JSON.parse(readFileSync(join(ROOT, BAD, 'expected.json'), 'utf8')) as Record<string, string>;
delete expected._comment;
const files = readdirSync(join(ROOT, BAD)).filter((f) => f.endsWith('.yaml')).sort();

function matches(got: string, want: string): boolean {
  const re = /^\/(.*)\/([a-z]*)$/.exec(want);
  return re ? new RegExp(re[1]!, re[2]).test(got) : got === want;
}

t.test('the corpus is large and every file has an expected message', async (t) => {
  t.ok(files.length >= 40, `${files.length} bad cases`);
  t.same(Object.keys(expected).sort(), files, 'expected.json lists exactly the files of the corpus');
});

t.test('validate: one line per file, file:line:col: message, exit 2', async (t) => {
  // One process for the whole corpus (fast), then each line checked on its own.
  const r = await hwpsim(['validate', BAD]);
  t.equal(r.exitCode, 2);
  const lines = r.stderr.trimEnd().split('\n');
  t.equal(lines.length, files.length, 'exactly one message per bad file');
  for (const f of files) {
    const prefix = `${BAD}/${f}:`;
    const mine = lines.filter((l) => l.startsWith(prefix));
    t.equal(mine.length, 1, `${f}: one message`);
    const got = (mine[0] ?? '').slice(prefix.length);
    t.match(got, /^\d+:\d+: \S/, `${f}: line:col`);
    t.ok(matches(got, expected[f]!), `${f}: ${got}`, { wanted: expected[f], found: got });
  }
});

t.test('validate one file at a time exits 2 with its single line', async (t) => {
  for (const f of ['yaml-alias-bomb.yaml', 'proto-key.yaml', 'mce-malformed.yaml', 'binary.yaml']) {
    const r = await hwpsim(['validate', `${BAD}/${f}`]);
    t.equal(r.exitCode, 2, f);
    t.equal(r.stderr, `${BAD}/${f}:${expected[f]}\n`, f);
  }
});

t.test('a 10 MB file is refused before it is parsed', async (t) => {
  const dir = tmp();
  const big = join(dir, 'huge.yaml');
  const line = `# ${'x'.repeat(97)}\n`;
  writeFileSync(big, `name: huge\n${line.repeat(10 * 1024 * 1024 / line.length)}`);
  const r = await hwpsim(['validate', big]);
  t.equal(r.exitCode, 2);
  t.match(r.stderr, new RegExp(`^${big.replace(/[.\\/]/g, '\\$&')}:1:1: file is 104\\d{5} bytes; a case may be at most 1048576 bytes\\n$`));
});

t.test('run over the corpus plus a good case: each bad one not ok, the good one runs', async (t) => {
  const r = await run([BAD, `${FIX}/basic/idle.yaml`, '-j', '2', '--seed', '4']);
  t.equal(r.exitCode, 1);
  const points = testPoints(r.stdout);
  t.equal(points.length, files.length + 1);
  t.ok(points.includes(`ok ${points.length} - idle machine`), 'the good case ran and passed (it sorts last)');
  for (const f of files) {
    const i = points.findIndex((p) => p.endsWith(` - ${BAD}/${f}`));
    t.ok(i >= 0 && points[i]!.startsWith('not ok'), `${f} is not ok`);
  }
  // The diagnostic carries the one-line message.
  t.match(r.stdout, /not ok \d+ - test\/fixtures\/bad-cases\/no-such-process\.yaml\n {2}---\n {2}message: 'test\/fixtures\/bad-cases\/no-such-process\.yaml:7:24: no process named "victm" \(did you mean "victim"\?\)'/);
  const res = await parseTap(r.stdout);
  t.match(res, { count: files.length + 1, pass: 1, fail: files.length });
});
