// Loading a case file: YAML text -> validated CaseConfig, with the line:column of every node so
// that errors and failed expectations point into the file.
//
// We use the `yaml` package rather than js-yaml because we need source ranges of every key (for
// file:line:col errors and diagnostics) and comment-preserving rewrites (for `hwpsim record`).
import { readFileSync, statSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { type DocumentOptions, type ParseOptions, type SchemaOptions, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';
import { load as jsYamlLoad } from 'js-yaml';
import type { z } from 'zod';
import { CaseConfig } from './schema.js';
import { describeIssue, knownKeysAt } from './messages.js';
import { checkReferences } from './references.js';

export const MAX_CASE_BYTES = 1 << 20;

export interface Position {
  line: number;
  col: number;
}

export interface LoadedCase {
  /** Path as given (absolute or relative to the cwd). */
  file: string;
  /** Display name: `name:` or the path relative to the suite root. */
  name: string;
  /** Path relative to the suite root, used for ordering and sharding. */
  id: string;
  config: CaseConfig;
  source: string;
  /** Position of the node at a path such as ['steps', 0, 'expect', 'log', 1]. */
  positionOf(path: readonly (string | number)[]): Position;
}

/** A case that could not be loaded: one precise message, with where. */
export class CaseError extends Error {
  constructor(
    readonly file: string,
    readonly pos: Position,
    readonly detail: string,
  ) {
    super(`${file}:${pos.line}:${pos.col}: ${detail}`);
  }
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function posAt(lc: LineCounter, offset: number): Position {
  const p = lc.linePos(offset);
  return { line: p.line, col: p.col };
}

/** Walks the YAML AST and rejects keys that could pollute prototypes. */
function rejectDangerousKeys(file: string, lc: LineCounter, node: unknown): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = pair.key;
      if (isScalar(key) && typeof key.value === 'string' && FORBIDDEN_KEYS.has(key.value)) {
        throw new CaseError(file, posAt(lc, key.range?.[0] ?? 0), `key "${key.value}" is not allowed`);
      }
      rejectDangerousKeys(file, lc, pair.value);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) rejectDangerousKeys(file, lc, item);
  }
}

function nodeAt(doc: Document, path: readonly (string | number)[]): YamlNode | undefined {
  let node: unknown = doc.contents;
  let last: YamlNode | undefined = doc.contents ?? undefined;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return last;
      // For a key that exists, the key node is a better anchor for "unknown key" style errors.
      last = (pair.value as YamlNode | null) ?? (pair.key as YamlNode);
      node = pair.value;
      if (node == null) return pair.key as YamlNode;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item == null) return last;
      last = item as YamlNode;
      node = item;
    } else {
      return last;
    }
  }
  return last;
}

function keyNodeAt(doc: Document, path: readonly (string | number)[], key: string): YamlNode | undefined {
  const parent = path.length === 0 ? doc.contents : nodeAt(doc, path);
  if (isMap(parent)) {
    const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
    if (pair) return pair.key as YamlNode;
  }
  return undefined;
}

/**
 * Where a position inside a string value (line/col of the parsed text) is in the file: exact for
 * literal block scalars (`|`) and one-line scalars; undefined (use the node) otherwise.
 */
function innerPosition(doc: Document, lc: LineCounter, source: string, path: readonly (string | number)[], inner: Position): Position | undefined {
  const node = nodeAt(doc, path);
  if (!isScalar(node) || !node.range) return undefined;
  const start = posAt(lc, node.range[0]);
  if (node.type === 'BLOCK_LITERAL') {
    const lines = source.split(/\r?\n/);
    const header = lines[start.line - 1] ?? '';
    const explicit = /^[|>][+-]?(\d)/.exec(header.slice(start.col - 1));
    let indent: number;
    if (explicit) {
      const parentIndent = /^ */.exec(header)![0].length;
      indent = parentIndent + Number(explicit[1]);
    } else {
      const first = lines.slice(start.line).find((l) => l.trim() !== '');
      indent = first ? /^ */.exec(first)![0].length : 0;
    }
    return { line: start.line + inner.line, col: indent + inner.col };
  }
  if (inner.line === 1 && (node.type === 'PLAIN' || node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE')) {
    const end = posAt(lc, node.range[1]);
    if (end.line !== start.line) return undefined;
    return { line: start.line, col: start.col + inner.col - 1 + (node.type === 'PLAIN' ? 0 : 1) };
  }
  return undefined;
}

export function caseIdFor(file: string, root: string | undefined): string {
  return root ? relative(root, file) || basename(file) : file;
}

/**
 * Parses and validates case text. Throws CaseError with file:line:col on any problem.
 *
 * Fast path: js-yaml builds the plain data in a fraction of the time the `yaml` package takes,
 * and positions are computed lazily (with `yaml`) only when something asks for one, which is
 * for errors and failed expectations. Anything the fast path does not fully vouch for (anchors,
 * aliases, tags, a parse error, an invalid case) goes through parseCaseFull(), which gives the
 * precise error.
 */
export function parseCase(source: string, file: string, id: string = file): LoadedCase {
  const data = source.length <= MAX_CASE_BYTES && !source.includes('\u0000') ? fastLoad(source) : undefined;
  if (data !== undefined) {
    const parsed = CaseConfig.safeParse(data);
    if (parsed.success) {
      let full: { doc: Document; lc: LineCounter } | undefined;
      const fullDoc = (): { doc: Document; lc: LineCounter } => {
        if (!full) {
          const lc = new LineCounter();
          full = { doc: parseDocument(source, { ...YAML_OPTIONS, lineCounter: lc }), lc };
        }
        return full;
      };
      const positionOf = (path: readonly (string | number)[]): Position =>
        lazyPosition(() => {
          const { doc, lc } = fullDoc();
          return posAt(lc, nodeAt(doc, path)?.range?.[0] ?? 0);
        });
      const config = parsed.data;
      const loaded: LoadedCase = { file, id, name: config.name ?? id, config, source, positionOf };
      if (!checkReferences(loaded)) return loaded;
    }
  }
  return parseCaseFull(source, file, id);
}

/** Anchors, aliases and tags: left to the full parser (alias-bomb limits, tag refusal). */
const NEEDS_FULL_PARSER = /(?:^|[\s,[{])[&*!]\S|__proto__|constructor|prototype/m;

/** js-yaml's load of a plain case, or undefined when the full parser must decide. */
function fastLoad(source: string): unknown {
  if (NEEDS_FULL_PARSER.test(source)) return undefined;
  try {
    const data = jsYamlLoad(source);
    return data !== null && typeof data === 'object' && !Array.isArray(data) ? data : undefined;
  } catch {
    return undefined;
  }
}

/** A position resolved on first read (the YAML node ranges are only parsed when needed). */
function lazyPosition(get: () => Position): Position {
  let p: Position | undefined;
  return {
    get line(): number {
      return (p ??= get()).line;
    },
    get col(): number {
      return (p ??= get()).col;
    },
  };
}

const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  prettyErrors: false,
  uniqueKeys: true,
  merge: false,
  strict: true,
  // Only the core schema: no !!js/function or other executable tags.
  schema: 'core',
  customTags: [],
  keepSourceTokens: false,
};

/** The full parser: `yaml` with node ranges, for precise errors. */
function parseCaseFull(source: string, file: string, id: string): LoadedCase {
  if (source.length > MAX_CASE_BYTES) {
    throw new CaseError(file, { line: 1, col: 1 }, `file is ${source.length} bytes; a case may be at most ${MAX_CASE_BYTES} bytes`);
  }
  const nul = source.indexOf('\u0000');
  if (nul >= 0) {
    const lc0 = new LineCounter();
    parseDocument(source.slice(0, nul), { lineCounter: lc0 });
    throw new CaseError(file, posAt(lc0, nul), 'binary data (NUL byte): expected a YAML text file');
  }
  const lc = new LineCounter();
  const doc = parseDocument(source, { ...YAML_OPTIONS, lineCounter: lc });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    let at = posAt(lc, problem.pos[0]);
    let msg = problem.message.split('\n')[0] ?? problem.message;
    msg = msg.replace(/ at line \d+, column \d+:?$/, '');
    if (problem.code === 'DUPLICATE_KEY') {
      const key = /^[^:\n]*/.exec(source.slice(problem.pos[0]))?.[0].trim();
      msg = key ? `key "${key}" appears twice in this mapping` : 'a key appears twice in this mapping';
    }
    if (problem.code === 'MULTIPLE_DOCS') msg = 'a case is one YAML document, found a second one (remove the "---")';
    let at0 = at;
    if (problem.code === 'TAG_RESOLVE_FAILED' || /Unresolved tag/i.test(msg)) {
      const tag = /^!\S*/.exec(source.slice(problem.pos[0]))?.[0];
      msg = `tag ${tag ?? msg.replace(/^Unresolved tag: /, '')} is not allowed: cases are plain YAML (no !!js/function, !!binary or custom tags)`;
    }
    if (problem.code === 'MISSING_CHAR' && /quote/.test(msg)) {
      // The parser notices at the end of the file; point at the quote that is never closed.
      const q = msg.includes("'") ? "'" : '"';
      const lines = source.slice(0, problem.pos[0]).split('\n');
      for (const [i, l] of lines.entries()) {
        const n = l.split(q).length - 1;
        if (n % 2 === 1) {
          at0 = { line: i + 1, col: l.lastIndexOf(q) + 1 };
          break;
        }
      }
      msg = `missing closing ${q}: the quoted string that starts here never ends`;
    }
    at = at0;
    if (/flow-seq-start|flow-seq-end/.test(msg)) msg = `${msg} (inside { } or [ ], quote page references such as "victim.buf[1]")`;
    throw new CaseError(file, at, `YAML: ${msg}`);
  }
  rejectDangerousKeys(file, lc, doc.contents);
  let data: unknown;
  try {
    // maxAliasCount guards against alias bombs (billion laughs).
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // toJS errors carry no position: point at the alias they are about.
    let at: Position = { line: 1, col: 1 };
    let detail = msg;
    const unresolved = /Unresolved alias.*: (\S+)$/.exec(msg);
    visit(doc, {
      Alias(_k, node) {
        if (unresolved && node.source !== unresolved[1]) return undefined;
        if (node.range) at = posAt(lc, node.range[0]);
        return visit.BREAK;
      },
    });
    if (/Excessive alias count/.test(msg)) detail = 'too many aliases to expand (an alias bomb?): a case may expand at most 100 aliases';
    else if (unresolved) detail = `alias *${unresolved[1]} refers to no anchor &${unresolved[1]} before it`;
    throw new CaseError(file, at, `YAML: ${detail}`);
  }
  if (data === null || data === undefined) {
    throw new CaseError(file, { line: 1, col: 1 }, 'empty case: expected a mapping with name, machine, workload, steps and expect');
  }
  const positionOf = (path: readonly (string | number)[]): Position => {
    const n = nodeAt(doc, path);
    const off = n?.range?.[0] ?? 0;
    return posAt(lc, off);
  };
  const parsed = CaseConfig.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    let pos = positionOf(path);
    if (issue.code === 'unrecognized_keys') {
      const k = keyNodeAt(doc, path, issue.keys[0] ?? '');
      if (k?.range) pos = posAt(lc, k.range[0]);
    }
    throw new CaseError(file, pos, describeIssue(issue, path, knownKeysAt(CaseConfig, path)));
  }
  const config = parsed.data;
  const loaded: LoadedCase = { file, id, name: config.name ?? id, config, source, positionOf };
  const refErr = checkReferences(loaded);
  if (refErr) {
    const inner = refErr.inner ? innerPosition(doc, lc, source, refErr.path, refErr.inner) : undefined;
    throw new CaseError(file, inner ?? positionOf(refErr.path), refErr.message);
  }
  return loaded;
}

/** Reads and parses a case file. Throws CaseError (never a raw fs error) on problems. */
export function loadCase(file: string, root?: string): LoadedCase {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw new CaseError(file, { line: 1, col: 1 }, 'cannot read the file');
  }
  if (size > MAX_CASE_BYTES) {
    throw new CaseError(file, { line: 1, col: 1 }, `file is ${size} bytes; a case may be at most ${MAX_CASE_BYTES} bytes`);
  }
  const source = readFileSync(file, 'utf8');
  return parseCase(source, file, caseIdFor(file, root));
}
