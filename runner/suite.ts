// Finding cases: paths, directories and globs; selection by --grep, --tag and --shard.
import { readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built-in library: <package>/cases. */
export function builtinCasesDir(): string {
  // This file is dist/runner/suite.js (or runner/suite.ts under the test loader).
  const here = dirname(fileURLToPath(import.meta.url));
  const up = here.includes(`${sep}dist${sep}`) ? join(here, '..', '..') : join(here, '..');
  return join(up, 'cases');
}

function walk(dir: string, out: string[]): void {
  for (const ent of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (ent.name.startsWith('.') || ent.name === 'node_modules') continue;
    const p = join(dir, ent.name);
    if (ent.isDirectory()) walk(p, out);
    else if (/\.ya?ml$/.test(ent.name)) out.push(p);
  }
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export interface Discovered {
  files: string[];
  /** Root that ids are relative to. */
  root: string;
  /** Paths the user named that matched nothing. */
  missing: string[];
}

/** Expands positional arguments into case files (sorted, de-duplicated). */
export function discover(args: readonly string[], cwd = process.cwd()): Discovered {
  const builtin = builtinCasesDir();
  if (args.length === 0) {
    const files: string[] = [];
    try {
      walk(builtin, files);
    } catch {
      /* no library */
    }
    return { files, root: builtin, missing: [] };
  }
  const set = new Set<string>();
  const missing: string[] = [];
  for (const arg of args) {
    if (/[*?]/.test(arg)) {
      const staticPart = arg.split('/').filter((_, i, a) => !a.slice(0, i + 1).some((s) => /[*?]/.test(s))).join('/') || '.';
      const base = resolve(cwd, staticPart);
      const all: string[] = [];
      try {
        walk(base, all);
      } catch {
        /* nothing */
      }
      const re = globToRegExp(resolve(cwd, arg).split(sep).join('/'));
      const hits = all.filter((f) => re.test(f.split(sep).join('/')));
      if (!hits.length) missing.push(arg);
      hits.forEach((h) => set.add(h));
      continue;
    }
    const p = resolve(cwd, arg);
    let st;
    try {
      st = statSync(p);
    } catch {
      missing.push(arg);
      continue;
    }
    if (st.isDirectory()) {
      const all: string[] = [];
      walk(p, all);
      all.forEach((f) => set.add(f));
    } else set.add(p);
  }
  const abs = [...set].sort();
  const root = commonRoot(abs, cwd);
  // Files under the working directory are shown (in messages and reports) relative to it.
  const files = abs.map((f) => {
    const r = relative(cwd, f);
    return r && !r.startsWith('..') && !isAbsolute(r) ? r : f;
  });
  return { files, root, missing };
}

function commonRoot(files: string[], cwd: string): string {
  const builtin = builtinCasesDir();
  if (files.every((f) => f.startsWith(builtin + sep))) return builtin;
  return cwd;
}

export function caseId(file: string, root: string): string {
  return relative(root, file).split(sep).join('/');
}

/** --shard i/n: a stable partition by position in the sorted list. */
export function inShard(index: number, shard: { index: number; count: number } | undefined): boolean {
  return !shard || index % shard.count === shard.index - 1;
}

export function parseShard(s: string): { index: number; count: number } | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  if (!m) return undefined;
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index < 1 || index > count) return undefined;
  return { index, count };
}

/**
 * The `name:` a case file declares, read from its text without parsing YAML, when that is certain:
 * exactly one top-level `name:` line whose value is a plain or quoted scalar without escapes,
 * comments, indicators or a continuation line, in a single block-mapping document. `undefined`
 * when in doubt (the caller parses the file). Lets --grep skip files without the YAML cost.
 */
export function declaredName(source: string): string | undefined {
  if (/^(?:[{[%?&!*]|---|\.\.\.)/m.test(source) || source.includes('\t') || source.includes('\u0000')) return undefined;
  const re = /^name:(.*)$/gm;
  const m = re.exec(source);
  if (!m || re.exec(source)) return undefined;
  const rest = m[1]!.replace(/\r$/, '');
  // A continuation line (the next non-blank one, indented) would extend a plain scalar.
  const after = /^(?:[ \r]*\n)*([^\n]*)/.exec(source.slice(m.index + m[0].length + 1))![1]!;
  if (/^[ ]+\S/.test(after.replace(/\r$/, ''))) return undefined;
  if (rest !== '' && !rest.startsWith(' ')) return undefined;
  const v = rest.trim();
  // A double-quoted name with only JSON's escapes (\" \\ \n \t \uXXXX ...) means the same in YAML.
  if (/^"(?:[^"\\]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"$/.test(v)) return JSON.parse(v) as string;
  if (v === '' || v.includes('#')) return undefined;
  let q = /^"([^"\\]*)"$/.exec(v);
  if (q) return q[1];
  q = /^'([^']*)'$/.exec(v);
  if (q) return q[1];
  if (/^[-?:,[\]{}#&*!|>'"%@`]/.test(v) || /:(\s|$)|\s#/.test(v)) return undefined;
  return v;
}
