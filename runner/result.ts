// What the runner knows about one case after running it: the shape reporters consume.
import type { Assertion } from './check/check.js';

export type CaseStatus = 'pass' | 'fail' | 'skip' | 'todo' | 'invalid' | 'error' | 'timeout';

export interface CaseResult {
  /** Suite-relative path (the sort key). */
  id: string;
  file: string;
  name: string;
  /** Target that ran the case ("sim", "qemu"), and the kernel profile. */
  target: string;
  kernel: string;
  status: CaseStatus;
  /** Skip/TODO reason, or the one-line error of an invalid case / internal error. */
  reason?: string;
  assertions: Assertion[];
  durationMs: number;
  /** Kernel log of the run (for failure diagnostics). */
  log?: string[];
  /** Decision trail summary (for failure diagnostics). */
  trail?: string[];
  coverage?: { errorStates: string[]; severities: string[] };
}

export interface RunSummary {
  passed: number;
  failed: number;
  skipped: number;
  todo: number;
  total: number;
  seed: number;
  durationMs: number;
  interrupted: boolean;
  /** --bail stopped the run before every planned case was reported. */
  bailed?: boolean;
}

/** Reporters listen to the run's events (after node-tap / kirk). */
export interface Reporter {
  onStart?(info: { total: number; seed: number }): void;
  /** `index`: position in the report (0, 1, 2 ...), in the stable sorted order. */
  onCase(r: CaseResult, index: number): void;
  onEnd(s: RunSummary, all: CaseResult[]): void | Promise<void>;
}

export function isFailure(r: CaseResult): boolean {
  return r.status === 'fail' || r.status === 'invalid' || r.status === 'error' || r.status === 'timeout';
}
