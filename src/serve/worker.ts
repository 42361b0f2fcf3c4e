/**
 * A scoring worker thread of the reward service (pool.ts starts it through scripts/tsx-worker.mjs): receives
 * `{id, items, mode, lenient}`, answers `{id, scores}` or `{id, error}`. It runs the same `scoreRows` as the
 * in-process path, so a reward never depends on where it was computed.
 *
 * Not an HTTP handler, and it holds no state between messages.
 */
import { parentPort } from 'node:worker_threads';
import { scoreRows } from './wire';
import type { RewardItem } from './wire';
import type { RewardMode } from '../verify/reward';

interface Job {
  id: number;
  items: RewardItem[];
  mode: RewardMode;
  lenient: boolean;
}

parentPort!.on('message', (job: Job) => {
  try {
    parentPort!.postMessage({ id: job.id, scores: scoreRows(job.items, job.mode, { lenient: job.lenient }) });
  } catch (e) {
    // scoreRows never throws on model output; this is a bug, reported to the request that met it.
    parentPort!.postMessage({ id: job.id, error: e instanceof Error ? e.message : String(e) });
  }
});
parentPort!.postMessage({ ready: true });
