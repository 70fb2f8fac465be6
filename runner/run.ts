// Running a selection of cases: scheduling on worker threads (or inline for --jobs 1),
// reporting in a stable order whatever the completion order, --bail, timeouts, SIGINT.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CaseError, loadCase, type LoadedCase } from './case/load.js';
import { executeLoaded, invalidResult, kernelOf } from './execute.js';
import type { CaseResult, Reporter, RunSummary } from './result.js';
import { isFailure } from './result.js';
import { caseId, inShard } from './suite.js';
import type { RunContext, SystemUnderTest } from './targets/target.js';

export interface RunOptions {
  files: string[];
  root: string;
  jobs: number;
  grep?: RegExp;
  tags?: string[];
  shard?: { index: number; count: number };
  bail: boolean;
  timeoutMs: number;
  seed: number;
  kernels: (string | undefined)[];
  checkInvariants: boolean;
  shuffle: boolean;
  makeTarget: () => SystemUnderTest;
  /** Worker thread entry (compiled worker.js); inline execution when absent. */
  workerUrl?: URL;
  targetName: string;
}

export interface Planned {
  /** Loaded case, or the load error. */
  loaded?: LoadedCase;
  error?: CaseError | Error;
  file: string;
  id: string;
  kernel: string | undefined;
}

/** Loads and selects cases: grep on name/id, tags, shard. Invalid cases are always selected. */
export function plan(opts: Pick<RunOptions, 'files' | 'root' | 'grep' | 'tags' | 'shard' | 'kernels'>): Planned[] {
  const out: Planned[] = [];
  for (const file of opts.files) {
    const id = caseId(file, opts.root);
    let loaded: LoadedCase | undefined;
    let error: Error | undefined;
    try {
      loaded = loadCase(file, opts.root);
      loaded.id = id;
      if (!loaded.config.name) loaded.name = id;
    } catch (e) {
      error = e instanceof Error ? e : new Error(String(e));
    }
    if (loaded) {
      if (opts.grep && !opts.grep.test(loaded.name) && !opts.grep.test(id)) continue;
      if (opts.tags?.length && !opts.tags.some((t) => loaded!.config.tags?.includes(t))) continue;
    } else if (opts.grep && !opts.grep.test(id)) continue;
    for (const kernel of opts.kernels) out.push({ ...(loaded ? { loaded } : {}), ...(error ? { error } : {}), file, id, kernel });
  }
  return out.filter((_, i) => inShard(i, opts.shard));
}

/** Deterministic PRNG (mulberry32) for --shuffle. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function defaultJobs(): number {
  return Math.max(1, availableParallelism());
}

interface Job {
  index: number;
  p: Planned;
}

export async function runCases(opts: RunOptions, planned: Planned[], reporters: Reporter[], signal?: AbortSignal): Promise<{ summary: RunSummary; results: CaseResult[] }> {
  const t0 = performance.now();
  for (const r of reporters) r.onStart?.({ total: planned.length, seed: opts.seed });
  const results: (CaseResult | undefined)[] = new Array(planned.length);
  let nextToReport = 0;
  let bailed = false;
  const flush = (): void => {
    while (nextToReport < planned.length && results[nextToReport]) {
      const r = results[nextToReport]!;
      for (const rep of reporters) rep.onCase(r, nextToReport);
      nextToReport++;
    }
  };
  const finish = (index: number, r: CaseResult): void => {
    results[index] = r;
    if (opts.bail && isFailure(r) && r.status !== 'todo') bailed = true;
    flush();
  };
  const order: Job[] = planned.map((p, index) => ({ index, p }));
  if (opts.shuffle) {
    const rand = rng(opts.seed);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
  }
  const ctxFor = (p: Planned): RunContext => ({ timeoutMs: opts.timeoutMs, checkInvariants: opts.checkInvariants, seed: opts.seed, ...(p.kernel ? { kernel: p.kernel } : {}) });
  const stopped = (): boolean => bailed || !!signal?.aborted;
  const jobs = Math.max(1, Math.min(opts.jobs, order.length));
  if (jobs <= 1 || !opts.workerUrl) {
    const target = opts.makeTarget();
    try {
      for (const job of order) {
        if (stopped()) break;
        const p = job.p;
        const r = p.loaded ? await executeLoaded(p.loaded, target, ctxFor(p)) : invalidResult(p.file, p.id, p.error!, target.name, p.kernel ?? '');
        finish(job.index, r);
        // Let SIGINT handlers run between cases.
        if (job.index % 64 === 63) await new Promise((res) => setImmediate(res));
      }
    } finally {
      await target.close();
    }
  } else {
    await runInWorkers(opts, order, jobs, ctxFor, finish, stopped);
  }
  const done = results.filter((r): r is CaseResult => !!r);
  const summary: RunSummary = {
    passed: done.filter((r) => r.status === 'pass').length,
    failed: done.filter((r) => isFailure(r) && r.status !== 'todo').length,
    skipped: done.filter((r) => r.status === 'skip').length,
    todo: done.filter((r) => r.status === 'todo').length,
    total: planned.length,
    seed: opts.seed,
    durationMs: performance.now() - t0,
    interrupted: !!signal?.aborted,
  };
  for (const r of reporters) await r.onEnd(summary, done);
  return { summary, results: done };
}

/** Worker messages: the parent sends jobs, the worker answers with results. */
export interface WorkerJob {
  index: number;
  file: string;
  id: string;
  root: string;
  ctx: RunContext;
  target: string;
}

async function runInWorkers(opts: RunOptions, order: Job[], jobs: number, ctxFor: (p: Planned) => RunContext, finish: (i: number, r: CaseResult) => void, stopped: () => boolean): Promise<void> {
  let next = 0;
  // Batches amortise message overhead; small enough to keep both cores busy to the end.
  const batch = Math.max(1, Math.min(32, Math.floor(order.length / (jobs * 8))));
  const startWorker = (): Promise<void> =>
    new Promise((resolveWorker) => {
      const w = new Worker(opts.workerUrl!, { workerData: { target: opts.targetName } });
      let inflight: Job[] = [];
      let timer: NodeJS.Timeout | undefined;
      const send = (): void => {
        if (timer) clearTimeout(timer);
        if (stopped() || next >= order.length) {
          void w.terminate();
          return;
        }
        inflight = order.slice(next, next + batch);
        next += inflight.length;
        const msg: WorkerJob[] = inflight.map((j) => ({ index: j.index, file: j.p.file, id: j.p.id, root: opts.root, ctx: ctxFor(j.p), target: opts.targetName }));
        timer = setTimeout(() => {
          // A runaway case: report it and replace the worker.
          for (const j of inflight) finish(j.index, { id: j.p.id, file: j.p.file, name: j.p.loaded?.name ?? j.p.id, target: opts.targetName, kernel: j.p.kernel ?? '', status: 'timeout', reason: `timeout after ${opts.timeoutMs} ms`, assertions: [], durationMs: opts.timeoutMs });
          inflight = [];
          void w.terminate();
        }, opts.timeoutMs * inflight.length + 2000);
        w.postMessage(msg);
      };
      w.on('message', (rs: CaseResult[]) => {
        for (const r of rs) {
          const j = inflight.find((x) => x.index === (r as CaseResult & { index: number }).index);
          if (j) finish(j.index, r);
        }
        inflight = [];
        send();
      });
      w.on('error', (err) => {
        for (const j of inflight) finish(j.index, { id: j.p.id, file: j.p.file, name: j.p.id, target: opts.targetName, kernel: j.p.kernel ?? '', status: 'error', reason: `worker died: ${err.message}`, assertions: [], durationMs: 0 });
        inflight = [];
      });
      w.on('exit', () => {
        if (timer) clearTimeout(timer);
        for (const j of inflight) finish(j.index, { id: j.p.id, file: j.p.file, name: j.p.id, target: opts.targetName, kernel: j.p.kernel ?? '', status: 'error', reason: 'worker exited', assertions: [], durationMs: 0 });
        inflight = [];
        // A worker that died or was stopped for a timeout is replaced while work remains.
        if (!stopped() && next < order.length) void startWorker().then(resolveWorker);
        else resolveWorker();
      });
      send();
    });
  await Promise.all(Array.from({ length: jobs }, () => startWorker()));
}

export { kernelOf };
