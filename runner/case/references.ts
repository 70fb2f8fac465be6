// Cross-reference checks the schema cannot express: every name a case uses must refer to
// something the case declares, and every page must lie inside what it names.
import type { LoadedCase } from './load.js';
import type { Expectation, StepConfig } from './schema.js';
import { didYouMean } from './messages.js';
import { parseSize } from './size.js';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { MceParseError, parseMce, tokenize, validateRecords, type MceRecord, type Token } from '../../tsrc/tools/mce-inject/index.js';

export interface RefProblem {
  path: (string | number)[];
  message: string;
  /** Position inside the string value at `path` (1-based line and column of the text), e.g. an mce-inject parse error. */
  inner?: { line: number; col: number };
}

interface Names {
  /** Pages of physical memory, for pfn:/phys: references. */
  memPages?: bigint;
  memory?: string;
  processes: Map<string, { threads: Set<string>; mappings: Map<string, number> }>;
  files: Map<string, number>;
  devices: Set<string>;
  memcgs: Set<string>;
}

function hint(word: string, choices: Iterable<string>): string {
  const h = didYouMean(word, [...choices]);
  return h ? ` (did you mean "${h}"?)` : '';
}

const PROC_PAGE = /^([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)(?:\[(\d+)\])?/;
const FILE_PAGE = /^file:([A-Za-z_][\w.-]*)(?:\[(\d+)\])?$/;

export function checkReferences(c: LoadedCase): RefProblem | undefined {
  const cfg = c.config;
  const names: Names = { processes: new Map(), files: new Map(), devices: new Set(['sda']), memcgs: new Set() };
  const w = cfg.workload ?? {};
  for (const [i, d] of (w.devices ?? []).entries()) {
    if (names.devices.has(d.name) && d.name !== 'sda') return { path: ['workload', 'devices', i, 'name'], message: `device "${d.name}" is declared twice` };
    names.devices.add(d.name);
  }
  for (const [i, m] of (w.memcgs ?? []).entries()) {
    if (names.memcgs.has(m.name)) return { path: ['workload', 'memcgs', i, 'name'], message: `memcg "${m.name}" is declared twice` };
    names.memcgs.add(m.name);
  }
  for (const [i, f] of (w.files ?? []).entries()) {
    if (names.files.has(f.name)) return { path: ['workload', 'files', i, 'name'], message: `file "${f.name}" is declared twice` };
    if (f.device && !names.devices.has(f.device)) return { path: ['workload', 'files', i, 'device'], message: `no device named "${f.device}"${hint(f.device, names.devices)}` };
    for (const key of ['dirty', 'holes', 'writeback', 'cached'] as const) {
      const v = f[key];
      if (Array.isArray(v)) {
        const j = v.findIndex((p) => p >= f.pages);
        if (j >= 0) return { path: ['workload', 'files', i, key, j], message: `page ${v[j]} is beyond the file's ${f.pages} pages` };
      }
    }
    names.files.set(f.name, f.pages);
  }
  for (const [i, p] of (w.processes ?? []).entries()) {
    if (names.processes.has(p.name)) return { path: ['workload', 'processes', i, 'name'], message: `process "${p.name}" is declared twice` };
    if (p.memcg && !names.memcgs.has(p.memcg)) return { path: ['workload', 'processes', i, 'memcg'], message: `no memcg named "${p.memcg}"${hint(p.memcg, names.memcgs)}` };
    let maps = new Map<string, number>();
    if (p.parent) {
      const parent = names.processes.get(p.parent);
      if (!parent) {
        const later = (w.processes ?? []).slice(i + 1).some((q) => q.name === p.parent);
        return { path: ['workload', 'processes', i, 'parent'], message: `no earlier process named "${p.parent}"${later ? ` (processes are created in order: declare "${p.parent}" before "${p.name}")` : hint(p.parent, names.processes.keys())}` };
      }
      maps = new Map(parent.mappings);
    }
    const threads = new Set<string>();
    for (const [j, t] of (p.threads ?? []).entries()) {
      if (threads.has(t.name)) return { path: ['workload', 'processes', i, 'threads', j, 'name'], message: `thread "${t.name}" is declared twice` };
      threads.add(t.name);
    }
    for (const [j, m] of (p.mappings ?? []).entries()) {
      if (maps.has(m.name)) return { path: ['workload', 'processes', i, 'mappings', j, 'name'], message: `mapping "${m.name}" is declared twice in "${p.name}"` };
      const needsFile = m.kind === 'file' || m.kind === 'hugetlbfs';
      if (needsFile && !m.file) return { path: ['workload', 'processes', i, 'mappings', j], message: `a ${m.kind} mapping needs "file:"` };
      if (m.file) {
        const size = names.files.get(m.file);
        if (size === undefined) return { path: ['workload', 'processes', i, 'mappings', j, 'file'], message: `no file named "${m.file}"${hint(m.file, names.files.keys())}` };
        if ((m.offset ?? 0) + m.pages > size && m.kind !== 'hugetlbfs')
          return { path: ['workload', 'processes', i, 'mappings', j, 'pages'], message: `mapping covers pages ${m.offset ?? 0}..${(m.offset ?? 0) + m.pages - 1} but file "${m.file}" has ${size} pages` };
      }
      for (const key of ['swapped-out', 'swap-cache'] as const) {
        const v = m[key];
        const k = v?.findIndex((x) => x >= m.pages) ?? -1;
        if (v && k >= 0) return { path: ['workload', 'processes', i, 'mappings', j, key, k], message: `page ${v[k]} is beyond the mapping's ${m.pages} pages` };
      }
      maps.set(m.name, m.pages);
    }
    names.processes.set(p.name, { threads, mappings: maps });
  }
  // KSM partners must exist.
  for (const [i, p] of (w.processes ?? []).entries()) {
    for (const [j, m] of (p.mappings ?? []).entries()) {
      if (m.ksm) {
        const err = checkMappingName(names, m.ksm);
        if (err) return { path: ['workload', 'processes', i, 'mappings', j, 'ksm'], message: err };
      }
    }
  }
  // Machine: memory size and CPUs.
  const mem = parseSize(cfg.machine?.memory ?? '4G');
  if (mem < 16n << 20n) return { path: ['machine', 'memory'], message: `machine.memory: expected at least 16M, got ${String(cfg.machine?.memory)}` };
  if (mem > 64n << 40n) return { path: ['machine', 'memory'], message: `machine.memory: expected at most 64T, got ${String(cfg.machine?.memory)}` };
  names.memPages = mem / 4096n;
  names.memory = String(cfg.machine?.memory ?? '4G');
  const cpus = cfg.machine?.cpus ?? 2;
  const offline = new Set(cfg.machine?.['offline-cpus'] ?? []);
  for (const [i, off] of (cfg.machine?.['offline-cpus'] ?? []).entries()) {
    if (off >= cpus) return { path: ['machine', 'offline-cpus', i], message: `CPU ${off} does not exist (the machine has ${cpus} CPUs: 0-${cpus - 1})` };
    if (off === 0) return { path: ['machine', 'offline-cpus', i], message: 'CPU 0 cannot be offline' };
  }
  const machine: MachineShape = { cpus, offline, banks: cfg.machine?.mca?.banks ?? 10 };
  for (const [i, b] of (cfg.machine?.mca?.['shared-banks'] ?? []).entries()) {
    if (b >= machine.banks) return { path: ['machine', 'mca', 'shared-banks', i], message: bankMessage(b, machine) };
  }
  const cpuProblem = (cpu: number): string | undefined =>
    cpu >= cpus ? `CPU ${cpu} does not exist (the machine has ${cpus} CPUs: 0-${cpus - 1})` : offline.has(cpu) ? `CPU ${cpu} is offline (machine.offline-cpus)` : undefined;
  for (const [i, p] of (w.processes ?? []).entries()) {
    const e = p.cpu !== undefined ? cpuProblem(p.cpu) : undefined;
    if (e) return { path: ['workload', 'processes', i, 'cpu'], message: e };
    for (const [j, t] of (p.threads ?? []).entries()) {
      const te = t.cpu !== undefined ? cpuProblem(t.cpu) : undefined;
      if (te) return { path: ['workload', 'processes', i, 'threads', j, 'cpu'], message: te };
    }
  }
  // Steps.
  for (const [i, s] of (cfg.steps ?? []).entries()) {
    const err = checkStep(names, s, machine, c.file);
    if (err) return { ...err, path: ['steps', i, ...err.path] };
    if (s.fork) {
      const parent = names.processes.get(s.fork.process.split('.')[0] ?? '');
      if (names.processes.has(s.fork.child)) return { path: ['steps', i, 'fork', 'child'], message: `process "${s.fork.child}" already exists` };
      names.processes.set(s.fork.child, { threads: new Set(), mappings: new Map(parent?.mappings ?? []) });
    }
    if (s.expect) {
      const e = checkExpect(names, s.expect);
      if (e) return { path: ['steps', i, 'expect', ...e.path], message: e.message };
    }
  }
  if (cfg.expect) {
    const e = checkExpect(names, cfg.expect);
    if (e) return { path: ['expect', ...e.path], message: e.message };
  }
  return undefined;
}

function checkProc(names: Names, ref: string): string | undefined {
  const [proc, thread] = ref.split('.');
  const p = names.processes.get(proc ?? '');
  if (!p) return `no process named "${proc}"${hint(proc ?? '', names.processes.keys())}`;
  if (thread !== undefined && thread !== 'main' && !p.threads.has(thread)) return `process "${proc}" has no thread "${thread}"${hint(thread, p.threads)}`;
  return undefined;
}

function checkMappingName(names: Names, ref: string): string | undefined {
  const [proc, mapping] = ref.split('.');
  const p = names.processes.get(proc ?? '');
  if (!p) return `no process named "${proc}"${hint(proc ?? '', names.processes.keys())}`;
  if (!mapping || !p.mappings.has(mapping)) return `process "${proc}" has no mapping "${mapping}"${hint(mapping ?? '', p.mappings.keys())}`;
  return undefined;
}

/** Checks a page reference; returns a message, or undefined when it names a real page. */
export function checkPageRef(names: Names, ref: string): string | undefined {
  const pm0 = /^(pfn|phys):(0x[0-9a-fA-F]+|\d+)$/.exec(ref);
  if (pm0 && names.memPages !== undefined) {
    const v = BigInt(pm0[2]!);
    const pfn = pm0[1] === 'pfn' ? v : v / 4096n;
    if (pfn >= names.memPages) {
      const what = pm0[1] === 'pfn' ? `pfn ${pm0[2]}` : `physical address ${pm0[2]}`;
      const range = pm0[1] === 'pfn' ? `pfns 0x0-0x${(names.memPages - 1n).toString(16)}` : `addresses 0x0-0x${(names.memPages * 4096n - 1n).toString(16)}`;
      return `${what} is beyond memory (machine.memory ${names.memory}: ${range})`;
    }
    return undefined;
  }
  const fm = FILE_PAGE.exec(ref);
  if (fm) {
    const size = names.files.get(fm[1]!);
    if (size === undefined) return `no file named "${fm[1]}"${hint(fm[1]!, names.files.keys())}`;
    const page = Number(fm[2] ?? 0);
    if (page >= size) return `page ${page} is beyond file "${fm[1]}" (${size} pages)`;
    return undefined;
  }
  const pm = PROC_PAGE.exec(ref);
  if (pm && !ref.startsWith('pfn:') && !ref.startsWith('phys:')) {
    const p = names.processes.get(pm[1]!);
    if (!p) return `no process named "${pm[1]}"${hint(pm[1]!, names.processes.keys())}`;
    const size = p.mappings.get(pm[2]!);
    if (size === undefined) return `process "${pm[1]}" has no mapping "${pm[2]}"${hint(pm[2]!, p.mappings.keys())}`;
    const page = Number(pm[3] ?? 0);
    if (page >= size) return `page ${page} is beyond mapping "${pm[1]}.${pm[2]}" (${size} pages)`;
  }
  return undefined;
}

function checkStep(names: Names, s: StepConfig, machine: MachineShape, file: string): RefProblem | undefined {
  const cpus = machine.cpus;
  const pageKeys = ['corrupt-pfn', 'unpoison-pfn', 'hard-offline', 'soft-offline', 'swap-out'] as const;
  for (const k of pageKeys) {
    const v = s[k];
    if (typeof v === 'string' && /[.:[]/.test(v) && !/^(0x[0-9a-f]+|\d+)$/i.test(v)) {
      const e = checkPageRef(names, v);
      if (e) return { path: [k], message: e };
    }
  }
  const withProc: [string, { process: string } | undefined][] = [
    ['madvise', s.madvise],
    ['access', s.access],
    ['read', s.read],
    ['write', s.write],
    ['fsync', s.fsync],
    ['msync', s.msync],
    ['munmap', s.munmap],
    ['prctl', s.prctl],
    ['fork', s.fork],
  ];
  for (const [k, v] of withProc) {
    if (!v) continue;
    const e = checkProc(names, v.process);
    if (e) return { path: [k, 'process'], message: e };
  }
  if (s.exit) {
    const e = checkProc(names, s.exit);
    if (e) return { path: ['exit'], message: e };
  }
  for (const [k, v] of [['madvise', s.madvise], ['access', s.access]] as const) {
    if (v) {
      const e = checkPageRef(names, v.page);
      if (e) return { path: [k, 'page'], message: e };
    }
  }
  for (const [k, v] of [['read', s.read], ['write', s.write], ['fsync', s.fsync]] as const) {
    if (v && !names.files.has(v.file)) return { path: [k, 'file'], message: `no file named "${v.file}"${hint(v.file, names.files.keys())}` };
    if (v && 'page' in v && v.page !== undefined) {
      const size = names.files.get(v.file) ?? 0;
      if (v.page >= size) return { path: [k, 'page'], message: `page ${v.page} is beyond file "${v.file}" (${size} pages)` };
    }
  }
  for (const [k, v] of [['msync', s.msync], ['munmap', s.munmap]] as const) {
    if (v) {
      const full = v.mapping.includes('.') ? v.mapping : `${v.process.split('.')[0]}.${v.mapping}`;
      const e = checkMappingName(names, full);
      if (e) return { path: [k, 'mapping'], message: e };
    }
  }
  if (s.truncate && !names.files.has(s.truncate.file)) return { path: ['truncate', 'file'], message: `no file named "${s.truncate.file}"${hint(s.truncate.file, names.files.keys())}` };
  if (s.writeback && !names.files.has(s.writeback)) return { path: ['writeback'], message: `no file named "${s.writeback}"${hint(s.writeback, names.files.keys())}` };
  if (s.mce) {
    if (s.mce.process) {
      const e = checkProc(names, s.mce.process);
      if (e) return { path: ['mce', 'process'], message: e };
    }
    if (s.mce.page) {
      const e = checkPageRef(names, s.mce.page);
      if (e) return { path: ['mce', 'page'], message: e };
    }
    if (!s.mce.records && !s.mce.file) return { path: ['mce'], message: 'an mce step needs "records:" or "file:"' };
    if (s.mce.records !== undefined && s.mce.file !== undefined) return { path: ['mce', 'file'], message: 'an mce step takes "records:" or "file:", not both' };
    for (const [i, c] of (s.mce['no-answer'] ?? []).entries()) if (c >= cpus) return { path: ['mce', 'no-answer', i], message: `CPU ${c} does not exist (the machine has ${cpus} CPUs: 0-${cpus - 1})` };
    if (s.mce.records !== undefined) {
      const e = checkMceText(names, s.mce.records, machine);
      if (e) return { path: ['mce', 'records'], message: e.message, ...(e.at ? { inner: e.at } : {}) };
    }
    if (s.mce.file !== undefined) {
      const path = resolve(dirname(file), s.mce.file);
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        return { path: ['mce', 'file'], message: `cannot read mce-inject file "${s.mce.file}" (paths are relative to the case's directory)` };
      }
      const e = checkMceText(names, text, machine);
      if (e) return { path: ['mce', 'file'], message: `${s.mce.file}${e.at ? `:${e.at.line}:${e.at.col}` : ''}: ${e.message}` };
    }
  }
  if (s.corrected) {
    const e = checkPageRef(names, s.corrected.page);
    if (e) return { path: ['corrected', 'page'], message: e };
    if (s.corrected.cpu !== undefined && s.corrected.cpu >= cpus) return { path: ['corrected', 'cpu'], message: `CPU ${s.corrected.cpu} does not exist (the machine has ${cpus} CPUs: 0-${cpus - 1})` };
    if (s.corrected.cpu !== undefined && machine.offline.has(s.corrected.cpu)) return { path: ['corrected', 'cpu'], message: `CPU ${s.corrected.cpu} is offline (machine.offline-cpus)` };
    if (s.corrected.bank !== undefined && s.corrected.bank >= machine.banks) return { path: ['corrected', 'bank'], message: bankMessage(s.corrected.bank, machine) };
  }
  const actions = Object.keys(s).filter((k) => k !== 'as' && k !== 'expect' && k !== 'repeat');
  if (actions.length === 0) return { path: [], message: 'a step needs one action (corrupt-pfn, madvise, access, mce ...)' };
  if (actions.length > 1) return { path: [actions[1]!], message: `a step has one action; found "${actions[0]}" and "${actions[1]}"` };
  return undefined;
}

function checkExpect(names: Names, e: Expectation): RefProblem | undefined {
  for (const [i, sig] of (e.signals ?? []).entries()) {
    const err = checkProc(names, sig.to);
    if (err) return { path: ['signals', i, 'to'], message: err };
    if (sig.addr && sig.addr !== 'none') {
      const pe = checkPageRef(names, sig.addr);
      if (pe) return { path: ['signals', i, 'addr'], message: pe };
    }
    if (sig.signo === 'SIGKILL' && (sig.code || sig.lsb !== undefined)) return { path: ['signals', i], message: 'contradictory expectations: SIGKILL carries no si_code or si_addr_lsb (remove code: and lsb:)' };
  }
  for (const key of ['killed', 'alive'] as const) {
    for (const [i, who] of (e[key] ?? []).entries()) {
      const err = checkProc(names, who.split(':')[0] ?? who);
      if (err) return { path: [key, i], message: err };
    }
  }
  const both = (e.killed ?? []).map((k) => k.split(':')[0]).find((k) => (e.alive ?? []).includes(k ?? ''));
  if (both) return { path: ['alive'], message: `contradictory expectations: "${both}" is expected both killed and alive` };
  if (e.ret !== undefined && e.errno !== undefined && e.errno !== 0 && e.ret === 0) return { path: ['errno'], message: `contradictory expectations: ret 0 (success) with errno ${e.errno}` };
  for (const key of ['kpageflags', 'data', 'pagemap'] as const) {
    for (const ref of Object.keys(e[key] ?? {})) {
      const err = checkPageRef(names, ref);
      if (err) return { path: [key, ref], message: err };
    }
  }
  return undefined;
}

interface MachineShape {
  cpus: number;
  offline: Set<number>;
  banks: number;
}

function bankMessage(bank: number, m: MachineShape): string {
  return `bank ${bank} does not exist: the machine has ${m.banks} MCA banks (0-${m.banks - 1}; set machine.mca.banks for more)`;
}

const MCE_TEMPLATE = /\{(hex)?(pfn|addr|phys)(?::([^}]+))?\}/g;

/**
 * Parses mce-inject text as the step will inject it, and checks every record's CPU and bank
 * against the machine. Templates ({phys:REF}) are checked, then replaced by a number of the same
 * width so that columns after them stay right.
 */
export function checkMceText(names: Names, text: string, m: MachineShape): { message: string; at?: { line: number; col: number } } | undefined {
  for (const t of text.matchAll(MCE_TEMPLATE)) {
    if (t[3]) {
      const e = checkPageRef(names, t[3]);
      if (e) return { message: `${t[0]}: ${e}`, at: lineColOf(text, t.index ?? 0) };
    }
  }
  const plain = text.replace(MCE_TEMPLATE, (w) => `0x${'0'.repeat(Math.max(1, w.length - 2))}`);
  let records: MceRecord[];
  let tokens: Token[];
  try {
    records = parseMce(plain);
    tokens = tokenize(plain);
  } catch (e) {
    if (e instanceof MceParseError) return { message: `mce-inject: ${e.detail}`, at: { line: e.line, col: e.col } };
    throw e;
  }
  if (records.length === 0) return { message: 'mce-inject: no records (expected CPU n BANK b STATUS ... )', at: { line: 1, col: 1 } };
  const starts = tokens.filter((t) => t.kind === 'keyword' && (t.value === 'CPU' || t.value === 'MCE'));
  const online = { isOnline: (cpu: number): boolean => cpu < m.cpus && !m.offline.has(cpu) };
  for (const err of validateRecords(records, { cpus: online, mca: { bankCount: m.banks } })) {
    const r = records[err.index]!;
    const start = starts[err.index];
    const end = starts[err.index + 1];
    const inRecord = tokens.filter((t) => start && (t.line > start.line || (t.line === start.line && t.col >= start.col)) && (!end || t.line < end.line || (t.line === end.line && t.col < end.col)));
    let at = start ? { line: start.line, col: start.col } : { line: 1, col: 1 };
    let message: string;
    if (!online.isOnline(r.cpu)) {
      message = r.cpu >= m.cpus ? `mce-inject: record ${err.index + 1}: cpu ${r.cpu} not online (the machine has ${m.cpus} CPUs: 0-${m.cpus - 1})` : `mce-inject: record ${err.index + 1}: cpu ${r.cpu} not online (machine.offline-cpus)`;
      const n = inRecord[1];
      if (n && n.kind === 'number') at = { line: n.line, col: n.col };
    } else {
      message = `mce-inject: record ${err.index + 1}: ${err.message}; the machine has ${m.banks} banks (machine.mca.banks)`;
      // The bank number: after the last BANK keyword, or `CPU n b`.
      const bankKw = inRecord.map((t, i) => [t, i] as const).filter(([t]) => t.kind === 'keyword' && t.value === 'BANK').pop();
      const n = bankKw ? inRecord[bankKw[1] + 1] : inRecord[2];
      if (n && n.kind === 'number') at = { line: n.line, col: n.col };
    }
    return { message, at };
  }
  return undefined;
}

function lineColOf(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, col: offset - before.lastIndexOf('\n') };
}
