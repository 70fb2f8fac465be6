// docs/case-format.md documents every key of the case schema (runner/case/schema.ts), so that
// the two cannot drift apart: each key path must appear in the document as `a.b.c`.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CaseConfig } from '../../runner/case/schema.js';
import { ROOT } from '../cli/helpers.js';

interface Def {
  type?: string;
  innerType?: unknown;
  shape?: Record<string, unknown>;
  element?: unknown;
  valueType?: unknown;
  options?: unknown[];
  in?: unknown;
}

function defOf(s: unknown): Def | undefined {
  return (s as { _zod?: { def?: Def } })._zod?.def;
}

/** Every key path of the schema: objects give `a.b`, lists and records are walked through. */
export function keyPaths(schema: unknown, prefix = '', out = new Set<string>(), depth = 0): Set<string> {
  const def = defOf(schema);
  if (!def || depth > 20) return out;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'readonly':
      return keyPaths(def.innerType, prefix, out, depth + 1);
    case 'pipe':
      return keyPaths(def.in, prefix, out, depth + 1);
    case 'array':
      return keyPaths(def.element, prefix, out, depth + 1);
    case 'record':
      return keyPaths(def.valueType, prefix, out, depth + 1);
    case 'union':
      for (const o of def.options ?? []) keyPaths(o, prefix, out, depth + 1);
      return out;
    case 'object':
      for (const [k, v] of Object.entries(def.shape ?? {})) {
        const p = prefix ? `${prefix}.${k}` : k;
        out.add(p);
        keyPaths(v, p, out, depth + 1);
      }
      return out;
    default:
      return out;
  }
}

t.test('every key of the case schema is documented in docs/case-format.md', async (t) => {
  const doc = readFileSync(join(ROOT, 'docs', 'case-format.md'), 'utf8');
  const paths = [...keyPaths(CaseConfig)].sort();
  t.ok(paths.length > 100, `${paths.length} key paths`);
  const missing = paths.filter((p) => !doc.includes(`\`${p}\``));
  t.same(missing, [], 'key paths missing from docs/case-format.md (write them as `a.b.c`)');
});

t.test('the README names every command and run flag', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const c of ['run', 'list', 'validate', 'schema', 'explain', 'record', 'mce-inject']) t.match(readme, new RegExp(`hwpsim ${c}\\b`), c);
  for (const f of ['--grep', '--tag', '--jobs', '--shard', '--bail', '--timeout', '--seed', '--reporter', '--tap-version', '--kernel', '--pass-with-no-tests', '--check-invariants', '--coverage', '--shuffle', '--target', '--reports-dir', '--quiet']) t.match(readme, f, f);
});
