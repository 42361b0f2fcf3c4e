/**
 * `npm run bench [-- --backend B --preset a|b|all|qwen2.5-0.5b --torch=false]`: speed numbers as ONE JSON
 * object on stdout (progress on stderr).
 *
 * What it measures, on random weights of the shapes of bench/torch_ref.py (the PyTorch peer):
 *   - verifier: completions scored per second per reward mode (`benchVerifier`, src/verify/bench.ts);
 *   - service: the same verifier behind `serve` (a child process) under 32 clients x 25 requests x 16
 *     completions, per number of scoring threads, next to the in-process rate (src/serve/bench.ts);
 *   - per model preset: one GRPO training step in ms (forward, clipped-ratio + k3 KL loss, backward, Adam on
 *     the LoRA weights only, over B x T tokens whose last T-64 are the completion) and KV-cache generation
 *     new tokens per second (B prompts of 64 tokens, 48 new tokens, LoRA merged, temperature 1 sampling);
 *     on wasm both run on `--num_processes` data-parallel threads (default one per core; src/train/parallel.ts),
 *     as the training loop does, so a 2-core machine is compared with torch on its 2 threads;
 *   - torch: the same two numbers from `bench/torch_ref.py` run in the same process tree right after ours,
 *     when `/usr/bin/python3 -c 'import torch'` works, and ratios ours / torch (ms ratio: > 1 = slower;
 *     tokens/s ratio: < 1 = slower). Ratios compare the best step and the best generation run of each side
 *     (`--repeat N` runs of each): on a shared machine other work only ever slows a run down. Wall times;
 *     our process CPU time is printed too (`cpuMs*`), and the load average at start.
 * `--profile` prints instead a per-kernel breakdown of generation and of one training step at the course's
 * shapes (src/bench_profile.ts). What it is not: a correctness test (tests/ do that).
 *
 * `--preset qwen2.5-0.5b` (Qwen2.5-0.5B shapes, LoRA r=16, 8 prompts x 8 generations x 256 new tokens) is
 * the GPU path of issue 5; on wasm it is far too slow and only runs when asked by name.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from './model/backend';
import { Qwen2ForCausalLM } from './model/qwen2';
import { addLora, DEFAULT_TARGET_MODULES } from './model/lora';
import { completionLogps } from './train/logps';
import { makeBatch, sliceBatch } from './train/batch';
import { GRPO_DEFAULTS } from './train/config';
import { DataParallel, numProcessesFor } from './train/parallel';
import { AdamW, GradAccumulator } from './train/optim';
import { grpoObjective } from './train/objectives';
import { benchVerifier } from './verify/bench';
import { benchService } from './serve/bench';
import { parseFlags, flagsHelp, ArgError, type FlagSpec } from './util/args';
import { ROOT } from './util/paths';
import { Rng, rowStreams } from './util/rng';

const FLAGS: Record<string, FlagSpec> = {
  backend: { type: 'string', help: 'tfjs backend (default: $TFJS_BACKEND, else auto)', choices: ['auto', 'wasm', 'cpu', 'tensorflow', 'webgpu'] },
  preset: { type: 'string', help: 'model shapes to time', choices: ['a', 'b', 'all', 'qwen2.5-0.5b', 'none'], default: 'all' },
  steps: { type: 'int', help: 'timed training steps (after one warm-up step)', default: 3 },
  repeat: { type: 'int', help: 'timed generation runs, and torch_ref.py runs; the best of each is compared (a busy machine only ever slows a run)', default: 1 },
  torch_threads: { type: 'int', help: 'torch.set_num_threads for torch_ref.py (OpenBLAS itself stays at 1 thread)', default: 2 },
  torch: { type: 'bool', help: 'also run bench/torch_ref.py for the same presets (if torch imports)', default: true },
  verifier: { type: 'bool', help: 'time the verifier too (src/verify/bench.ts)', default: true },
  service: { type: 'bool', help: 'time the reward service (`serve` under load, src/serve/bench.ts) next to the in-process verifier', default: true },
  micro_batches: { type: 'int', help: 'training micro-batches per step (0 = preset default; keeps the wasm heap < 4 GiB)', default: 0 },
  profile: { type: 'bool', help: 'instead of the presets: a per-kernel breakdown of generation and one training step at the course\'s shapes (src/bench_profile.ts)', default: false },
  num_processes: { type: 'int', help: 'data-parallel worker threads incl. this one, wasm only (0 = one per core, max 4; 1 = the single-thread numbers)', default: 0 },
};

export const help = `npm run bench -- [flags]\n\nPrints one JSON object: verifier throughput, GRPO step ms and KV-cache generation tokens/s per preset,\nand the PyTorch peer's numbers with ratios.\n\n${flagsHelp(FLAGS)}`;

/** One benchmark shape: the model, the LoRA, the training batch and the generation batch. */
export interface BenchPreset {
  name: string;
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  intermediate_size: number;
  /** LoRA rank and alpha; targets are always q,k,v,o,gate,up,down. */
  r: number;
  lora_alpha: number;
  /** Training step: B sequences of T tokens, of which the first `prompt_len` are prompt (mask 0). */
  train_B: number;
  train_T: number;
  /** Generation: gen_B prompts of `prompt_len` tokens, `max_new_tokens` each. */
  gen_B: number;
  prompt_len: number;
  max_new_tokens: number;
  /** Default micro-batches for the training step (b fits the 4 GiB wasm heap in one since the fused kernels). */
  micro_batches: number;
  /** bench/torch_ref.py config letter, if the peer has this shape. */
  /** The PyTorch peer: a torch_ref.py config, or 'qwen2.5-0.5b' for bench/torch_qwen05b.py (CUDA when present). */
  torch?: 'a' | 'b' | 'qwen2.5-0.5b';
}

export const PRESETS: Record<string, BenchPreset> = {
  a: { name: 'a', vocab_size: 1024, hidden_size: 128, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 384,
    r: 8, lora_alpha: 16, train_B: 32, train_T: 96, gen_B: 32, prompt_len: 64, max_new_tokens: 48, micro_batches: 1, torch: 'a' },
  b: { name: 'b', vocab_size: 2048, hidden_size: 256, num_hidden_layers: 6, num_attention_heads: 8, num_key_value_heads: 2, intermediate_size: 768,
    r: 8, lora_alpha: 16, train_B: 32, train_T: 128, gen_B: 32, prompt_len: 64, max_new_tokens: 48, micro_batches: 1, torch: 'b' },
  // Issue 5 (GPU): Qwen2.5-0.5B shapes; 8 prompts x 8 generations = 64 rows, 256 new tokens.
  'qwen2.5-0.5b': { name: 'qwen2.5-0.5b', vocab_size: 151936, hidden_size: 896, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2,
    intermediate_size: 4864, r: 16, lora_alpha: 32, train_B: 64, train_T: 320, gen_B: 64, prompt_len: 64, max_new_tokens: 256, micro_batches: 8,
    torch: 'qwen2.5-0.5b' },
};

/** The PyTorch peer's numbers for one config, or why there are none. */
export type TorchResult = { ok: true; stepMsMean: number; stepMsMin: number; genNewTokPerS: number; raw: Record<string, unknown> } | { ok: false; reason: string };

/** True when Debian's python3 has torch. */
export function torchAvailable(): boolean {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * Run `OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_ref.py <cfg> <threads> <steps>` and parse its JSON
 * line. Default two torch threads, single-threaded OpenBLAS: the setting docs/tfjs-on-cpu.md describes (our wasm backend
 * runs one thread; `--torch_threads 1` gives torch the same single core).
 */
export function runTorchRef(cfg: 'a' | 'b' | 'qwen2.5-0.5b', steps: number, threads = 2, microBatches = 8): TorchResult {
  // qwen2.5-0.5b: same shapes and work as our preset, float32 (as tfjs), on CUDA when torch sees a GPU.
  const big = cfg === 'qwen2.5-0.5b';
  const script = path.join(ROOT, 'bench', big ? 'torch_qwen05b.py' : 'torch_ref.py');
  if (!fs.existsSync(script)) return { ok: false, reason: `${script} not found` };
  const args = big ? [script, '--steps', String(steps), '--micro-batches', String(microBatches)] : [script, cfg, String(threads), String(steps)];
  const r = spawnSync('/usr/bin/python3', args, {
    env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
    encoding: 'utf8',
    timeout: 600_000,
  });
  if (r.status !== 0) return { ok: false, reason: `${path.basename(script)} ${cfg} exited ${r.status}: ${(r.stderr ?? '').trim().split('\n').slice(-1)[0]}` };
  const line = r.stdout.trim().split('\n').slice(-1)[0];
  try {
    const raw = JSON.parse(line) as Record<string, unknown> & { stepMs: number[]; stepMsMean: number; gen: { newTokPerS: number } };
    return { ok: true, stepMsMean: raw.stepMsMean, stepMsMin: Math.min(...raw.stepMs), genNewTokPerS: raw.gen.newTokPerS, raw };
  } catch {
    return { ok: false, reason: `${path.basename(script)} ${cfg}: could not parse output '${line.slice(0, 200)}'` };
  }
}

function modelConfig(p: BenchPreset): Record<string, unknown> {
  return {
    model_type: 'qwen2', vocab_size: p.vocab_size, hidden_size: p.hidden_size, intermediate_size: p.intermediate_size,
    num_hidden_layers: p.num_hidden_layers, num_attention_heads: p.num_attention_heads, num_key_value_heads: p.num_key_value_heads,
    max_position_embeddings: Math.max(512, p.prompt_len + p.max_new_tokens, p.train_T + 1), rope_theta: 10000, rms_norm_eps: 1e-6,
    tie_word_embeddings: true, // as torch_ref.py (and Qwen2.5-0.5B)
  };
}

/**
 * GRPO training step timing: forward, loss, backward and AdamW on the LoRA weights, over micro-batches, each
 * split over the data-parallel processes (src/train/parallel.ts) when there are several.
 */
async function benchTrainStep(model: Qwen2ForCausalLM, dp: DataParallel, p: BenchPreset, steps: number, microBatches: number): Promise<Record<string, unknown>> {
  const rng = new Rng(1);
  const B = p.train_B, T = p.train_T, K = T - p.prompt_len; // K completion tokens get a log-prob and a loss
  if (B % microBatches !== 0) throw new ArgError(`--micro_batches ${microBatches} does not divide the batch ${B}`);
  const mb = B / microBatches;
  const tokens = () => rng.int(p.vocab_size);
  const batch = makeBatch(
    Array.from({ length: B }, () => Array.from({ length: p.prompt_len }, tokens)),
    Array.from({ length: B }, () => Array.from({ length: K }, tokens)),
    0,
  );
  const advantages = Array.from({ length: B }, () => rng.normal());
  // old / ref log-probs: one no-grad pass, as torch_ref.py (ref = old - 0.01 so the KL term is non-zero).
  const t0 = performance.now();
  const old: number[][] = [];
  for (let i = 0; i < microBatches; i++) {
    const t = completionLogps(model, sliceBatch(batch, i * mb, (i + 1) * mb));
    old.push(...((await t.array()) as number[][]));
    t.dispose();
  }
  const fwdNoGradMs = performance.now() - t0;
  const ref = old.map((r) => r.map((x) => x - 0.01));
  const vars = model.trainableVariables();
  const opt = new AdamW(vars, { weight_decay: 0, adam_beta1: 0.9, adam_beta2: 0.999, adam_epsilon: 1e-8 });
  const config = { ...GRPO_DEFAULTS, beta: 0.04, epsilon: 0.2, epsilon_high: 0.2, loss_type: 'bnpo' as const, max_completion_length: K };
  const size = { num_sequences: B, num_tokens: B * K, num_micro_batches: microBatches };
  const step = async (): Promise<number> => {
    const acc = new GradAccumulator(vars);
    let lossTotal = 0;
    for (let i = 0; i < microBatches; i++) {
      const [s, e] = [i * mb, (i + 1) * mb];
      const objective = grpoObjective(sliceBatch(batch, s, e), advantages.slice(s, e), old.slice(s, e), ref.slice(s, e), config, size);
      const r = await dp.valueAndGrads(objective, vars);
      lossTotal += r.value;
      acc.addList(r.grads);
    }
    const grads = acc.take();
    opt.apply(grads, 1e-4);
    tf.dispose(grads);
    await dp.syncWeights(); // reads the updated weights back: also waits for the update
    if (dp.size === 1) await vars[vars.length - 1].data();
    return lossTotal;
  };
  await step(); // warm-up (kernel set-up, transposes)
  const ms: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let s = 0; s < steps; s++) {
    const t = performance.now();
    await step();
    ms.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(cpu0);
  opt.dispose();
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  return {
    stepMs: ms.map((x) => round1(x)), stepMsMean: round1(mean), stepMsMin: round1(Math.min(...ms)), cpuMsPerStep: round1((cpu.user + cpu.system) / 1000 / steps), trainTokPerS: Math.round((B * T) / (mean / 1000)),
    fwdNoGradMs: round1(fwdNoGradMs), micro_batches: microBatches, num_processes: dp.size, B, T, completion_tokens: K,
    loraParams: vars.reduce((a, v) => a + v.size, 0),
  };
}

/** KV-cache generation timing: gen_B prompts of prompt_len random tokens, max_new_tokens each, merged LoRA. */
async function benchGenerate(dp: DataParallel, p: BenchPreset, repeat: number): Promise<Record<string, unknown>> {
  const rng = new Rng(2);
  const prompts = Array.from({ length: p.gen_B }, () => Array.from({ length: p.prompt_len }, () => rng.int(p.vocab_size)));
  const o = { pad_token_id: 0, do_sample: true, temperature: 1 };
  await dp.generate(prompts.map((x) => x.slice(0, 8)), { ...o, max_new_tokens: 2, rngs: rowStreams(new Rng(3), p.gen_B) }); // warm-up, as torch_ref.py
  const runs: { ms: number; cpuMs: number; newTokPerS: number }[] = [];
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const out = await dp.generate(prompts, { ...o, max_new_tokens: p.max_new_tokens, rngs: rowStreams(new Rng(3), p.gen_B) });
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0); // this thread's CPU only (workers are threads of this process: included)
    const newTokens = out.completion_mask.reduce((a, m) => a + m.reduce((x, y) => x + y, 0), 0);
    runs.push({ ms: Math.round(ms), cpuMs: Math.round((cpu.user + cpu.system) / 1000), newTokPerS: round1(newTokens / (ms / 1000)) });
  }
  const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
  return { ...best, runs, B: p.gen_B, prompt_len: p.prompt_len, max_new_tokens: p.max_new_tokens, merged_lora: true, num_processes: dp.size };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

async function benchPreset(p: BenchPreset, steps: number, microBatches: number, repeat: number, num_processes: number): Promise<Record<string, unknown>> {
  const n0 = tf.memory().numTensors;
  const model = Qwen2ForCausalLM.random(modelConfig(p), 0);
  addLora(model, { r: p.r, lora_alpha: p.lora_alpha, target_modules: [...DEFAULT_TARGET_MODULES] }, 0);
  const dp = await DataParallel.start(model, numProcessesFor(num_processes));
  let train: Record<string, unknown>, gen: Record<string, unknown>;
  try {
    console.error(`[bench] preset ${p.name}: training step (${p.train_B} x ${p.train_T}, ${microBatches} micro-batch(es), ${dp.size} process(es)) ...`);
    train = await benchTrainStep(model, dp, p, steps, microBatches);
    console.error(`[bench] preset ${p.name}: generation (${p.gen_B} x ${p.prompt_len} prompt + ${p.max_new_tokens} new) ...`);
    gen = await benchGenerate(dp, p, repeat);
  } finally {
    await dp.close();
  }
  model.dispose();
  const leaked = tf.memory().numTensors - n0;
  return { config: modelConfig(p), lora: { r: p.r, lora_alpha: p.lora_alpha, target_modules: DEFAULT_TARGET_MODULES }, train, gen, leaked_tensors: leaked };
}

/** Everything `npm run bench` prints. */
export async function runBench(argv: string[]): Promise<Record<string, unknown>> {
  const f = parseFlags(argv, FLAGS);
  const backend = await initBackend(f.backend as string);
  const out: Record<string, unknown> = {
    backend,
    machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? 'unknown', node: process.version, tfjs: tf.version.tfjs },
    // Other processes on the machine skew wall times (ours and torch's alike): judge the numbers by this.
    loadavg_at_start: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
  if (f.profile) {
    if (backend !== 'wasm') throw new ArgError('--profile times wasm kernels: use --backend wasm');
    const { profileCourseShapes } = await import('./bench_profile');
    out.profile = await profileCourseShapes();
    return out;
  }
  if (f.verifier) out.verifier = benchVerifier(); // completions scored per second, per reward mode
  if (f.service) out.service = await benchService(); // the same verifier behind HTTP, under load
  const names = f.preset === 'all' ? ['a', 'b'] : f.preset === 'none' ? [] : [f.preset as string];
  const presets: Record<string, unknown> = {};
  for (const name of names) {
    const p = PRESETS[name];
    presets[name] = await benchPreset(p, f.steps as number, (f.micro_batches as number) || p.micro_batches, f.repeat as number, f.num_processes as number);
  }
  // The PyTorch peer runs after ours (never at the same time: both want the cores).
  const useTorch = f.torch && names.some((n) => PRESETS[n].torch) && torchAvailable();
  for (const name of names) {
    const p = PRESETS[name];
    const r = presets[name] as { train: { stepMsMean: number; stepMsMin: number }; gen: { newTokPerS: number }; torch?: unknown; ratio?: unknown };
    if (!p.torch) continue;
    if (!useTorch) {
      r.torch = { skipped: f.torch ? "/usr/bin/python3 -c 'import torch' failed" : '--torch false' };
      continue;
    }
    console.error(`[bench] PyTorch peer (${p.torch}) ...`);
    // Best of `repeat` runs, as for ours: on a shared machine interference only ever slows a run down.
    const mb = (f.micro_batches as number) || p.micro_batches;
    const ts = Array.from({ length: f.repeat as number }, () => runTorchRef(p.torch!, f.steps as number, f.torch_threads as number, mb));
    const okRuns = ts.filter((t): t is Extract<TorchResult, { ok: true }> => t.ok);
    if (okRuns.length === 0) {
      r.torch = { error: (ts[0] as { reason: string }).reason };
      continue;
    }
    const tStep = Math.min(...okRuns.map((t) => t.stepMsMin));
    const tGen = Math.max(...okRuns.map((t) => t.genNewTokPerS));
    r.torch = { stepMsMin: tStep, stepMsMean: okRuns[0].stepMsMean, genNewTokPerS: tGen, runs: okRuns.map((t) => t.raw) };
    r.ratio = {
      // > 1: ours takes longer per step.
      stepMs_ours_over_torch: Math.round((r.train.stepMsMin / tStep) * 100) / 100,
      // < 1: ours generates fewer tokens per second.
      newTokPerS_ours_over_torch: Math.round((r.gen.newTokPerS / tGen) * 100) / 100,
    };
  }
  out.presets = presets;
  return out;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(help);
    return 0;
  }
  const result = await runBench(argv);
  console.log(JSON.stringify(result));
  return 0;
}
