// Worker thread: runs batches of cases sent by run.ts and answers each case as soon as it ends
// (so that a runaway case is the only one lost when the parent stops this worker).
import { parentPort, workerData } from 'node:worker_threads';
import { executeFile } from './execute.js';
import type { WorkerJob, WorkerReply } from './run.js';
import { makeTarget } from './targets/index.js';

const target = makeTarget((workerData as { target: string }).target);

// Test hook (test/runner/reliability.test.ts): HWPSIM_TEST_WORKER_FAULT=exit:ID, throw:ID or
// hang:ID makes the worker die on (or never finish) the case whose id contains ID, to check that
// the runner reports that case and goes on with a new worker.
const fault = /^(exit|throw|hang):(.+)$/.exec(process.env.HWPSIM_TEST_WORKER_FAULT ?? '');

parentPort?.on('message', async (jobs: WorkerJob[]) => {
  for (const j of jobs) {
    parentPort?.postMessage({ kind: 'start', index: j.index } satisfies WorkerReply);
    if (fault && j.id.includes(fault[2]!)) {
      if (fault[1] === 'exit') process.exit(7);
      if (fault[1] === 'hang') for (;;);
      throw new Error(`injected fault in ${j.id}`);
    }
    const result = await executeFile(j.file, j.id, j.root, target, j.ctx);
    parentPort?.postMessage({ kind: 'result', index: j.index, result } satisfies WorkerReply);
  }
  parentPort?.postMessage({ kind: 'done' } satisfies WorkerReply);
});
