// Target registry: name -> system under test.
import { execFileSync } from 'node:child_process';
import { SimTarget } from './sim/index.js';
import type { CaseObservation, SystemUnderTest } from './target.js';
import { createQemuTarget, qemuSetupProblem, type QemuTarget, type QemuTargetOptions } from './qemu/index.js';
import { defaultCacheDir, findKernels } from './qemu/kernels.js';
import { compareVersions, profileFor } from '../../tsrc/kernel/profiles.js';

export const TARGETS = ['sim', 'qemu'] as const;

/** A target that can run many cases at once (the QEMU target shares boots). */
export interface BatchTarget extends SystemUnderTest {
  runBatch(cases: Parameters<SystemUnderTest['run']>[0][], ctx: Parameters<SystemUnderTest['run']>[1]): Promise<CaseObservation[]>;
}

export function isBatchTarget(t: SystemUnderTest): t is BatchTarget {
  return typeof (t as Partial<BatchTarget>).runBatch === 'function';
}

let qemuBinary: boolean | undefined;
function qemuInstalled(bin = process.env['HWPSIM_QEMU_BIN'] ?? 'qemu-system-x86_64'): boolean {
  if (qemuBinary !== undefined) return qemuBinary;
  try {
    execFileSync(bin, ['--version'], { stdio: 'ignore', timeout: 10_000 });
    qemuBinary = true;
  } catch {
    qemuBinary = false;
  }
  return qemuBinary;
}

/** Why the QEMU target cannot run anything here (no QEMU binary, no kernels), or undefined. */
export function qemuUnavailable(cacheDir = defaultCacheDir()): string | undefined {
  if (process.env['HWPSIM_QEMU'] === 'off') return 'QEMU target not set up: disabled by HWPSIM_QEMU=off';
  if (!qemuInstalled()) return 'QEMU target not set up: run npm run qemu:setup (qemu-system-x86_64 is not installed)';
  const p = qemuSetupProblem(cacheDir);
  return p ? `QEMU target not set up: run npm run qemu:setup (${p.replace(/ \(run npm run qemu:setup\)$/, '')})` : undefined;
}

/** Profiles of the installed QEMU kernels that the model also knows ("6.1", "6.12"), oldest first. */
export function qemuProfiles(cacheDir = defaultCacheDir()): string[] {
  if (qemuUnavailable(cacheDir)) return [];
  return [...new Set(findKernels(cacheDir).map((k) => k.profile))].filter((p) => profileFor(p)).sort(compareVersions);
}

/** Stand-in when QEMU is not set up: every case is a skip with the reason, never a crash. */
class UnavailableTarget implements BatchTarget {
  readonly name = 'qemu';
  constructor(private readonly why: string) {}
  cannotRun(): string {
    return this.why;
  }
  run(): Promise<CaseObservation> {
    return Promise.reject(new Error(this.why));
  }
  runBatch(): Promise<CaseObservation[]> {
    return Promise.reject(new Error(this.why));
  }
  async close(): Promise<void> {}
}

export function makeQemuTarget(opts: QemuTargetOptions = {}): QemuTarget | BatchTarget {
  const why = qemuUnavailable(opts.cacheDir);
  if (why) return new UnavailableTarget(why);
  return createQemuTarget({ ...(process.env['HWPSIM_QEMU_VERBOSE'] ? { log: (m: string) => process.stderr.write(`${m}\n`) } : {}), ...opts });
}

export function makeTarget(name: string): SystemUnderTest {
  if (name === 'sim') return new SimTarget();
  if (name === 'qemu') return makeQemuTarget();
  throw new Error(`unknown target "${name}" (sim, qemu, or sim,qemu to compare them)`);
}
