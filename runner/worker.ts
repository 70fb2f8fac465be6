// Worker thread: runs batches of cases sent by run.ts and answers with their results.
import { parentPort, workerData } from 'node:worker_threads';
import { executeFile } from './execute.js';
import type { WorkerJob } from './run.js';
import { makeTarget } from './targets/index.js';

const target = makeTarget((workerData as { target: string }).target);

parentPort?.on('message', async (jobs: WorkerJob[]) => {
  const out = [];
  for (const j of jobs) {
    const r = await executeFile(j.file, j.id, j.root, target, j.ctx);
    out.push({ ...r, index: j.index });
  }
  parentPort?.postMessage(out);
});
