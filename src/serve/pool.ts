/**
 * Where the reward service scores: in the HTTP thread (`workers: 0`) or in a pool of worker threads, each
 * request's rows sent whole to the least busy worker. Both paths run `scoreRows` (wire.ts).
 *
 * Why a choice and not always threads: the verifier costs ~10 us a completion, about what it costs to send a
 * request's rows to a thread and back (structured clone of the rows, a message each way), so threads only pay
 * when the HTTP thread has other work to overlap and a free core to do it on. `npm run bench` measures both
 * (`service.by_setting`); README "Growing past one machine" has the numbers and the default.
 *
 * What it is not: a general job queue. A worker that dies fails the requests it held (500) and leaves the pool;
 * with none left, scoring falls back to the HTTP thread.
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ROOT } from '../util/paths';
import type { RewardMode } from '../verify/reward';
import { scoreRows } from './wire';
import type { RewardItem, WireScore } from './wire';

interface Pending {
  resolve: (s: WireScore[]) => void;
  reject: (e: Error) => void;
}

class Thread {
  busy = 0;
  readonly pending = new Map<number, Pending>();
  constructor(readonly worker: Worker) {}
}

export class ScorePool {
  private nextId = 1;
  private closed = false;

  private constructor(
    private threads: Thread[],
    readonly mode: RewardMode,
    readonly lenient: boolean,
  ) {}

  /** Worker threads in use now (0 = scoring in the calling thread). */
  get size(): number {
    return this.threads.length;
  }

  /** Start `workers` threads (0: none) and wait until each has loaded the verifier. */
  static async start(workers: number, mode: RewardMode, lenient = false): Promise<ScorePool> {
    const pool = new ScorePool([], mode, lenient);
    const n = Math.max(0, Math.floor(workers));
    if (n === 0) return pool;
    const boot = path.join(ROOT, 'scripts', 'tsx-worker.mjs');
    const entry = pathToFileURL(path.join(ROOT, 'src', 'serve', 'worker.ts')).href;
    const started: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const w = new Worker(boot, { workerData: { entry } });
      const t = new Thread(w);
      pool.threads.push(t);
      started.push(
        new Promise<void>((resolve, reject) => {
          const onFirst = (m: { ready?: boolean }) => {
            if (m?.ready) {
              w.off('error', reject);
              resolve();
            }
          };
          w.once('message', onFirst);
          w.once('error', reject);
        }),
      );
      w.on('message', (m: { id?: number; scores?: WireScore[]; error?: string }) => {
        if (m.id === undefined) return;
        const p = t.pending.get(m.id);
        if (!p) return;
        t.pending.delete(m.id);
        t.busy--;
        if (m.scores) p.resolve(m.scores);
        else p.reject(new Error(`scoring worker: ${m.error ?? 'no answer'}`));
      });
      w.on('exit', (code) => {
        pool.threads = pool.threads.filter((x) => x !== t);
        for (const p of t.pending.values()) p.reject(new Error(`scoring worker exited (code ${code}) with a request in hand`));
        t.pending.clear();
      });
    }
    try {
      await Promise.all(started);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** Score one request's rows (in a worker when there is one). */
  score(items: RewardItem[]): Promise<WireScore[]> {
    if (this.threads.length === 0 || this.closed) return Promise.resolve(scoreRows(items, this.mode, { lenient: this.lenient }));
    let t = this.threads[0];
    for (const x of this.threads) if (x.busy < t.busy) t = x;
    const id = this.nextId++;
    t.busy++;
    return new Promise<WireScore[]>((resolve, reject) => {
      t.pending.set(id, { resolve, reject });
      t.worker.postMessage({ id, items, mode: this.mode, lenient: this.lenient });
    });
  }

  /** Stop the workers (after their pending requests, which the server has already awaited). */
  async close(): Promise<void> {
    this.closed = true;
    const ts = this.threads;
    this.threads = [];
    await Promise.all(ts.map((t) => t.worker.terminate()));
  }
}
