// The `hwpsim run` command's work: selection, targets, reporters, the run and its exit code.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { discover, parseShard } from '../suite.js';
import { defaultJobs, plan, runCases, type RunOptions } from '../run.js';
import type { Reporter } from '../result.js';
import { writeFileAtomic } from '../reporters/atomic.js';
import type { SystemUnderTest } from '../targets/target.js';
import { grepArg, kernelsArg } from './args.js';

import type { RunArgs } from './run.js';

function workerUrl(): URL | undefined {
  const u = new URL('../worker.js', import.meta.url);
  return existsSync(fileURLToPath(u)) ? u : undefined;
}

export async function doRun(argv: RunArgs): Promise<number> {
  for (const [flag, v, min] of [['--jobs', argv.jobs, 0], ['--timeout', argv.timeout, 1], ['--seed', argv.seed, 0]] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < min)) {
      process.stderr.write(`hwpsim: ${flag} must be an integer >= ${min}, got "${v}"\n`);
      return 2;
    }
  }
  const seed = argv.seed ?? Math.floor(Math.random() * 2 ** 31);
  const shard = argv.shard ? parseShard(argv.shard) : undefined;
  if (argv.shard && !shard) {
    process.stderr.write(`hwpsim: --shard must be i/n with 1 <= i <= n, got "${argv.shard}"\n`);
    return 2;
  }
  const grepOrNull = grepArg(argv.grep);
  const kernels = kernelsArg(argv.kernel);
  if (grepOrNull === undefined || !kernels) return 2;
  const grep = grepOrNull ?? undefined;
  for (const r of argv.reporter) {
    if (!['tap', 'junit', 'json'].includes(r)) {
      process.stderr.write(`hwpsim: unknown reporter "${r}" (tap, junit, json)\n`);
      return 2;
    }
  }
  const targets = argv.target.split(',').map((t) => t.trim()).filter(Boolean);
  if (targets.length === 2 && targets.includes('sim') && targets.includes('qemu')) {
    // Both targets: compare them (hwpsim diff).
    const { doDiff } = await import('./diff-impl.js');
    return doDiff({ paths: argv.paths, ...(argv.kernel ? { kernel: argv.kernel } : {}), ...(argv.grep ? { grep: argv.grep } : {}), ...(argv.tag ? { tag: argv.tag } : {}), ...(argv.jobs ? { jobs: argv.jobs } : {}), timeout: argv.timeout, ...(argv.seed !== undefined ? { seed: argv.seed } : {}), 'reports-dir': argv['reports-dir'], 'pass-with-no-tests': argv['pass-with-no-tests'], quiet: argv.quiet });
  }
  if (!['sim', 'qemu'].includes(argv.target)) {
    process.stderr.write(`hwpsim: unknown target "${argv.target}" (sim, qemu, or sim,qemu to compare them)\n`);
    return 2;
  }
  // The target (the whole kernel model, or the QEMU driver) is loaded by whoever runs cases:
  // the workers, or this thread when it runs them inline.
  let targetMod: typeof import('../targets/index.js') | undefined;
  const loadTargets = async (): Promise<typeof import('../targets/index.js')> => (targetMod ??= await import('../targets/index.js'));
  const makeT = (): SystemUnderTest => targetMod!.makeTarget(argv.target);
  const found = discover(argv.paths);
  if (found.missing.length) {
    process.stderr.write(`hwpsim: no such case file or directory: ${found.missing.join(', ')}\n`);
    if (!found.files.length) return argv['pass-with-no-tests'] ? 0 : 4;
  }
  const opts: RunOptions = {
    files: found.files,
    root: found.root,
    jobs: argv.jobs && argv.jobs > 0 ? argv.jobs : defaultJobs(),
    ...(grep ? { grep } : {}),
    ...(argv.tag ? { tags: argv.tag } : {}),
    ...(shard ? { shard } : {}),
    bail: argv.bail,
    timeoutMs: argv.timeout,
    seed,
    kernels: kernels.length ? kernels : [undefined],
    checkInvariants: argv['check-invariants'],
    shuffle: argv.shuffle,
    makeTarget: makeT,
    targetName: argv.target,
  };
  const wu = workerUrl();
  if (wu) opts.workerUrl = wu;
  if (argv.target === 'qemu') {
    // One boot runs many cases; without --kernel, every installed kernel the model knows.
    opts.batch = true;
    if (!argv.jobs) opts.jobs = Math.min(2, opts.jobs);
    const { qemuKernelsFor } = await import('../diff/run.js');
    if (!kernels.length) opts.kernelsFor = qemuKernelsFor((await loadTargets()).qemuProfiles());
  }
  if (!opts.workerUrl || opts.batch) await loadTargets();
  const planned = await plan(opts, !!opts.workerUrl && !opts.batch);
  if (planned.length === 0) {
    process.stderr.write(`hwpsim: no cases matched (seed ${seed})\n`);
    return argv['pass-with-no-tests'] ? 0 : 4;
  }
  // Reporters (and the YAML emitter of TAP diagnostics) are loaded once there is something to run.
  const [{ TapReporter }, { JunitReporter }, { JsonReporter }, { ProgressReporter }] = await Promise.all([
    import('../reporters/tap.js'),
    import('../reporters/junit.js'),
    import('../reporters/json.js'),
    import('../reporters/progress.js'),
  ]);
  const reporters: Reporter[] = [];
  const tap = argv.reporter.includes('tap') ? new TapReporter((s) => process.stdout.write(s), argv['tap-version'] as 13 | 14) : undefined;
  if (tap) reporters.push(tap);
  const dir = argv['reports-dir'];
  if (argv.reporter.includes('junit')) reporters.push(new JunitReporter(join(dir, 'hwpsim.junit.xml')));
  if (argv.reporter.includes('json')) reporters.push(new JsonReporter(join(dir, 'hwpsim.json')));
  if (argv.coverage) reporters.push(new (await import('../reporters/coverage.js')).CoverageReporter((s) => process.stderr.write(s)));
  if (!argv.quiet) reporters.push(new ProgressReporter(process.stderr, !!process.stderr.isTTY && !process.env.CI, !!process.env.CI));
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  let summary;
  try {
    ({ summary } = await runCases(opts, planned, reporters, ac.signal));
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  if (tap) writeFileAtomic(join(dir, 'hwpsim.tap'), tap.text());
  if (summary.interrupted) return 130;
  if (summary.failed > 0) {
    process.stderr.write(`rerun: ${rerunLine(argv, seed)}\n`);
    return 1;
  }
  return 0;
}

/** Quotes a word for a POSIX shell when it needs it. */
export function shellQuote(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** The command that repeats this run: same selection, same seed, same order. */
export function rerunLine(argv: RunArgs, seed: number): string {
  const words = ['npx', 'hwpsim', 'run', ...argv.paths];
  if (argv.grep) words.push('--grep', argv.grep);
  for (const t of argv.tag ?? []) words.push('--tag', t);
  if (argv.shard) words.push('--shard', argv.shard);
  for (const k of argv.kernel ?? []) words.push('--kernel', k);
  if (argv.target !== 'sim') words.push('--target', argv.target);
  if (argv['check-invariants']) words.push('--check-invariants');
  if (argv.timeout !== 10000) words.push('--timeout', String(argv.timeout));
  if (argv.shuffle) words.push('--shuffle');
  words.push('--seed', String(seed));
  return words.map(shellQuote).join(' ');
}

