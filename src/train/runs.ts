/**
 * A course run folder's models: which base model and which adapters, folded in that order, make the model of
 * one phase. What `export` writes and `predict` asks.
 *
 *   grpo     the newest `grpo/checkpoint-<step>`: its start (trainer_state.json extra.start: the base model,
 *            plus the SFT adapter for a real checkpoint) with the GRPO adapter folded in
 *   sft      `sft/`: a full model (the tiny one) as it is, or base + the SFT adapter (a real checkpoint)
 *   control  `control/`: the course's control (SFT continued on the gold calls of GRPO's pool), laid out as sft/;
 *            an adapter there was trained on base + the SFT adapter (its start.json says so)
 *
 * `--run` may also be the phase folder itself. Errors name the folder or file that is missing.
 * Not here: writing a model out (src/cli/export.ts) or training (phases.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Qwen2ForCausalLM } from '../model/qwen2';
import { loadAdapter } from '../model/lora';
import { latestCheckpoint } from './checkpoint';

export const RUN_PHASES = ['grpo', 'sft', 'control'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

/** Where a run's model comes from: a base model folder and the adapters to fold into it, in order. */
export interface RunModel {
  phase: RunPhase;
  base_model: string;
  adapters: string[];
  /** The folder whose tokenizer files go with the model (the base model's). */
  tokenizer_dir: string;
}

/** Does `dir` hold file `f`? */
export const has = (dir: string, f: string): boolean => fs.existsSync(path.join(dir, f));

/** A JSON file's object; an error names the file. */
export function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The base an adapter folder was trained on (adapter_config.json's base_model_name_or_path), checked to exist. */
function adapterBase(dir: string): string {
  const file = path.join(dir, 'adapter_config.json');
  const base = readJson(file).base_model_name_or_path;
  if (typeof base !== 'string' || !has(base, 'config.json')) {
    throw new Error(`${file}: base_model_name_or_path ${JSON.stringify(base)} is not a model folder on this machine`);
  }
  return base;
}

/** Resolve `--run DIR --phase P` to a base model and adapters (see the file comment). Errors name the folder. */
export function resolveRunModel(run: string, phase: RunPhase): RunModel {
  if (!fs.existsSync(run)) throw new Error(`--run ${run}: no such folder`);
  if (phase === 'control' && !fs.existsSync(path.join(run, 'control')) && !has(run, 'adapter_config.json') && !has(run, 'config.json')) {
    throw new Error(`${run}: no control/ folder (the course writes it unless --control=false)`);
  }
  if (phase === 'grpo') {
    const dir = fs.existsSync(path.join(run, 'grpo')) ? path.join(run, 'grpo') : run;
    const ck = latestCheckpoint(dir);
    if (!ck) throw new Error(`${dir}: no complete checkpoint-<step> folder (did GRPO run? for the SFT model use --phase sft)`);
    const state = readJson(path.join(ck, 'trainer_state.json'));
    const start = (state.extra as { start?: { base_model?: unknown; sft_adapter?: unknown } } | undefined)?.start;
    const base = typeof start?.base_model === 'string' ? start.base_model : adapterBase(ck);
    if (!has(base, 'config.json')) throw new Error(`${path.join(ck, 'trainer_state.json')}: the GRPO start ${base} is not a model folder on this machine`);
    const sft = typeof start?.sft_adapter === 'string' ? start.sft_adapter : null;
    if (sft && !has(sft, 'adapter_config.json')) throw new Error(`${path.join(ck, 'trainer_state.json')}: the SFT adapter ${sft} is missing`);
    return { phase, base_model: base, adapters: sft ? [sft, ck] : [ck], tokenizer_dir: base };
  }
  const dir = fs.existsSync(path.join(run, phase)) ? path.join(run, phase) : run;
  if (has(dir, 'config.json') && has(dir, 'model.safetensors')) return { phase, base_model: dir, adapters: [], tokenizer_dir: dir };
  if (has(dir, 'adapter_config.json')) {
    const base = adapterBase(dir);
    // An adapter trained on base + an SFT adapter (the control with LoRA) says so in start.json.
    const start = has(dir, 'start.json') ? readJson(path.join(dir, 'start.json')) : {};
    const sft = typeof start.sft_adapter === 'string' ? start.sft_adapter : null;
    if (sft && !has(sft, 'adapter_config.json')) throw new Error(`${path.join(dir, 'start.json')}: the SFT adapter ${sft} is missing`);
    return { phase, base_model: base, adapters: sft ? [sft, dir] : [dir], tokenizer_dir: base };
  }
  throw new Error(`${dir}: neither a model (config.json + model.safetensors) nor a PEFT adapter (adapter_config.json)`);
}

/** Load a run's model with every adapter folded in (a plain Qwen2 model; the caller disposes it). */
export async function loadMergedModel(r: RunModel): Promise<Qwen2ForCausalLM> {
  const model = await Qwen2ForCausalLM.fromPretrained(r.base_model);
  try {
    for (const a of r.adapters) {
      await loadAdapter(model, a);
      model.adapter.mergeAndUnload();
      model.invalidateCaches();
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

