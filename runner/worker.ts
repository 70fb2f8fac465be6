// Worker thread: runs batches of cases sent by run.ts and answers each case as soon as it ends
// (so that a runaway case is the only one lost when the parent stops this worker).
import { parentPort, workerData } from 'node:worker_threads';
import { loadCase, type LoadedCase } from './case/load.js';
import { executeLoaded, invalidResult } from './execute.js';
import type { WorkerJob, WorkerReply } from './run.js';
import { makeTarget } from './targets/index.js';

const target = makeTarget((workerData as { target: string }).target);

// Test hook (test/runner/reliability.test.ts): HWPSIM_TEST_WORKER_FAULT=exit:ID, throw:ID or
// hang:ID makes the worker die on (or never finish) the case whose id contains ID, to check that
// the runner reports that case and goes on with a new worker.
const fault = /^(exit|throw|hang):(.+)$/.exec(process.env.HWPSIM_TEST_WORKER_FAULT ?? '');

parentPort?.on('message', async (jobs: WorkerJob[]) => {
  for (const j of jobs) {
    // Load first, so that the parent knows the case's name even if the case then kills us.
    let loaded: LoadedCase | undefined;
    let loadError: Error | undefined;
    try {
      loaded = loadCase(j.file, j.root);
      loaded.id = j.id;
      if (!loaded.config.name) loaded.name = j.id;
    } catch (e) {
      loadError = e instanceof Error ? e : new Error(String(e));
    }
    parentPort?.postMessage({ kind: 'start', index: j.index, ...(loaded ? { name: loaded.name } : {}) } satisfies WorkerReply);
    if (fault && j.id.includes(fault[2]!)) {
      if (fault[1] === 'exit') process.exit(7);
      if (fault[1] === 'hang') for (;;);
      throw new Error(`injected fault in ${j.id}`);
    }
    const result = loaded ? await executeLoaded(loaded, target, j.ctx) : invalidResult(j.file, j.id, loadError!, target.name, j.ctx.kernel ?? '');
    parentPort?.postMessage({ kind: 'result', index: j.index, result } satisfies WorkerReply);
  }
  parentPort?.postMessage({ kind: 'done' } satisfies WorkerReply);
});
