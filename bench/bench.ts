// `npm run bench`: start-up, library, throughput, machine size, reverse maps, an injection storm
// and (where QEMU is set up) sim vs QEMU; prints a table against the targets of issue #9 and
// writes reports/bench.json. Every figure is a median over several runs.
//
//   node dist/bench/bench.js [--quick] [--no-qemu] [--only section,section]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, type Dirent } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTypicalCases, typicalCase } from './gen.js';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..', '..');
const BIN = join(ROOT, 'bin', 'hwpsim.js');
const MODEL = join(here, 'model.js');

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const NO_QEMU = argv.includes('--no-qemu');
const onlyArg = argv.find((a) => a.startsWith('--only='))?.slice(7) ?? (argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined);
const ONLY = onlyArg ? new Set(onlyArg.split(',')) : undefined;
const want = (section: string): boolean => !ONLY || ONLY.has(section);

export interface Row {
  section: string;
  name: string;
  value: number;
  unit: string;
  /** Human-readable target, e.g. "<= 2x node -e 0". */
  target?: string;
  pass?: boolean;
  note?: string;
  runs?: number[];
}

const rows: Row[] = [];
const notes: string[] = [];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function add(r: Row): Row {
  rows.push(r);
  const mark = r.pass === undefined ? '' : r.pass ? '  PASS' : '  MISS';
  process.stderr.write(`  ${r.section.padEnd(11)} ${r.name.padEnd(44)} ${fmt(r.value).padStart(10)} ${r.unit.padEnd(8)}${r.target ? ` target ${r.target}` : ''}${mark}\n`);
  return r;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toString();
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** CPU time (user + system, ms) of this process's waited-for children (/proc/self/stat cutime + cstime). */
function childrenCpuMs(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 16 and 17 (1-based) of stat; f starts at field 3.
    return ((Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}
const CLK_TCK = 100;

/** CPU ms of the last command run by wall() (children's user + system time). */
let lastCpuMs = NaN;

/** Wall time of one command, in ms (its CPU time is left in lastCpuMs). */
function wall(args: string[], opts: { cwd?: string; okCodes?: number[] } = {}): number {
  const c0 = childrenCpuMs();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = performance.now() - t0;
  lastCpuMs = childrenCpuMs() - c0;
  const ok = opts.okCodes ?? [0];
  if (!ok.includes(r.status ?? -1)) throw new Error(`${args.join(' ')} exited ${r.status}: ${(r.stderr ?? '').slice(-500)}`);
  return ms;
}

/** CPU ms (median) of the runs of the last wallRuns(). */
let lastCpuMedian = NaN;

function wallRuns(n: number, args: string[], opts: { cwd?: string; okCodes?: number[] } = {}): number[] {
  const out: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(wall(args, opts));
    cpu.push(lastCpuMs);
  }
  lastCpuMedian = median(cpu);
  return out;
}

/** " (cpu N ms)" for notes: CPU time is what a loaded machine does not inflate. */
const cpuNote = (): string => `cpu ${fmt(lastCpuMedian)} ms`;

/** Runs a model scenario in a child process; returns its JSON. */
function model(...args: (string | number)[]): Record<string, number> {
  const r = spawnSync(process.execPath, ['--expose-gc', MODEL, ...args.map(String)], { cwd: ROOT, encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`model ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-800)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

function modelMedian(runs: number, ...args: (string | number)[]): Record<string, number> {
  const all = Array.from({ length: runs }, () => model(...args));
  const out: Record<string, number> = {};
  for (const k of Object.keys(all[0]!)) out[k] = median(all.map((o) => o[k]!));
  return out;
}

const LOAD0 = loadavg();
const REPORTS_TMP = mkdtempSync(join(tmpdir(), 'hwpsim-bench-reports-'));
const runArgs = (...more: string[]): string[] => [BIN, 'run', '--quiet', '--reports-dir', REPORTS_TMP, ...more];

// ---- start-up --------------------------------------------------------------------------------

function startup(): void {
  const n = QUICK ? 5 : 9;
  const node = wallRuns(n, ['-e', '0']);
  const nodeMs = median(node);
  add({ section: 'startup', name: 'node -e 0', value: nodeMs, unit: 'ms', runs: node, note: cpuNote() });
  const ver = wallRuns(n, [BIN, '--version']);
  add({ section: 'startup', name: 'hwpsim --version', value: median(ver), unit: 'ms', runs: ver, target: `<= ${fmt(2 * nodeMs)} ms (2x node)`, pass: median(ver) <= 2 * nodeMs, note: cpuNote() });
  const empty = wallRuns(n, runArgs('--grep', 'nomatch-at-all', '--pass-with-no-tests'));
  add({ section: 'startup', name: 'hwpsim run (nothing selected)', value: median(empty), unit: 'ms', runs: empty, target: `<= ${fmt(2 * nodeMs)} ms (2x node)`, pass: median(empty) <= 2 * nodeMs, note: cpuNote() });
}

// ---- the built-in library --------------------------------------------------------------------

function countLibrary(): number {
  let n = 0;
  const walk = (d: string): void => {
    for (const e of readdirSafe(d)) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e.name)) n++;
    }
  };
  walk(join(ROOT, 'cases'));
  return n;
}

function readdirSafe(d: string): Dirent[] {
  try {
    return readdirSync(d, { withFileTypes: true });
  } catch {
    return [];
  }
}

function library(): void {
  const count = countLibrary();
  const n = 3;
  // The library is expected to pass; failures still time the run (exit 1).
  const ok = [0, 1];
  const j1 = wallRuns(n, runArgs('--jobs', '1'), { okCodes: ok });
  add({ section: 'library', name: `built-in library, ${count} cases, --jobs 1`, value: median(j1), unit: 'ms', runs: j1, note: cpuNote() });
  const jd = wallRuns(n, runArgs(), { okCodes: ok });
  const enough = count >= 300;
  add({
    section: 'library',
    name: `built-in library, ${count} cases, default jobs (${availableParallelism()})`,
    value: median(jd),
    unit: 'ms',
    runs: jd,
    target: '< 1500 ms (300+ cases)',
    pass: median(jd) < 1500,
    note: `${cpuNote()}${enough ? '' : `; the library has ${count} case files, not 300 yet`}`,
  });
  add({ section: 'library', name: 'library cases', value: count, unit: 'cases' });
}

// ---- throughput ------------------------------------------------------------------------------

function throughput(): void {
  const N = QUICK ? 2000 : 10000;
  const dir = mkdtempSync(join(tmpdir(), 'hwpsim-bench-cases-'));
  try {
    writeTypicalCases(dir, N);
    const n = 3;
    const j1 = wallRuns(n, runArgs(dir, '--jobs', '1'));
    const cps1 = (N / median(j1)) * 1000;
    add({ section: 'throughput', name: `${N} typical cases, --jobs 1`, value: cps1, unit: 'cases/s', runs: j1, target: '>= 5000', pass: cps1 >= 5000, note: cpuNote() });
    const j2 = wallRuns(n, runArgs(dir, '--jobs', '2'));
    const cps2 = (N / median(j2)) * 1000;
    add({ section: 'throughput', name: `${N} typical cases, --jobs 2`, value: cps2, unit: 'cases/s', runs: j2, target: `>= ${fmt(1.6 * cps1)} (1.6x)`, pass: cps2 >= 1.6 * cps1, note: cpuNote() });
    add({ section: 'throughput', name: 'speed-up --jobs 2 / --jobs 1', value: cps2 / cps1, unit: 'x', target: '>= 1.6', pass: cps2 / cps1 >= 1.6, ...(cpus().length < 2 ? { note: 'one CPU only' } : {}) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- machine size ----------------------------------------------------------------------------

function size(): void {
  const GiB = 2 ** 30;
  const sizes: [string, number][] = [
    ['1 GiB', GiB],
    ['64 GiB', 64 * GiB],
    ['1 TiB', 1024 * GiB],
    ['4 TiB', 4096 * GiB],
  ];
  const runs = QUICK ? 1 : 3;
  for (const [label, bytes] of sizes) {
    const r = modelMedian(runs, 'size', bytes, 0);
    const last = label === '4 TiB';
    add({ section: 'size', name: `${label} machine: build (first)`, value: r.firstMs!, unit: 'ms', ...(last ? { target: '< 50 ms', pass: r.firstMs! < 50 } : {}) });
    add({ section: 'size', name: `${label} machine: build (warm, median)`, value: r.medianMs!, unit: 'ms' });
    add({ section: 'size', name: `${label} machine: RSS`, value: r.rssMB!, unit: 'MB', ...(last ? { target: '< 150 MB', pass: r.rssMB! < 150 } : {}) });
    const t = modelMedian(runs, 'size', bytes, 1000);
    add({ section: 'size', name: `${label} machine + 1000 pages touched (warm)`, value: t.medianMs!, unit: 'ms', note: `${t.structPages} struct pages, heap +${fmt(t.heapMB!)} MB` });
  }
}

// ---- reverse maps ----------------------------------------------------------------------------

function rmap(): void {
  const runs = QUICK ? 1 : 3;
  for (const n of [10, 1000, 10000]) {
    const r = modelMedian(runs, 'rmap', n, 0);
    const last = n === 10000;
    add({ section: 'rmap', name: `1 injection, page mapped by ${n} processes`, value: r.injectMs!, unit: 'ms', ...(last ? { target: '< 5 ms', pass: r.injectMs! < 5 } : {}), note: `cpu ${fmt(r.injectCpuMs!)} ms; ${r.signalled} signalled (early kill), setup ${fmt(r.setupMs!)} ms` });
  }
  const b = modelMedian(runs, 'rmap', 10, 10000);
  const ten = rows.find((x) => x.name === '1 injection, page mapped by 10 processes')!.value;
  add({ section: 'rmap', name: '1 injection, 10 mappers among 10,010 processes', value: b.injectMs!, unit: 'ms', target: `~ 10 mappers alone (${fmt(ten)} ms), < 1 ms`, pass: b.injectMs! < Math.max(1, 3 * ten), note: `cpu ${fmt(b.injectCpuMs!)} ms; ${b.signalled} signalled` });
}

// ---- injection storm -------------------------------------------------------------------------

function storm(): void {
  const N = QUICK ? 20000 : 100000;
  const r = model('storm', N);
  add({ section: 'storm', name: `${N} corrupt-pfn, 1 TiB busy machine`, value: r.ms!, unit: 'ms', target: '< 5000 ms', pass: r.ms! < 5000, note: `cpu ${fmt(r.cpuMs!)} ms; ${r.poisoned} pages poisoned, ${r.signals} signals, ${r.logLines} log lines` });
  add({ section: 'storm', name: 'storm throughput', value: r.perSec!, unit: 'inj/s' });
  add({ section: 'storm', name: 'storm peak RSS', value: r.maxRssMB!, unit: 'MB', target: 'bounded (< 512 MB)', pass: r.maxRssMB! < 512, note: `RSS ${fmt(r.baseRssMB!)} MB before the storm, heap ${fmt(r.heapMB!)} MB after` });
}

// ---- sim vs QEMU -----------------------------------------------------------------------------

async function qemu(): Promise<void> {
  const cache = join(ROOT, '.qemu-cache');
  if (NO_QEMU || !existsSync(cache)) {
    notes.push(NO_QEMU ? 'QEMU comparison skipped (--no-qemu).' : 'QEMU comparison skipped: .qemu-cache/ does not exist (npm run qemu:setup).');
    process.stderr.write(`  qemu        skipped\n`);
    return;
  }
  const { createQemuTarget, qemuSetupProblem } = await import('../runner/targets/qemu/index.js');
  const { parseCase } = await import('../runner/case/load.js');
  const { runSim } = await import('../runner/targets/sim/index.js');
  const problem = qemuSetupProblem(cache);
  if (problem) {
    notes.push(`QEMU comparison skipped: ${problem}`);
    return;
  }
  // One typical case (late kill: injection, then a touch), as many copies as share a boot.
  const text = typicalCase(0).replace(/memory: \d+G/, 'memory: 512M');
  const PER_BOOT = QUICK ? 10 : 30;
  const cases = Array.from({ length: PER_BOOT }, (_, i) => parseCase(text, `bench-qemu-${i}.yaml`, `bench-qemu-${i}`));
  const ctx = { timeoutMs: 20000, checkInvariants: false, seed: 1 };
  const target = createQemuTarget({ cacheDir: cache });
  const why = target.cannotRun(cases[0]!, ctx);
  if (why) {
    notes.push(`QEMU comparison skipped: the case cannot run on QEMU (${why}).`);
    return;
  }
  const simRuns: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (const c of cases) runSim(c, ctx);
    simRuns.push((performance.now() - t0) / cases.length);
  }
  const simMs = median(simRuns);
  const t0 = performance.now();
  const obs = await target.runBatch(cases, ctx);
  const qemuMs = (performance.now() - t0) / cases.length;
  await target.close();
  const bad = obs.filter((o) => o.setup.error || o.steps.some((s) => s.notRun)).length;
  add({ section: 'qemu', name: 'time per case, sim', value: simMs, unit: 'ms' });
  add({ section: 'qemu', name: `time per case, QEMU (${PER_BOOT} cases in one boot)`, value: qemuMs, unit: 'ms', ...(bad ? { note: `${bad} case(s) did not run cleanly` } : {}) });
  add({ section: 'qemu', name: 'QEMU / sim per case', value: qemuMs / simMs, unit: 'x', target: '>= 1000x', pass: qemuMs / simMs >= 1000 });
}

// ---- main ------------------------------------------------------------------------------------

function table(): string {
  const head = ['Section', 'Measure', 'Value', 'Target', 'Result'];
  const body = rows.map((r) => [r.section, r.name + (r.note ? ` (${r.note})` : ''), `${fmt(r.value)} ${r.unit}`, r.target ?? '', r.pass === undefined ? '' : r.pass ? 'PASS' : 'MISS']);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 2 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join(' | ')} |`;
  return [line(head), `|${w.map((x, i) => (i === 2 ? `${'-'.repeat(x + 1)}:` : '-'.repeat(x + 2))).join('|')}|`, ...body.map(line)].join('\n');
}

async function main(): Promise<void> {
  if (!existsSync(BIN)) throw new Error(`no ${BIN}`);
  const t0 = performance.now();
  if (LOAD0[0]! > cpus().length) process.stderr.write(`warning: load average ${LOAD0[0]!.toFixed(1)} on ${cpus().length} CPU(s): wall times are inflated; see the cpu figures\n`);
  process.stderr.write(`hwpsim bench on ${cpus().length} CPU(s), node ${process.version}${QUICK ? ' (quick)' : ''}\n`);
  const sections: [string, () => void | Promise<void>][] = [
    ['startup', startup],
    ['library', library],
    ['throughput', throughput],
    ['size', size],
    ['rmap', rmap],
    ['storm', storm],
    ['qemu', qemu],
  ];
  for (const [name, fn] of sections) {
    if (!want(name)) continue;
    try {
      await fn();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      notes.push(`${name}: failed: ${msg}`);
      process.stderr.write(`  ${name}: failed: ${msg}\n`);
    }
  }
  const totalMs = performance.now() - t0;
  rmSync(REPORTS_TMP, { recursive: true, force: true });
  const out = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? '',
    loadavgStart: LOAD0,
    loadavgEnd: loadavg(),
    quick: QUICK,
    totalMs,
    rows,
    notes,
  };
  const reports = join(ROOT, 'reports');
  mkdirSync(reports, { recursive: true });
  writeFileSync(join(reports, 'bench.json'), `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`${table()}\n`);
  for (const n of notes) process.stdout.write(`\nNote: ${n}`);
  const missed = rows.filter((r) => r.pass === false).length;
  process.stdout.write(`\nLoad average ${LOAD0.map((x) => x.toFixed(1)).join(' ')} at start, ${loadavg().map((x) => x.toFixed(1)).join(' ')} at end.`);
  process.stdout.write(`\n${rows.filter((r) => r.pass).length} PASS, ${missed} MISS; bench took ${(totalMs / 1000).toFixed(1)} s; reports/bench.json written.\n`);
}

await main();
