/**
 * The training phases as the commands and notebooks run them, from folders on disk to folders on disk:
 *
 *   sftPhase   model dir (tiny random model, or a real checkpoint) -> SFT -> an output dir
 *              tiny model: full fine-tuning, saved as a whole HF model dir (config, safetensors, tokenizer)
 *              real checkpoint: LoRA, saved as a PEFT adapter (the base stays where it is)
 *   grpoPhase  (base model [+ SFT adapter folded in]) + a fresh or resumed GRPO adapter -> trainGRPO
 *
 * Not here: the algorithms (sft.ts, grpo.ts); data synthesis and the report (src/cli/course.ts).
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Qwen2ForCausalLM } from '../model/qwen2';
import { ChatTokenizer } from '../model/tokenizer';
import { addLora, loadAdapter, removeLora, saveAdapter } from '../model/lora';
import type { GRPOConfig, SFTConfig } from './config';
import { trainSFT, type SFTResult } from './sft';
import { trainGRPO, type GRPOResult, type GRPOOptions } from './grpo';
import { latestCheckpoint, loadCheckpoint } from './checkpoint';
import { MetricsLog, writeAtomic } from './log';
import type { TrainRow } from './batch';
import { allFinite } from './optim';
import { DataParallel, numProcessesFor } from './parallel';

/** Files of a tokenizer directory copied next to saved weights, so an output dir loads on its own. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json', 'chat_template.jinja', 'chat_template.json', 'vocab.json', 'merges.txt'];

export function copyTokenizerFiles(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const f of TOKENIZER_FILES) if (fs.existsSync(path.join(from, f))) fs.copyFileSync(path.join(from, f), path.join(to, f));
}

/**
 * Fold the LoRA adapter into the base weights for good (PEFT's merge_and_unload): W += scaling * B A, then the
 * adapter is dropped. Used to make "base + SFT adapter" the starting point (and the KL reference) of GRPO.
 */
export function mergeAndUnload(model: Qwen2ForCausalLM): void {
  for (const [name, m] of model.lora) {
    const W = model.params.get(`${name}.weight`)!;
    const merged = tf.tidy(() => tf.add(W, tf.mul(tf.matMul(m.B, m.A), model.loraScaling)));
    W.assign(merged);
    merged.dispose();
  }
  removeLora(model);
  model.invalidateCaches();
}

export interface SFTPhaseResult extends SFTResult {
  /** 'full': outDir is a complete model dir; 'lora': outDir holds a PEFT adapter for `base`. */
  kind: 'full' | 'lora';
  outDir: string;
}

/**
 * SFT from `modelDir` into `outDir`. `lora` = null: every weight trains (the tiny model from scratch);
 * otherwise only a LoRA adapter with these settings.
 */
export async function sftPhase(o: {
  modelDir: string;
  outDir: string;
  rows: readonly TrainRow[];
  config: SFTConfig;
  lora?: { r: number; lora_alpha: number; lora_dropout: number } | null;
  progress?: boolean;
}): Promise<SFTPhaseResult> {
  const tok = await ChatTokenizer.fromPretrained(o.modelDir);
  const model = await Qwen2ForCausalLM.fromPretrained(o.modelDir);
  try {
    if (o.lora) addLora(model, o.lora, o.config.seed);
    fs.mkdirSync(o.outDir, { recursive: true });
    const log = MetricsLog.open(path.join(o.outDir, 'metrics.jsonl'));
    writeAtomic(path.join(o.outDir, 'training_config.json'), JSON.stringify(o.config, null, 2) + '\n');
    const dp = await DataParallel.start(model, numProcessesFor(o.config.num_processes));
    let r: SFTResult;
    try {
      r = await trainSFT({ model, tokenizer: tok, rows: o.rows, config: o.config, log, progress: o.progress, parallel: dp.size > 1 ? dp : null });
    } finally {
      await dp.close();
    }
    if (!(await allFinite(model.trainableVariables()))) throw new Error('SFT produced non-finite weights; nothing saved');
    if (o.lora) {
      await saveAdapter(model, o.outDir, path.resolve(o.modelDir));
      return { ...r, kind: 'lora', outDir: o.outDir };
    }
    await model.savePretrained(o.outDir);
    copyTokenizerFiles(o.modelDir, o.outDir);
    return { ...r, kind: 'full', outDir: o.outDir };
  } finally {
    model.dispose();
  }
}

/** Where the GRPO policy starts: a model dir, plus optionally an SFT adapter folded into it. */
export interface GRPOStart {
  base_model: string;
  sft_adapter: string | null;
}

/** Load the GRPO starting model (base, SFT adapter folded in) and its tokenizer. */
export async function loadStart(s: GRPOStart): Promise<{ model: Qwen2ForCausalLM; tokenizer: ChatTokenizer }> {
  const tokenizer = await ChatTokenizer.fromPretrained(s.base_model);
  const model = await Qwen2ForCausalLM.fromPretrained(s.base_model);
  if (s.sft_adapter) {
    await loadAdapter(model, s.sft_adapter);
    mergeAndUnload(model);
  }
  return { model, tokenizer };
}

/**
 * GRPO into `runDir`. With `resume`, continue from the newest checkpoint there: its adapter, optimizer, RNG,
 * data cursor and config (max_steps may be raised by `config`). Returns the result and leaves the model to the
 * caller (disposed unless `keepModel`).
 */
export async function grpoPhase(o: {
  start: GRPOStart;
  runDir: string;
  rows: readonly TrainRow[];
  config: GRPOConfig;
  resume?: boolean;
  progress?: boolean;
  onStep?: GRPOOptions['onStep'];
  keepModel?: boolean;
}): Promise<GRPOResult & { model: Qwen2ForCausalLM | null; tokenizer: ChatTokenizer; config: GRPOConfig }> {
  const ckDir = o.resume ? latestCheckpoint(o.runDir) : null;
  if (o.resume && !ckDir) throw new Error(`--resume: no complete checkpoint-<step> folder in ${o.runDir}`);
  const ck = ckDir ? loadCheckpoint(ckDir) : null;
  const start = ck ? ((ck.state.extra?.start as GRPOStart | undefined) ?? o.start) : o.start;
  // A resumed run keeps its checkpoint's config, but may run longer and on another number of processes.
  const config: GRPOConfig = ck
    ? { ...(ck.config as unknown as GRPOConfig), max_steps: o.config.max_steps, num_processes: o.config.num_processes }
    : o.config;
  const { model, tokenizer } = await loadStart(start);
  try {
    if (ck) await loadAdapter(model, ck.dir);
    else addLora(model, { r: config.lora_r, lora_alpha: config.lora_alpha, lora_dropout: config.lora_dropout }, config.seed);
    fs.mkdirSync(o.runDir, { recursive: true });
    writeAtomic(path.join(o.runDir, 'training_config.json'), JSON.stringify(config, null, 2) + '\n');
    const dp = await DataParallel.start(model, numProcessesFor(config.num_processes));
    const r = await trainGRPO({
      model,
      tokenizer,
      rows: o.rows,
      config,
      runDir: o.runDir,
      resume: ck,
      base_model_name_or_path: path.resolve(start.base_model),
      extra: { start: { base_model: path.resolve(start.base_model), sft_adapter: start.sft_adapter && path.resolve(start.sft_adapter) } },
      onStep: o.onStep,
      progress: o.progress,
      parallel: dp.size > 1 ? dp : null,
    }).finally(() => dp.close());
    return { ...r, model: o.keepModel ? model : null, tokenizer, config };
  } finally {
    if (!o.keepModel) model.dispose();
  }
}
