// The --grep pre-filter reads a case's name without YAML; it must agree with the YAML parser
// whenever it answers, and give up (undefined) when it cannot be sure.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { declaredName, discover } from '../../runner/suite.js';

t.test('declaredName agrees with the YAML parser on the library and the fixtures', async (t) => {
  const files = [...discover([]).files, ...discover(['test/fixtures']).files];
  let answered = 0;
  for (const f of files) {
    const src = readFileSync(f, 'utf8');
    const name = declaredName(src);
    if (name === undefined) continue;
    answered++;
    let parsed: unknown;
    try {
      parsed = (parse(src) as { name?: unknown } | null)?.name;
    } catch {
      continue;
    }
    if (typeof parsed === 'string' && parsed !== name) t.fail(`${f}: declared "${name}", parsed "${parsed}"`);
  }
  t.ok(answered > 400, `answered for ${answered} of ${files.length} files`);
});

t.test('tricky names', async (t) => {
  const cases: [string, string | undefined][] = [
    ['name: plain words\n', 'plain words'],
    ['name: "quoted \\"inner\\" # not a comment"\n', 'quoted "inner" # not a comment'],
    ["name: 'single ''quoted'''\n", undefined],
    ['name: "escape \\x41"\n', undefined],
    ['name: a # comment\n', undefined],
    ['name: first\nname: second\n', undefined],
    ['name: continued\n  on the next line\n', undefined],
    ['&anchor\nname: x\n', undefined],
  ];
  for (const [src, want] of cases) {
    const got = declaredName(src);
    t.equal(got, want, JSON.stringify(src));
    if (got !== undefined) t.equal((parse(src) as { name: string }).name, got, `YAML agrees on ${JSON.stringify(src)}`);
  }
});
