/**
 * The training phases as the commands and notebooks run them, from folders on disk to folders on disk:
 *
 *   sftPhase   model dir (the tiny model, or a real checkpoint) -> SFT -> an output dir
 *              full fine-tuning: saved as a whole HF model dir (config, safetensors, tokenizer)
 *              use_peft (a real checkpoint): LoRA, saved as a PEFT adapter (the base stays where it is)
 *   grpoPhase  (base model [+ SFT adapter folded in]) + a fresh or resumed GRPO adapter -> trainGRPO
 *
 * Each phase starts the data-parallel ranks its config asks for and closes them when done.
 * Not here: the algorithms (sft.ts, grpo.ts), resolving configs (config.ts), data synthesis and the report
 * (src/cli/course.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Qwen2ForCausalLM } from '../model/qwen2';
import { ChatTokenizer } from '../model/tokenizer';
import { addLora, loadAdapter, saveAdapter } from '../model/lora';
import { writeJson } from '../util/files';
import type { GRPOConfig, SFTConfig } from './config';
import { trainSFT, type SFTResult } from './sft';
import { trainGRPO, type GRPOResult, type GRPOOptions } from './grpo';
import { latestCheckpoint, loadCheckpoint, type LoadedCheckpoint } from './checkpoint';
import { MetricsLog } from './log';
import type { TrainRow } from './batch';
import { allFinite } from './optim';
import { DataParallel, numProcessesFor } from './parallel';

/** Files of a tokenizer directory copied next to saved weights, so an output dir loads on its own. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json', 'chat_template.jinja', 'chat_template.json', 'vocab.json', 'merges.txt'];

export function copyTokenizerFiles(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const f of TOKENIZER_FILES) if (fs.existsSync(path.join(from, f))) fs.copyFileSync(path.join(from, f), path.join(to, f));
}

export interface SFTPhaseResult extends SFTResult {
  /** 'full': outDir is a complete model dir; 'lora': outDir holds a PEFT adapter for `base`. */
  kind: 'full' | 'lora';
  outDir: string;
}

/**
 * SFT from `modelDir` into `outDir` (`config.output_dir` unless given). Every weight trains, or with
 * `config.use_peft` only a LoRA adapter with SFT's lora_r / lora_alpha / lora_dropout.
 */
export async function sftPhase(o: {
  modelDir: string;
  /** A PEFT adapter folded into the model before SFT starts (the course's control continues an SFT adapter). */
  sft_adapter?: string | null;
  outDir?: string;
  rows: readonly TrainRow[];
  config: SFTConfig;
  progress?: boolean;
  /** With config.eval_steps: score the model being trained (see trainSFT's `evaluate`). */
  evaluate?: (model: Qwen2ForCausalLM, tokenizer: ChatTokenizer, parallel: DataParallel) => Promise<number>;
}): Promise<SFTPhaseResult> {
  const c = o.config;
  const outDir = o.outDir ?? c.output_dir;
  const { model, tokenizer: tok } = await loadStart({ base_model: o.modelDir, sft_adapter: o.sft_adapter ?? null });
  try {
    if (c.use_peft) addLora(model, { r: c.lora_r, lora_alpha: c.lora_alpha, lora_dropout: c.lora_dropout }, c.seed);
    fs.mkdirSync(outDir, { recursive: true });
    const log = MetricsLog.open(path.join(outDir, 'metrics.jsonl'));
    writeJson(path.join(outDir, 'training_config.json'), c);
    const dp = await DataParallel.start(model, numProcessesFor(c.num_processes));
    let r: SFTResult;
    try {
      const evaluate = o.evaluate;
      r = await trainSFT({ model, tokenizer: tok, rows: o.rows, config: c, log, progress: o.progress, parallel: dp, evaluate: evaluate && ((p) => evaluate(model, tok, p)) });
    } finally {
      await dp.close();
    }
    if (!(await allFinite(model.trainableVariables()))) throw new Error('SFT produced non-finite weights; nothing saved');
    if (c.use_peft) {
      await saveAdapter(model, outDir, path.resolve(o.modelDir));
      // An adapter trained on base + another adapter only loads with that one folded in first (src/train/runs.ts).
      if (o.sft_adapter) writeJson(path.join(outDir, 'start.json'), { base_model: path.resolve(o.modelDir), sft_adapter: path.resolve(o.sft_adapter) });
      return { ...r, kind: 'lora', outDir };
    }
    await model.savePretrained(outDir);
    copyTokenizerFiles(o.modelDir, outDir);
    return { ...r, kind: 'full', outDir };
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
    model.adapter.mergeAndUnload(); // PEFT's merge_and_unload: the SFT model is the new base (and KL reference)
    model.invalidateCaches();
  }
  return { model, tokenizer };
}

/** The newest complete checkpoint of a run folder, loaded; an error naming the folder when there is none. */
export function findResume(runDir: string): LoadedCheckpoint {
  const dir = latestCheckpoint(runDir);
  if (!dir) throw new Error(`--resume: no complete checkpoint-<step> folder in ${runDir}`);
  return loadCheckpoint(dir);
}

/** Where a resumed GRPO run started (saved in its checkpoints), else `fallback`. */
export function startOf(ck: LoadedCheckpoint | null, fallback: GRPOStart): GRPOStart {
  const s = ck?.state.extra?.start as Partial<GRPOStart> | undefined;
  return s && typeof s.base_model === 'string' ? { base_model: s.base_model, sft_adapter: typeof s.sft_adapter === 'string' ? s.sft_adapter : null } : fallback;
}

/**
 * GRPO into `runDir`. With `resume` (a checkpoint of that run, its config already resolved into `config`),
 * continue from it: its start model, adapter, optimizer, RNG and data cursor. Returns the result and leaves the
 * model to the caller (disposed unless `keepModel`).
 */
export async function grpoPhase(o: {
  start: GRPOStart;
  runDir: string;
  rows: readonly TrainRow[];
  config: GRPOConfig;
  resume?: LoadedCheckpoint | null;
  progress?: boolean;
  onStep?: GRPOOptions['onStep'];
  keepModel?: boolean;
}): Promise<GRPOResult & { model: Qwen2ForCausalLM | null; tokenizer: ChatTokenizer; config: GRPOConfig }> {
  const ck = o.resume ?? null;
  const c = o.config;
  const start = startOf(ck, o.start);
  const { model, tokenizer } = await loadStart(start);
  try {
    if (ck) await loadAdapter(model, ck.dir);
    else addLora(model, { r: c.lora_r, lora_alpha: c.lora_alpha, lora_dropout: c.lora_dropout }, c.seed);
    fs.mkdirSync(o.runDir, { recursive: true });
    writeJson(path.join(o.runDir, 'training_config.json'), c);
    const dp = await DataParallel.start(model, numProcessesFor(c.num_processes));
    const r = await trainGRPO({
      model,
      tokenizer,
      rows: o.rows,
      config: c,
      runDir: o.runDir,
      resume: ck,
      base_model_name_or_path: path.resolve(start.base_model),
      extra: { start: { base_model: path.resolve(start.base_model), sft_adapter: start.sft_adapter && path.resolve(start.sft_adapter) } },
      onStep: o.onStep,
      progress: o.progress,
      parallel: dp,
    }).finally(() => dp.close());
    return { ...r, model: o.keepModel ? model : null, tokenizer, config: c };
  } finally {
    if (!o.keepModel) model.dispose();
  }
}
