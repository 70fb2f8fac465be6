// Turning schema issues into one-line messages a case author can act on.
import type { z } from 'zod';

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

export function didYouMean(word: string, choices: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of choices) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function where(path: readonly (string | number)[]): string {
  if (path.length === 0) return 'the case';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

const TYPE_WORDS: Record<string, string> = { object: 'a mapping', array: 'a list', number: 'a number', int: 'an integer', string: 'a string', boolean: 'true or false', nonoptional: 'a value' };

/** Known keys of the object at `path`, found from the issue when zod gives them. */
export function describeIssue(issue: z.core.$ZodIssue, path: readonly (string | number)[], knownKeys: readonly string[] = []): string {
  switch (issue.code) {
    case 'unrecognized_keys': {
      const key = issue.keys[0] ?? '';
      const hint = didYouMean(key, knownKeys);
      return `unknown key "${key}" in ${where(path)}${hint ? ` (did you mean "${hint}"?)` : ''}`;
    }
    case 'invalid_type': {
      const expected = TYPE_WORDS[issue.expected] ?? issue.expected;
      const got = 'input' in issue && issue.input !== undefined ? `, got ${describeValue(issue.input)}` : '';
      if (path.length === 0) return `the case must be a mapping (name:, machine:, workload:, steps:, expect: ...)${got}`;
      return `${where(path)}: expected ${expected}${got}`;
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v)).join(', ');
      const got = 'input' in issue && issue.input !== undefined ? describeValue(issue.input) : 'something else';
      const hint = typeof issue.input === 'string' ? didYouMean(issue.input, issue.values.map(String)) : undefined;
      return `${where(path)}: expected ${issue.values.length === 1 ? values : `one of ${values}`}, got ${got}${hint ? ` (did you mean "${hint}"?)` : ''}`;
    }
    case 'invalid_union': {
      const first = issue.errors.flat()[0];
      if (first && first.code !== 'invalid_type') return describeIssue(first, [...path, ...first.path.filter((p): p is string | number => typeof p !== 'symbol')]);
      return `${where(path)}: ${issue.message === 'Invalid input' ? 'value has the wrong type or form' : issue.message}${'input' in issue && issue.input !== undefined ? ` (got ${describeValue(issue.input)})` : ''}`;
    }
    case 'too_big':
    case 'too_small': {
      const big = issue.code === 'too_big';
      const limit = big ? issue.maximum : issue.minimum;
      const incl = issue.inclusive !== false;
      const bound = `${big ? (incl ? 'at most' : 'less than') : incl ? 'at least' : 'more than'} ${String(limit)}`;
      const got = 'input' in issue && issue.input !== undefined ? describeValue(issue.input) : undefined;
      const origin = issue.origin;
      if (origin === 'array' || origin === 'set') return `${where(path)}: expected ${bound} items${Array.isArray(issue.input) ? `, got ${issue.input.length}` : ''}`;
      if (origin === 'string') return `${where(path)}: expected ${bound} characters${typeof issue.input === 'string' ? `, got ${issue.input.length} (${got})` : ''}`;
      return `${where(path)}: expected ${bound}${got !== undefined ? `, got ${got}` : ''}`;
    }
    case 'invalid_format': {
      const got = 'input' in issue && issue.input !== undefined ? `, got ${describeValue(issue.input)}` : '';
      return `${where(path)}: expected ${issue.message}${got}`;
    }
    default:
      return `${where(path)}: ${issue.message}`;
  }
}

/** The keys an object schema at `path` allows (zod 4 does not list them on unrecognized_keys). */
export function knownKeysAt(schema: z.ZodType, path: readonly (string | number)[]): string[] {
  let s: unknown = schema;
  const unwrap = (x: unknown): unknown => {
    for (;;) {
      const def = (x as { _zod?: { def?: { type?: string; innerType?: unknown } } })._zod?.def;
      if (def && (def.type === 'optional' || def.type === 'default' || def.type === 'nullable') && def.innerType) x = def.innerType;
      else return x;
    }
  };
  for (const seg of path) {
    s = unwrap(s);
    const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return [];
    if (def.type === 'object' && typeof seg === 'string') s = (def.shape as Record<string, unknown>)[seg];
    else if (def.type === 'array') s = def.element;
    else if (def.type === 'record') s = def.valueType;
    else return [];
  }
  s = unwrap(s);
  const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
  return def?.type === 'object' ? Object.keys(def.shape as Record<string, unknown>) : [];
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return String(v);
}
