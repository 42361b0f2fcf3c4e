/**
 * The worker side of src/train/parallel.ts: one replica of the model on its own wasm backend.
 *
 * Messages (each answered with {id, ok, result} or {id, ok: false, error}, in order):
 *   init      {init: ReplicaInit}            build the model: weights, adapter and its state, trainable flags
 *   set       {names, values}                assign trainable weights (after rank 0's optimizer step)
 *   grads     {objective: Objective}         -> {value, grads: Float32Array[]} in trainable-variable order
 *   generate  {prompts, opts, rng_states}    -> {out: GenerateOutput, rng_states}
 *
 * What a worker loads: the model, generation and objectives.ts (parallel.ts's imports), never a trainer, the
 * rewards or the checkpoints (tests/imports.test.ts checks it).
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../model/backend';
import { Qwen2ForCausalLM } from '../model/qwen2';
import { addLora } from '../model/lora';
import { generate, type GenerateOptions } from '../model/generate';
import { Rng } from '../util/rng';
import { localValueAndGrads, namedVariables, type ReplicaInit } from './parallel';
import type { Objective } from './objectives';

let model: Qwen2ForCausalLM | null = null;
let byName = new Map<string, tf.Variable>();

async function init(i: ReplicaInit): Promise<null> {
  await initBackend(i.backend, { quiet: true });
  const weights = new Map(i.weights.filter(([n]) => !n.endsWith('.lora_A') && !n.endsWith('.lora_B')));
  model = new Qwen2ForCausalLM(i.config, weights);
  if (i.lora) addLora(model, i.lora, 0);
  if (i.adapter_state === 'disabled') model.adapter.disable();
  byName = new Map(namedVariables(model));
  for (const [n, data] of i.weights) if (n.endsWith('.lora_A') || n.endsWith('.lora_B')) byName.get(n)!.assign(tf.tensor(data, byName.get(n)!.shape));
  const trainable = new Set(i.trainable);
  for (const [n, v] of byName) v.trainable = trainable.has(n);
  return null;
}

function set(names: string[], values: Float32Array[]): null {
  names.forEach((n, k) => {
    const v = byName.get(n);
    if (!v) throw new Error(`unknown weight ${n}`);
    const t = tf.tensor(values[k], v.shape);
    v.assign(t);
    t.dispose();
  });
  return null;
}

async function grads(objective: Objective): Promise<{ value: number; grads: Float32Array[] }> {
  const m = model!;
  const r = localValueAndGrads(m, objective, m.trainableVariables()); // in training mode, as on rank 0
  const value = (await r.value.data())[0];
  const out: Float32Array[] = [];
  for (const g of r.grads) out.push(((await g.data()) as Float32Array).slice());
  tf.dispose([r.value, ...r.grads]);
  return { value, grads: out };
}

async function gen(prompts: number[][], opts: GenerateOptions, rng_states: number[] | null) {
  const rngs = rng_states ? rng_states.map((s) => Rng.fromState(s)) : undefined;
  const out = await generate(model!, prompts, { ...opts, rngs });
  return { out, rng_states: rngs ? rngs.map((r) => r.state) : null };
}

/** One message at a time: a request never starts while an earlier one is still awaiting. */
let queue: Promise<void> = Promise.resolve();
parentPort!.on('message', (m: { id: number; op: string } & Record<string, unknown>) => {
  queue = queue.then(() => handle(m));
});

async function handle(m: { id: number; op: string } & Record<string, unknown>): Promise<void> {
  try {
    let result: unknown;
    let transfer: ArrayBuffer[] = [];
    switch (m.op) {
      case 'init':
        result = await init(m.init as ReplicaInit);
        break;
      case 'set':
        result = set(m.names as string[], m.values as Float32Array[]);
        break;
      case 'grads': {
        const r = await grads(m.objective as Objective);
        transfer = r.grads.map((g) => g.buffer as ArrayBuffer);
        result = r;
        break;
      }
      case 'generate':
        result = await gen(m.prompts as number[][], m.opts as GenerateOptions, m.rng_states as number[] | null);
        break;
      default:
        throw new Error(`unknown op ${m.op}`);
    }
    parentPort!.postMessage({ id: m.id, ok: true, result }, transfer);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, ok: false, error: e instanceof Error ? e.stack ?? e.message : String(e) });
  }
}
