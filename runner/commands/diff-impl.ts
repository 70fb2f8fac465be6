// `hwpsim diff [paths] [--kernel 6.1 --kernel 6.12]`: runs each case on the simulator and on the
// real kernel under QEMU with the same kernel profile, and reports where the model and the
// kernel disagree: TAP on stdout (one test point per case and kernel), agreement tables on
// stderr, JSON in reports/. Also reached by `hwpsim run --target sim,qemu`.
import { join } from 'node:path';
import type { DiffArgs } from './diff.js';
import { discover } from '../suite.js';
import { defaultJobs } from '../run.js';
import { writeFileAtomic } from '../reporters/atomic.js';
import { grepArg, kernelsArg } from './args.js';
import { runDiff } from '../diff/run.js';
import { agreementTable, diffJson, tapPoint } from '../diff/report.js';


export async function doDiff(argv: DiffArgs): Promise<number> {
  const seed = argv.seed ?? Math.floor(Math.random() * 2 ** 31);
  const kernels = kernelsArg(argv.kernel);
  const grepOrNull = grepArg(argv.grep);
  if (!kernels || grepOrNull === undefined) return 2;
  const grep = grepOrNull ?? undefined;
  const found = discover(argv.paths);
  if (found.missing.length) {
    process.stderr.write(`hwpsim: no such case file or directory: ${found.missing.join(', ')}\n`);
    if (!found.files.length) return argv['pass-with-no-tests'] ? 0 : 4;
  }
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  let res;
  try {
    res = await runDiff({
      files: found.files,
      root: found.root,
      ...(grep ? { grep } : {}),
      ...(argv.tag ? { tags: argv.tag } : {}),
      ...(kernels.length ? { kernels } : {}),
      timeoutMs: argv.timeout,
      jobs: argv.jobs && argv.jobs > 0 ? argv.jobs : Math.min(2, defaultJobs()),
      seed,
      ...(argv.quiet ? {} : { progress: (l: string) => process.stderr.write(`${l}\n`) }),
      signal: ac.signal,
    });
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  const { diffs, summaries } = res;
  if (diffs.length === 0) {
    process.stderr.write(`hwpsim: no cases matched\n`);
    return argv['pass-with-no-tests'] ? 0 : 4;
  }
  const tap = ['TAP version 14', `1..${diffs.length}`, `# sim vs qemu, seed ${seed}`, ...diffs.map((d, i) => tapPoint(d, i + 1))];
  for (const s of summaries) tap.push(`# ${s.kernel}: ${s.assertions.agreed}/${s.assertions.compared} assertions agree (${(100 * s.agreement).toFixed(1)}%), ${s.agreeingCases}/${s.comparedCases} cases agree, ${s.skipped} skipped, ${s.errors} errors`);
  const text = `${tap.join('\n')}\n`;
  process.stdout.write(text);
  const dir = argv['reports-dir'];
  writeFileAtomic(join(dir, 'hwpsim-diff.tap'), text);
  const json = join(dir, 'hwpsim-diff.json');
  writeFileAtomic(json, `${JSON.stringify({ ...diffJson(diffs, summaries), seed, wallMs: res.wallMs }, null, 2)}\n`);
  process.stderr.write(`${agreementTable(diffs, summaries).join('\n')}\n`);
  process.stderr.write(`wall time: sim ${(res.wallMs.sim / 1000).toFixed(1)} s, qemu ${(res.wallMs.qemu / 1000).toFixed(1)} s; report: ${json}\n`);
  if (ac.signal.aborted) return 130;
  return diffs.some((d) => d.status !== 'skip' && !d.agree) ? 1 : 0;
}

