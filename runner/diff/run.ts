// Running a selection of cases on the simulator and on the real kernel (QEMU) under the same
// kernel profiles, and pairing their results for compareCase.
import type { LoadedCase } from '../case/load.js';
import type { CaseResult, Reporter } from '../result.js';
import { plan, runCases, type Planned, type RunOptions } from '../run.js';
import { makeQemuTarget, qemuProfiles } from '../targets/index.js';
import { SimTarget } from '../targets/sim/index.js';
import type { SystemUnderTest } from '../targets/target.js';
import { compareCase, summarize, type CaseDiff, type KernelSummary } from './compare.js';

/**
 * The kernels a case runs under on the QEMU target when none were asked for: the case's own
 * machine.kernel when it names one, else every installed kernel the model has a profile for.
 */
export function qemuKernelsFor(profiles: string[]): (c: LoadedCase | undefined) => (string | undefined)[] {
  return (c) => (c?.config.machine?.kernel || profiles.length === 0 ? [undefined] : profiles);
}

export interface DiffOptions {
  files: string[];
  root: string;
  grep?: RegExp;
  tags?: string[];
  /** Kernel profiles to compare under (forced on every case); default: see qemuKernelsFor. */
  kernels?: string[];
  timeoutMs: number;
  /** QEMU boots running at once. */
  jobs: number;
  seed: number;
  makeQemu?: () => SystemUnderTest;
  makeSim?: () => SystemUnderTest;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
  signal?: AbortSignal;
}

export interface DiffResult {
  diffs: CaseDiff[];
  summaries: KernelSummary[];
  sim: CaseResult[];
  qemu: CaseResult[];
  wallMs: { sim: number; qemu: number };
}

class Collect implements Reporter {
  readonly byIndex: CaseResult[] = [];
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly progress?: (line: string) => void,
  ) {}
  onCase(r: CaseResult, i: number): void {
    this.byIndex[i] = r;
    this.progress?.(`${this.label} [${i + 1}/${this.total}] ${r.status.toUpperCase()} ${r.id}${r.kernel ? ` (${r.kernel})` : ''}${r.status === 'skip' || r.status === 'error' ? `: ${r.reason ?? ''}` : ''}`);
  }
  onEnd(): void {}
}

export async function runDiff(o: DiffOptions): Promise<DiffResult> {
  const profiles = qemuProfiles();
  const kernels = o.kernels?.length ? o.kernels : [undefined];
  const base = {
    files: o.files,
    root: o.root,
    ...(o.grep ? { grep: o.grep } : {}),
    ...(o.tags ? { tags: o.tags } : {}),
    kernels,
    ...(o.kernels?.length ? {} : { kernelsFor: qemuKernelsFor(profiles) }),
  };
  const planned: Planned[] = await plan(base);
  const common: Omit<RunOptions, 'makeTarget' | 'targetName' | 'jobs'> = { ...base, bail: false, timeoutMs: o.timeoutMs, seed: o.seed, checkInvariants: false, shuffle: false };
  const sim = new Collect('sim', planned.length);
  const t0 = performance.now();
  await runCases({ ...common, jobs: 1, makeTarget: o.makeSim ?? (() => new SimTarget()), targetName: 'sim' }, planned, [sim], o.signal);
  const t1 = performance.now();
  const qemu = new Collect('qemu', planned.length, o.progress);
  await runCases({ ...common, jobs: o.jobs, batch: true, makeTarget: o.makeQemu ?? (() => makeQemuTarget()), targetName: 'qemu' }, planned, [qemu], o.signal);
  const t2 = performance.now();
  const diffs: CaseDiff[] = [];
  planned.forEach((_, i) => {
    const s = sim.byIndex[i];
    const q = qemu.byIndex[i];
    if (s && q) diffs.push(compareCase(s, q));
  });
  const order = [...new Set(diffs.map((d) => d.kernel))].sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
  return { diffs, summaries: order.map((k) => summarize(k, diffs)), sim: sim.byIndex.filter(Boolean), qemu: qemu.byIndex.filter(Boolean), wallMs: { sim: t1 - t0, qemu: t2 - t1 } };
}
