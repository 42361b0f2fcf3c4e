/**
 * Data parallelism over CPU cores, for the wasm backend.
 *
 * tfjs's wasm backend runs one thread under Node, so on a 2-core machine one core sat idle while PyTorch used
 * both. `DataParallel` starts `num_processes - 1` worker threads (accelerate's name for the number of
 * replicas), each with its own wasm backend and a copy of the model; the calling thread is rank 0. With
 * num_processes 1 (`DataParallel.local`) there is no worker and every call runs here, so trainers and
 * evaluation always go through a DataParallel and never branch on whether there is one. Work is split by rows,
 * in contiguous shares:
 *
 *   valueAndGrads   each rank differentiates the objective of its share of a micro-batch (objectives.ts: the
 *                   losses are already normalised by the whole optimizer step's size, so the shares' gradients
 *                   simply add up to the micro-batch's); rank 0 sums them. The caller (update.ts) clips and
 *                   steps AdamW, then `syncWeights` sends the updated trainable weights to the replicas
 *                   (weights, not gradients: a replica can never drift from rank 0).
 *   generate        each rank samples its share of the prompts. With one seeded stream per row (`rngs`), a
 *                   row's tokens do not depend on how the batch was split, so sampling is the same for any
 *                   number of processes; only gradient sums differ, in float rounding (summation order).
 *
 * Costs: each rank runs its share's shared prompt prefix itself (~100 tokens per micro-batch share on the
 * tiny model); a step moves the trainable weights once (3.7 MB for the tiny model's full fine-tuning, tens of
 * kB for LoRA) and each replica's gradients once, as transferred ArrayBuffers.
 *
 * What it is not: multi-GPU training (on webgpu / tensorflow the device already runs in parallel; callers use
 * `numProcessesFor`, which gives 1 there), or a place that knows any algorithm: an objective is opaque data
 * here, sliced and evaluated by objectives.ts, the only module a worker loads besides the model.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { Qwen2ForCausalLM } from '../model/qwen2';
import type { Qwen2Config } from '../model/config';
import type { AdapterState, LoraConfig } from '../model/lora';
import { generate, type GenerateOptions, type GenerateOutput } from '../model/generate';
import { ROOT } from '../util/paths';
import { objectiveLoss, objectiveRows, sliceObjective, type Objective } from './objectives';

/** A named weight: base weights by their Hugging Face name, adapters as `<module path>.lora_A` / `.lora_B`. */
export function namedVariables(model: Qwen2ForCausalLM): [string, tf.Variable][] {
  const out: [string, tf.Variable][] = [...model.params.entries()];
  for (const [p, m] of model.adapter.modules) out.push([`${p}.lora_A`, m.A], [`${p}.lora_B`, m.B]);
  return out;
}

/** Names of the trainable variables, in `model.trainableVariables()` order. */
export function trainableNames(model: Qwen2ForCausalLM): string[] {
  const byVar = new Map(namedVariables(model).map(([n, v]) => [v, n] as const));
  return model.trainableVariables().map((v) => byVar.get(v)!);
}

/**
 * The objective's loss on one model, with gradients for `vars` (aligned). Runs on any rank, in training mode
 * (LoRA dropout on, as on every other rank).
 */
export function localValueAndGrads(model: Qwen2ForCausalLM, objective: Objective, vars: tf.Variable[]): { value: tf.Scalar; grads: tf.Tensor[] } {
  const was = model.training;
  model.training = true;
  try {
    const { value, grads } = tf.variableGrads(() => objectiveLoss(model, objective), vars);
    return { value, grads: vars.map((v) => grads[v.name] ?? tf.zerosLike(v)) };
  } finally {
    model.training = was;
  }
}

/** [start, end) of each of `k` contiguous, near-equal shares of n rows (rank 0 gets the first). */
export function shares(n: number, k: number): [number, number][] {
  const out: [number, number][] = [];
  for (let r = 0; r < k; r++) out.push([Math.floor((r * n) / k), Math.floor(((r + 1) * n) / k)]);
  return out;
}

/**
 * How many data-parallel processes to use: `requested` (0 = one per CPU core, at most 4) on the wasm backend,
 * 1 on any other (a GPU parallelises inside each op; pure-JS cpu is only for checks).
 */
export function numProcessesFor(requested: number, backend: string = tf.getBackend()): number {
  if (backend !== 'wasm') return 1;
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, requested > 0 ? Math.floor(requested) : Math.min(4, cores));
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** One worker thread holding a replica. Requests are answered in order; a crash rejects everything pending. */
class Replica {
  private next = 0;
  private pending = new Map<number, Pending>();
  private dead: Error | null = null;

  constructor(readonly rank: number, readonly worker: Worker) {
    worker.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`data-parallel rank ${rank}: ${m.error}`));
    });
    const fail = (e: Error) => {
      this.dead = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on('error', (e) => fail(new Error(`data-parallel rank ${rank} crashed: ${e instanceof Error ? e.message : String(e)}`)));
    worker.on('exit', (code) => fail(new Error(`data-parallel rank ${rank} exited (code ${code})`)));
  }

  call<T>(op: string, args: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, ...args }, transfer);
    });
  }
}

/** What a replica needs to rebuild the model: config, every weight, the adapter and its state, which weights train. */
export interface ReplicaInit {
  backend: string;
  config: Qwen2Config;
  weights: [string, Float32Array][];
  lora: LoraConfig | null;
  adapter_state: Exclude<AdapterState, 'merged'>;
  trainable: string[];
}

async function snapshot(model: Qwen2ForCausalLM, backend: string): Promise<ReplicaInit> {
  const state = model.adapter.state;
  if (state === 'merged') throw new Error('DataParallel.start: the adapter is merged into the base weights; unmerge it first');
  const weights: [string, Float32Array][] = [];
  for (const [n, v] of namedVariables(model)) weights.push([n, ((await v.data()) as Float32Array).slice()]);
  return { backend, config: model.config, weights, lora: model.adapter.config, adapter_state: state, trainable: trainableNames(model) };
}

/** Rank 0 (this thread, `model`) plus worker replicas. `close()` when done (also on errors). */
export class DataParallel {
  private constructor(
    readonly model: Qwen2ForCausalLM,
    private readonly replicas: Replica[],
  ) {}

  /** One process: no worker, every call runs on `model` here (what `start(model, 1)` gives, without awaiting). */
  static local(model: Qwen2ForCausalLM): DataParallel {
    return new DataParallel(model, []);
  }

  /** Ranks, this thread included. */
  get size(): number {
    return this.replicas.length + 1;
  }

  /**
   * Start `num_processes - 1` replicas of `model` as it is now (weights, adapter, trainable flags). With
   * num_processes <= 1 no worker is started and every call runs here.
   */
  static async start(model: Qwen2ForCausalLM, num_processes: number): Promise<DataParallel> {
    const n = Math.max(1, Math.floor(num_processes));
    if (n === 1) return DataParallel.local(model);
    const replicas: Replica[] = [];
    const dp = new DataParallel(model, replicas);
    const init = await snapshot(model, tf.getBackend());
    const boot = path.join(ROOT, 'scripts', 'tsx-worker.mjs');
    const entry = pathToFileURL(path.join(ROOT, 'src', 'train', 'parallel_worker.ts')).href;
    try {
      for (let r = 1; r < n; r++) {
        const w = new Worker(boot, { workerData: { entry }, stdout: false, stderr: false });
        w.unref(); // a forgotten close() must not keep the process alive
        replicas.push(new Replica(r, w));
      }
      await Promise.all(replicas.map((rep) => rep.call('init', { init })));
    } catch (e) {
      await dp.close();
      throw e;
    }
    return dp;
  }

  /**
   * Loss and gradients of `objective` over all its rows, split across the ranks. Returns the summed loss value
   * and gradients aligned with `vars` (the caller owns them). `vars` must be the model's trainable variables.
   */
  async valueAndGrads(objective: Objective, vars: tf.Variable[]): Promise<{ value: number; grads: tf.Tensor[] }> {
    const parts = shares(objectiveRows(objective), this.size).filter(([s, e]) => e > s);
    if (parts.length <= 1) {
      const { value, grads } = localValueAndGrads(this.model, objective, vars);
      const v = (await value.data())[0];
      value.dispose();
      return { value: v, grads };
    }
    // Post the replicas' shares first, so they compute while this thread does its own.
    const remote = parts.slice(1).map(([s, e], i) => this.replicas[i].call<{ value: number; grads: Float32Array[] }>('grads', { objective: sliceObjective(objective, s, e) }));
    let local: ReturnType<typeof localValueAndGrads>;
    try {
      local = localValueAndGrads(this.model, sliceObjective(objective, parts[0][0], parts[0][1]), vars);
    } catch (e) {
      await Promise.allSettled(remote); // no replica's answer is left unhandled
      throw e;
    }
    let value = (await local.value.data())[0];
    local.value.dispose();
    let grads = local.grads;
    try {
      for (const r of await Promise.all(remote)) {
        value += r.value;
        const next = tf.tidy(() => grads.map((g, i) => tf.add(g, tf.tensor(r.grads[i], g.shape))));
        tf.dispose(grads);
        grads = next;
      }
    } catch (e) {
      tf.dispose(grads);
      throw e;
    }
    return { value, grads };
  }

  /** Send the trainable weights (after an optimizer step) to every replica. */
  async syncWeights(): Promise<void> {
    if (this.replicas.length === 0) return;
    const names = trainableNames(this.model);
    const vars = this.model.trainableVariables();
    const values = await Promise.all(vars.map(async (v) => ((await v.data()) as Float32Array).slice()));
    await Promise.all(
      this.replicas.map((rep) => {
        const copy = values.map((a) => a.slice()); // each replica gets its own buffers to take over
        return rep.call('set', { names, values: copy }, copy.map((a) => a.buffer as ArrayBuffer));
      }),
    );
  }

  /**
   * `generate` over the ranks: each samples a contiguous share of the prompts. Sampling (do_sample) needs one
   * stream per prompt (`opts.rngs`), so the split does not change what is sampled; greedy needs none.
   */
  async generate(prompts: readonly (readonly number[])[], opts: GenerateOptions): Promise<GenerateOutput> {
    const parts = shares(prompts.length, this.size).filter(([s, e]) => e > s);
    if (parts.length <= 1) return generate(this.model, prompts, opts);
    if (opts.do_sample && !opts.rngs) throw new Error('DataParallel.generate: sampling across processes needs one stream per prompt (opts.rngs)');
    const { rng: _one, rngs, ...plain } = opts;
    void _one;
    const remote = parts.slice(1).map(([s, e], i) =>
      this.replicas[i].call<{ out: GenerateOutput; rng_states: number[] | null }>('generate', {
        prompts: prompts.slice(s, e),
        opts: plain,
        rng_states: rngs ? rngs.slice(s, e).map((r) => r.state) : null,
      }),
    );
    const [s0, e0] = parts[0];
    let mine: GenerateOutput;
    try {
      mine = await generate(this.model, prompts.slice(s0, e0), { ...plain, rngs: rngs?.slice(s0, e0) });
    } catch (e) {
      await Promise.allSettled(remote);
      throw e;
    }
    const theirs = await Promise.all(remote);
    // Streams advance in place, as they would in one process.
    theirs.forEach((t, i) => t.rng_states?.forEach((st, j) => (rngs![parts[i + 1][0] + j].state = st)));
    const all = [mine, ...theirs.map((t) => t.out)];
    // Rows of different shares may have run a different number of decode steps: pad to the longest.
    const steps = Math.max(...all.map((o) => (o.sequences[0] ?? []).length));
    const pad = <T>(xs: T[][], v: T) => xs.map((x) => (x.length < steps ? [...x, ...new Array<T>(steps - x.length).fill(v)] : x));
    return {
      sequences: all.flatMap((o) => pad(o.sequences, opts.pad_token_id)),
      completion_mask: all.flatMap((o) => pad(o.completion_mask, 0)),
      logprobs: all.flatMap((o) => pad(o.logprobs, 0)),
      entropies: all.flatMap((o) => pad(o.entropies, 0)),
      finish_reasons: all.flatMap((o) => o.finish_reasons),
      forward_lengths: all.flatMap((o) => o.forward_lengths), // every rank's calls, rank after rank
      forward_rows: all.flatMap((o) => o.forward_rows),
    };
  }

  /** Stop the workers. Safe to call twice. */
  async close(): Promise<void> {
    const reps = this.replicas.splice(0);
    await Promise.all(reps.map((r) => r.worker.terminate()));
  }
}
