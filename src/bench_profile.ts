/**
 * `npm run bench -- --profile`: where the time goes, per kernel, at the course's shapes (what
 * docs/benchmarks.md's breakdown tables come from). Prints one JSON object.
 *
 * Shapes: the pretrained tiny model (models/tiny-base: hidden 128, 4 layers, 4/2 heads, vocab 1024), LoRA
 * r=16 (alpha 32) with non-zero B, real course prompts (synthesized rows through the chat template, ~110-150
 * tokens) and their gold completions (~23 tokens). One process's share of the course's work on 2 processes:
 *   generation   32 rows = 4 prompts x 8 completions, 24 new tokens (no stop token, so every step has 32 rows):
 *                the prefill (of the 4 distinct prompts, and of all 32 rows as before share_prompts), one decode
 *                step through the fused step (src/model/decode.ts) and through `forward`;
 *   grpo         one micro-batch share, 8 rows = 1 prompt x 8 completions, forward + backward (the GRPO loss),
 *                and the 1-process micro-batch of 16 rows = 2 prompts x 8;
 *   sft          one micro-batch share of 8 distinct rows (full fine-tuning, the common-prefix path).
 *
 * How: every wasm kernel is re-registered with a performance.now() wrapper (tf.profile inflates: it copies
 * every output), so this runs alone in its process. "other_ms" = wall - kernels: JS work between kernels
 * (tfjs dispatch, autodiff bookkeeping, sampling). The fused decode step calls XNNPACK directly, not through
 * tfjs kernels; its parts are timed inside the decoder (FusedDecoder.profile).
 * What it is not: a benchmark (single runs, after warm-up; compare runs with `npm run bench`).
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Qwen2ForCausalLM } from './model/qwen2';
import { addLora } from './model/lora';
import { FusedDecoder } from './model/decode';
import { generate } from './model/generate';
import { ChatTokenizer } from './model/tokenizer';
import { synthesize } from './env/synth';
import { goldCompletionIds, makeBatch, promptIds, type Batch } from './train/batch';
import { crossEntropyLoss, grpoObjective, objectiveLoss } from './train/objectives';
import { GRPO_DEFAULTS } from './train/config';
import { ROOT } from './util/paths';
import { Rng, rowStreams } from './util/rng';

type Table = Map<string, { ms: number; calls: number }>;
let table: Table | null = null;

/** Wrap every kernel registered for wasm with a timer that adds into `table` while it is set. */
function wrapKernels(): void {
  for (const k of tf.getKernelsForBackend('wasm')) {
    const f = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        if (!table) return f(args);
        const t0 = performance.now();
        const r = f(args);
        const e = table.get(k.kernelName) ?? { ms: 0, calls: 0 };
        e.ms += performance.now() - t0;
        e.calls++;
        table.set(k.kernelName, e);
        return r;
      },
    });
  }
}

interface Profile {
  wall_ms: number;
  kernels_ms: number;
  other_ms: number;
  kernel_calls: number;
  /** kernel -> [ms, calls], largest first. */
  by_kernel: Record<string, [number, number]>;
}

const r2 = (x: number) => Math.round(x * 100) / 100;

/** Run f `reps` times untimed, then once timed; per-kernel table divided by `per` (e.g. decode steps). */
async function measure(f: () => Promise<void>, per = 1, warm = 2): Promise<Profile> {
  for (let i = 0; i < warm; i++) await f();
  table = new Map();
  const t0 = performance.now();
  await f();
  const wall = performance.now() - t0;
  const t = table;
  table = null;
  return summarize(t, wall, per);
}

function summarize(t: Table, wall: number, per: number): Profile {
  let ms = 0, calls = 0;
  for (const v of t.values()) {
    ms += v.ms;
    calls += v.calls;
  }
  const by = [...t.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 14);
  return {
    wall_ms: r2(wall / per), kernels_ms: r2(ms / per), other_ms: r2((wall - ms) / per), kernel_calls: Math.round(calls / per),
    by_kernel: Object.fromEntries(by.map(([k, v]) => [k, [r2(v.ms / per), r2(v.calls / per)]])),
  };
}

/** Profile B minus profile A, per step (for "decode step" = N-token run minus the prefill-only run). */
function diff(b: Profile, a: Profile, per: number): Profile {
  const keys = new Set([...Object.keys(a.by_kernel), ...Object.keys(b.by_kernel)]);
  const by: [string, [number, number]][] = [];
  for (const k of keys) {
    const x = b.by_kernel[k] ?? [0, 0], y = a.by_kernel[k] ?? [0, 0];
    by.push([k, [r2((x[0] - y[0]) / per), r2((x[1] - y[1]) / per)]]);
  }
  by.sort((p, q) => q[1][0] - p[1][0]);
  return {
    wall_ms: r2((b.wall_ms - a.wall_ms) / per), kernels_ms: r2((b.kernels_ms - a.kernels_ms) / per), other_ms: r2((b.other_ms - a.other_ms) / per),
    kernel_calls: Math.round((b.kernel_calls - a.kernel_calls) / per), by_kernel: Object.fromEntries(by.slice(0, 14).filter(([, v]) => v[1] > 0)),
  };
}

export async function profileCourseShapes(): Promise<Record<string, unknown>> {
  wrapKernels();
  const dir = path.join(ROOT, 'models', 'tiny-base');
  const tok = await ChatTokenizer.fromPretrained(dir);
  const model = await Qwen2ForCausalLM.fromPretrained(dir);
  addLora(model, { r: 16, lora_alpha: 32 }, 0);
  const rng = new Rng(1);
  for (const m of model.adapter.modules.values()) m.B.assign(tf.tensor(Array.from({ length: m.B.size }, () => rng.normal() * 0.01), m.B.shape));
  const rows = synthesize({ seed: 0, n: 200, nTest: 5, nHeldout: 5 }).train;
  const prompts = rows.map((r) => promptIds(tok, r));
  const golds = rows.map((r) => goldCompletionIds(tok, r));
  const out: Record<string, unknown> = { model: dir, lora_r: 16 };

  // Generation: 4 prompts x 8 rows, 24 new tokens, no stop.
  const G = 8, U = 4, N = 24;
  const genPrompts = prompts.slice(0, U).flatMap((p) => new Array<number[]>(G).fill(p));
  const gen = (max_new_tokens: number, fused: boolean, share = true) => async () => {
    await generate(model, genPrompts, { pad_token_id: tok.pad_token_id, max_new_tokens, rngs: rowStreams(new Rng(3), genPrompts.length), fused_decode: fused, share_prompts: share });
  };
  const prefillEveryRow = await measure(gen(1, true, false));
  const prefill = await measure(gen(1, true));
  const genForward = await measure(gen(N, false));
  for (let i = 0; i < 2; i++) await gen(N, true)(); // warm-up, untimed
  FusedDecoder.profile = {};
  const genFused = await measure(gen(N, true), 1, 0);
  const parts = FusedDecoder.profile;
  FusedDecoder.profile = null;
  const steps = parts.steps ?? N - 1;
  const fusedStep = (parts.step ?? 0) / steps;
  out.generation = {
    rows: genPrompts.length, distinct_prompts: U, prompt_tokens: genPrompts.map((p) => p.length), new_tokens: N,
    prefill_every_row: prefillEveryRow,
    prefill,
    decode_step_forward: diff(genForward, prefill, N - 1),
    decode_step_fused: {
      ms: r2(fusedStep), products_ms: r2((parts.products ?? 0) / steps), attention_ms: r2((parts.attention ?? 0) / steps),
      js_ms: r2(fusedStep - ((parts.products ?? 0) + (parts.attention ?? 0)) / steps),
      whole_call_minus_prefill_per_step_ms: r2((genFused.wall_ms - prefill.wall_ms) / (N - 1)),
    },
  };

  // GRPO micro-batch shares: 1 prompt x 8 and 2 prompts x 8, gold completions as the sampled ones.
  const vars = model.trainableVariables();
  const grpoBatch = (nPrompts: number): Batch => {
    const ps: number[][] = [], cs: number[][] = [];
    for (let u = 0; u < nPrompts; u++) for (let g = 0; g < G; g++) {
      ps.push(prompts[u]);
      cs.push(golds[u * G + g]);
    }
    return makeBatch(ps, cs, tok.pad_token_id);
  };
  const grpoStep = (b: Batch) => async () => {
    const adv = b.input_ids.map((_, i) => (i % 2 ? 1 : -1));
    const o = grpoObjective(b, adv, null, null, GRPO_DEFAULTS, { num_sequences: 64, num_tokens: 1500, num_micro_batches: 4 });
    const { value, grads } = tf.variableGrads(() => objectiveLoss(model, o), vars);
    await value.data();
    for (const g of Object.values(grads)) await g.data();
    tf.dispose([value, ...Object.values(grads)]);
  };
  out.grpo_micro_batch_8_rows = await measure(grpoStep(grpoBatch(1)));
  out.grpo_micro_batch_16_rows = await measure(grpoStep(grpoBatch(2)));

  // SFT micro-batch share: 8 distinct rows, every weight trains (the adapter removed: a full model).
  const sftModel = await Qwen2ForCausalLM.fromPretrained(dir);
  const sb = makeBatch(prompts.slice(0, 8), golds.slice(0, 8), tok.pad_token_id);
  const svars = sftModel.trainableVariables();
  const num_tokens = sb.completion_mask.flat().reduce((a, x) => a + x, 0);
  out.sft_micro_batch_8_rows = await measure(async () => {
    sftModel.training = true;
    const { value, grads } = tf.variableGrads(() => crossEntropyLoss(sftModel, sb, num_tokens), svars);
    sftModel.training = false;
    await value.data();
    for (const g of Object.values(grads)) await g.data();
    tf.dispose([value, ...Object.values(grads)]);
  });
  sftModel.dispose();
  model.dispose();
  return out;
}
