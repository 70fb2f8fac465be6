// Running a selection of cases: scheduling on worker threads (inline when no compiled worker),
// reporting in a stable order whatever the completion order, --bail, timeouts, SIGINT.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { readFileSync, statSync } from 'node:fs';
import type { CaseError, LoadedCase } from './case/load.js';
import type { CaseResult, Reporter, RunSummary } from './result.js';
import { isFailure } from './result.js';
import { caseId, declaredName, inShard } from './suite.js';
import type { CaseObservation, RunContext, SystemUnderTest } from './targets/target.js';

/** The case loader (zod + yaml) and the executor are loaded only when a run needs them. */
const loader = (): Promise<typeof import('./case/load.js')> => import('./case/load.js');
const executor = (): Promise<typeof import('./execute.js')> => import('./execute.js');

/** A target that runs many cases at once (QEMU: one boot). */
function isBatchTarget(t: SystemUnderTest): t is SystemUnderTest & { runBatch(cases: LoadedCase[], ctx: RunContext): Promise<CaseObservation[]> } {
  return typeof (t as { runBatch?: unknown }).runBatch === 'function';
}

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
  /** Kernels to run a case under when no --kernel was given (the QEMU target: every installed one). */
  kernelsFor?: (c: LoadedCase | undefined) => (string | undefined)[];
  /** Hand the target groups of cases (targets with runBatch: one QEMU boot runs many cases). */
  batch?: boolean;
}

export interface Planned {
  /** Loaded case, or the load error. */
  loaded?: LoadedCase;
  error?: CaseError | Error;
  file: string;
  id: string;
  kernel: string | undefined;
}

/**
 * Selects cases: grep on name/id, tags, shard. Invalid cases are always selected. With `defer`,
 * a case that the selection does not need to parse is not loaded here: the worker that runs it
 * loads it (so each case is parsed once, and in parallel).
 */
export async function plan(opts: Pick<RunOptions, 'files' | 'root' | 'grep' | 'tags' | 'shard' | 'kernels' | 'kernelsFor'>, defer = false): Promise<Planned[]> {
  const out: Planned[] = [];
  const mustLoad = !defer || !!opts.tags?.length || !!opts.kernelsFor;
  let load: typeof import('./case/load.js') | undefined;
  for (const file of opts.files) {
    const id = caseId(file, opts.root);
    // --grep that matches neither the id nor the name the file surely declares: skipped unparsed
    // (parsed, such a case is skipped too, valid or not).
    if (opts.grep && !opts.grep.test(id) && grepSkips(opts.grep, file, id)) continue;
    if (!mustLoad && (!opts.grep || opts.grep.test(id) || grepKeeps(opts.grep, file))) {
      for (const kernel of opts.kernels) out.push({ file, id, kernel });
      continue;
    }
    load ??= await loader();
    const { loadCase } = load;
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
    for (const kernel of opts.kernelsFor?.(loaded) ?? opts.kernels) out.push({ ...(loaded ? { loaded } : {}), ...(error ? { error } : {}), file, id, kernel });
  }
  return out.filter((_, i) => inShard(i, opts.shard));
}

/** Files larger than a case may be are left to the loader, which reports them. */
const MAX_DECLARED_NAME_BYTES = 1 << 20;

/** The name a case file surely declares (read without YAML), or undefined when unsure. */
function fileDeclaredName(file: string): string | undefined {
  try {
    if (statSync(file).size > MAX_DECLARED_NAME_BYTES) return undefined;
    return declaredName(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Whether --grep certainly selects a case by the name the file surely declares. */
function grepKeeps(grep: RegExp, file: string): boolean {
  const name = fileDeclaredName(file);
  return !!name && grep.test(name);
}

/** Whether --grep certainly rejects a case whose id it does not match: its declared name does not match either. */
function grepSkips(grep: RegExp, file: string, id: string): boolean {
  const name = fileDeclaredName(file);
  return name !== undefined && !grep.test(name || id);
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
  /** The case's name, as the worker that loaded it reported it (for deferred loads). */
  name?: string;
}

export async function runCases(opts: RunOptions, planned: Planned[], reporters: Reporter[], signal?: AbortSignal): Promise<{ summary: RunSummary; results: CaseResult[] }> {
  const t0 = performance.now();
  for (const r of reporters) r.onStart?.({ total: planned.length, seed: opts.seed });
  const results: (CaseResult | undefined)[] = new Array(planned.length);
  const reported: CaseResult[] = [];
  const wasReported: boolean[] = new Array(planned.length).fill(false);
  let nextToReport = 0;
  let bailed = false;
  /** --bail: nothing is reported after the first failure in report order. */
  let cut = false;
  const report = (i: number): void => {
    const r = results[i]!;
    wasReported[i] = true;
    for (const rep of reporters) rep.onCase(r, reported.length);
    reported.push(r);
    if (opts.bail && isFailure(r) && r.status !== 'todo') cut = true;
  };
  const flush = (): void => {
    while (!cut && nextToReport < planned.length && results[nextToReport]) report(nextToReport++);
  };
  const finish = (index: number, r: CaseResult): void => {
    if (results[index]) return;
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
  if (opts.batch) {
    // Targets with runBatch (QEMU): groups of cases share a boot.
    await runBatched(opts, order, ctxFor, finish, stopped);
  } else if (!opts.workerUrl) {
    // Inline (no compiled worker, e.g. under the test loader): timeouts are the target's own.
    const ex = await executor();
    const target = opts.makeTarget();
    try {
      for (const job of order) {
        if (stopped()) break;
        const p = job.p;
        // Invalid cases never reach a target: they are reported as they were loaded.
        const r = p.loaded ? await ex.executeLoaded(p.loaded, target, ctxFor(p)) : p.error ? ex.invalidResult(p.file, p.id, p.error, target.name, p.kernel ?? '') : await ex.executeFile(p.file, p.id, opts.root, target, ctxFor(p));
        finish(job.index, r);
        // Let SIGINT handlers run between cases.
        await new Promise((res) => setImmediate(res));
      }
    } finally {
      await target.close();
    }
  } else {
    // Invalid cases are settled here; only loadable ones go to the workers.
    const invalid = order.filter((j) => j.p.error);
    if (invalid.length) {
      const ex = await executor();
      for (const job of invalid) finish(job.index, ex.invalidResult(job.p.file, job.p.id, job.p.error!, opts.targetName, job.p.kernel ?? ''));
    }
    // Loaded and deferred cases alike: the worker (re)loads each from its file.
    const runnable = order.filter((j) => !j.p.error);
    if (runnable.length) await runInWorkers(opts, runnable, Math.max(1, Math.min(jobs, runnable.length)), ctxFor, finish, stopped, signal);
  }
  // Interrupted or bailed with gaps: report what did finish, still in the stable order.
  if (!cut) for (let i = 0; i < planned.length && !cut; i++) if (results[i] && !wasReported[i]) report(i);
  const summary: RunSummary = {
    passed: reported.filter((r) => r.status === 'pass').length,
    failed: reported.filter((r) => isFailure(r) && r.status !== 'todo').length,
    skipped: reported.filter((r) => r.status === 'skip').length,
    todo: reported.filter((r) => r.status === 'todo').length,
    total: planned.length,
    seed: opts.seed,
    durationMs: performance.now() - t0,
    interrupted: !!signal?.aborted,
    ...(bailed && reported.length < planned.length ? { bailed: true } : {}),
  };
  for (const r of reporters) await r.onEnd(summary, reported);
  return { summary, results: reported };
}

/** Worker messages: the parent sends batches of jobs, the worker answers each case as it ends. */
export interface WorkerJob {
  index: number;
  file: string;
  id: string;
  root: string;
  ctx: RunContext;
  target: string;
}

export type WorkerReply = { kind: 'start'; index: number; name?: string } | { kind: 'result'; index: number; result: CaseResult } | { kind: 'done' };

/** Extra time a worker gets past the case timeout (the target enforces it first) before it is killed. */
const KILL_GRACE_MS = 2000;

async function runInWorkers(
  opts: RunOptions,
  order: Job[],
  jobs: number,
  ctxFor: (p: Planned) => RunContext,
  finish: (i: number, r: CaseResult) => void,
  stopped: () => boolean,
  signal: AbortSignal | undefined,
): Promise<void> {
  const queue = [...order];
  // Batches amortise message overhead; small enough to keep both cores busy to the end.
  const batch = Math.max(1, Math.min(32, Math.floor(order.length / (jobs * 8))));
  const live = new Set<Worker>();
  const onAbort = (): void => {
    // Interrupted: stop now; cases in flight are not reported (they did not finish).
    for (const w of live) void w.terminate();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const failed = (j: Job, status: 'error' | 'timeout', reason: string, durationMs: number): CaseResult => ({
    id: j.p.id,
    file: j.p.file,
    name: j.p.loaded?.name ?? j.name ?? j.p.id,
    target: opts.targetName,
    kernel: j.p.kernel ?? '',
    status,
    reason,
    assertions: [],
    durationMs,
  });
  const startWorker = (): Promise<void> =>
    new Promise((resolveWorker) => {
      const w = new Worker(opts.workerUrl!, { workerData: { target: opts.targetName } });
      live.add(w);
      /** Cases of the current batch not answered yet, in the order the worker runs them. */
      let inflight: Job[] = [];
      let timer: NodeJS.Timeout | undefined;
      /** Set once the worker's death has been accounted for (timeout, error), so exit does not report twice. */
      let settled = false;
      // The clock runs from the worker's "start" of a case to its result: loading the worker
      // (slow on a busy machine) and waiting in the batch do not count against the case.
      const arm = (): void => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(onTimeout, opts.timeoutMs + KILL_GRACE_MS);
      };
      const disarm = (): void => {
        if (timer) clearTimeout(timer);
        timer = undefined;
      };
      /** The worker is lost: its current case gets `r`, the rest of its batch goes back to the queue. */
      const lose = (r: (j: Job) => CaseResult): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        const [head, ...rest] = inflight;
        inflight = [];
        if (stopped()) return;
        if (head) finish(head.index, r(head));
        queue.unshift(...rest);
      };
      const onTimeout = (): void => {
        // A runaway case the target did not stop itself: report it and replace the worker.
        lose((j) => failed(j, 'timeout', `timeout after ${opts.timeoutMs} ms (the worker was stopped)`, opts.timeoutMs));
        void w.terminate();
      };
      const send = (): void => {
        if (stopped() || queue.length === 0) {
          settled = true;
          void w.terminate();
          return;
        }
        inflight = queue.splice(0, batch);
        const msg: WorkerJob[] = inflight.map((j) => ({ index: j.index, file: j.p.file, id: j.p.id, root: opts.root, ctx: ctxFor(j.p), target: opts.targetName }));
        w.postMessage(msg);
      };
      w.on('message', (m: WorkerReply) => {
        if (settled) return;
        if (m.kind === 'start') {
          const j = inflight.find((x) => x.index === m.index);
          if (j && m.name) j.name = m.name;
          arm();
        }
        else if (m.kind === 'result') {
          disarm();
          inflight = inflight.filter((j) => j.index !== m.index);
          finish(m.index, m.result);
        } else send();
      });
      w.on('error', (err) => {
        lose((j) => failed(j, 'error', `worker died running this case: ${err.message}`, 0));
      });
      w.on('exit', (code) => {
        live.delete(w);
        lose((j) => failed(j, 'error', `worker exited running this case (exit code ${code})`, 0));
        // A worker that died or was stopped for a timeout is replaced while work remains.
        if (!stopped() && queue.length > 0) void startWorker().then(resolveWorker);
        else resolveWorker();
      });
      send();
    });
  try {
    await Promise.all(Array.from({ length: jobs }, () => startWorker()));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The batch path: cases a target can run go to its runBatch in groups (per kernel, at most
 * `batchSize` per call), so one QEMU boot runs many cases; up to `jobs` groups run at once.
 * Each case is then checked as usual; its time is its share of the group's wall time.
 */
async function runBatched(opts: RunOptions, order: Job[], ctxFor: (p: Planned) => RunContext, finish: (i: number, r: CaseResult) => void, stopped: () => boolean, batchSize = 30): Promise<void> {
  const { executeLoaded, invalidResult, kernelOf, skipReason } = await executor();
  const target = opts.makeTarget();
  try {
    const groups = new Map<string, { job: Job; c: LoadedCase; ctx: RunContext }[]>();
    for (const job of order) {
      const p = job.p;
      if (!p.loaded) {
        finish(job.index, invalidResult(p.file, p.id, p.error!, target.name, p.kernel ?? ''));
        continue;
      }
      const ctx = ctxFor(p);
      const kernel = kernelOf(p.loaded, ctx);
      if (!isBatchTarget(target) || skipReason(p.loaded, kernel) || target.cannotRun(p.loaded, ctx)) {
        // Skips (and targets without runBatch) go through the ordinary path.
        finish(job.index, await executeLoaded(p.loaded, target, ctx));
        continue;
      }
      const key = `${kernel}\0${ctx.kernel ?? ''}`;
      const g = groups.get(key) ?? [];
      g.push({ job, c: p.loaded, ctx });
      groups.set(key, g);
    }
    if (!isBatchTarget(target)) return;
    const chunks: { job: Job; c: LoadedCase; ctx: RunContext }[][] = [];
    // Kernels interleaved (6.1 chunk, 6.12 chunk, ...): results come back in the report order sooner.
    const perKernel = [...groups.values()].map((g) => Array.from({ length: Math.ceil(g.length / batchSize) }, (_, i) => g.slice(i * batchSize, (i + 1) * batchSize)));
    for (let i = 0; perKernel.some((k) => i < k.length); i++) for (const k of perKernel) if (k[i]) chunks.push(k[i]!);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < chunks.length && !stopped()) {
        const chunk = chunks[next++]!;
        const t0 = performance.now();
        let obs: CaseObservation[] | undefined;
        let err: string | undefined;
        try {
          obs = await target.runBatch(chunk.map((x) => x.c), chunk[0]!.ctx);
        } catch (e) {
          err = e instanceof Error ? e.message : String(e);
        }
        const share = (performance.now() - t0) / chunk.length;
        for (const [k, x] of chunk.entries()) {
          const o = obs?.[k];
          const one: SystemUnderTest = {
            name: target.name,
            cannotRun: () => undefined,
            run: () => (o ? Promise.resolve(o) : Promise.reject(new Error(err ?? 'the target returned no observation'))),
            close: () => Promise.resolve(),
          };
          const r = await executeLoaded(x.c, one, x.ctx);
          finish(x.job.index, { ...r, durationMs: share });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs, chunks.length)) }, () => lane()));
  } finally {
    await target.close();
  }
}

