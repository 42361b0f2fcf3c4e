/**
 * LoRA adapters for Qwen2ForCausalLM, saved and loaded in PEFT's format so an adapter trained here loads in
 * Python's PEFT and the other way round.
 *
 *   y = x W^T + b + (lora_alpha / r) * dropout(x) A^T B^T      A [r, in] ~ U(+-1/sqrt(in)) (PEFT's kaiming-uniform),
 *                                                              B [out, r] = 0, so a new adapter changes nothing.
 * Files: adapter_config.json (peft_type "LORA", r, lora_alpha, lora_dropout, target_modules, task_type
 * "CAUSAL_LM", ...) and adapter_model.safetensors with keys
 * `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight` [r, in] / `.lora_B.weight` [out, r].
 *
 * What it is not: the math of the adapted linear layer (kernels.ts `linear`) or an optimizer. Adding an adapter
 * freezes every base weight (`trainable = false`), so `model.trainableVariables()` is then the A/B matrices only.
 * Unsupported PEFT options (DoRA, rank/alpha patterns, bias != "none", modules_to_save) are refused on load.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECTIONS, Projection, Qwen2ForCausalLM, makeVariable, projectionPath, projectionShape } from './qwen2';
import { readSafetensors, takeTensor, writeSafetensors } from './safetensors';
import { Rng } from '../util/rng';

/** PEFT's LoraConfig, the fields we use (names verbatim). */
export interface LoraConfig {
  /** Rank r. */
  r: number;
  /** Scaling numerator: scaling = lora_alpha / r. */
  lora_alpha: number;
  /** Dropout on the adapter's input, training mode only. */
  lora_dropout: number;
  /** Projection names to adapt. */
  target_modules: string[];
  /** PEFT's rsLoRA: scaling = lora_alpha / sqrt(r). Default false. */
  use_rslora?: boolean;
}

/** The course's default targets: every projection of attention and MLP. */
export const DEFAULT_TARGET_MODULES: string[] = [...PROJECTIONS];

/** Raised for an adapter directory we cannot load; the message names the file. */
export class AdapterError extends Error {}

function resolveTargets(targets: string[], source: string): Projection[] {
  const out: Projection[] = [];
  for (const t of targets) {
    const short = t.split('.').pop()!;
    if (!(PROJECTIONS as readonly string[]).includes(short)) {
      throw new AdapterError(`${source}: target module '${t}' is not one of ${PROJECTIONS.join(', ')}`);
    }
    if (!out.includes(short as Projection)) out.push(short as Projection);
  }
  return out;
}

/**
 * Add a fresh adapter (A random, B zero) to every target projection and freeze the base weights.
 * Replaces an existing adapter. Same seed => same A.
 */
export function addLora(model: Qwen2ForCausalLM, config: Partial<LoraConfig> & { r: number }, seed = 0): LoraConfig {
  const cfg: LoraConfig = {
    r: config.r,
    lora_alpha: config.lora_alpha ?? config.r,
    lora_dropout: config.lora_dropout ?? 0,
    target_modules: config.target_modules ?? DEFAULT_TARGET_MODULES,
    use_rslora: config.use_rslora ?? false,
  };
  if (!Number.isInteger(cfg.r) || cfg.r <= 0) throw new Error(`addLora: r must be a positive integer, got ${cfg.r}`);
  if (!(cfg.lora_dropout >= 0 && cfg.lora_dropout < 1)) throw new Error(`addLora: lora_dropout must be in [0, 1), got ${cfg.lora_dropout}`);
  const targets = resolveTargets(cfg.target_modules, 'addLora');
  if (model.loraMerged) unmergeLora(model);
  removeLora(model);
  const rng = new Rng(seed);
  for (let l = 0; l < model.config.num_hidden_layers; l++) {
    for (const p of targets) {
      const [inF, outF] = projectionShape(model.config, p);
      const bound = 1 / Math.sqrt(inF); // kaiming_uniform_(a=sqrt(5)) on [r, in]
      const a = new Float32Array(cfg.r * inF);
      for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
      const name = projectionPath(l, p);
      model.lora.set(name, {
        A: makeVariable(a, [cfg.r, inF]),
        B: makeVariable(new Float32Array(outF * cfg.r), [outF, cfg.r]),
      });
    }
  }
  setLoraConfig(model, cfg);
  for (const v of model.params.values()) v.trainable = false;
  return cfg;
}

function setLoraConfig(model: Qwen2ForCausalLM, cfg: LoraConfig): void {
  model.loraConfig = { ...cfg, target_modules: [...cfg.target_modules] };
  model.loraScaling = cfg.use_rslora ? cfg.lora_alpha / Math.sqrt(cfg.r) : cfg.lora_alpha / cfg.r;
  model.loraDropout = cfg.lora_dropout;
  model.loraEnabled = true;
}

/** Drop the adapter (weights disposed). Base weights stay frozen; set `trainable` yourself for full FT. */
export function removeLora(model: Qwen2ForCausalLM): void {
  if (model.loraMerged) unmergeLora(model);
  for (const m of model.lora.values()) {
    m.A.dispose();
    m.B.dispose();
  }
  model.lora.clear();
  model.loraConfig = undefined;
}

/** Forward with the adapter (the policy). */
export function enableLora(model: Qwen2ForCausalLM): void {
  model.loraEnabled = true;
}

/** Forward without the adapter: the base model (GRPO's reference model). Not allowed while merged. */
export function disableLora(model: Qwen2ForCausalLM): void {
  if (model.loraMerged) throw new Error('disableLora: the adapter is merged; unmergeLora first');
  model.loraEnabled = false;
}

const backups = new WeakMap<Qwen2ForCausalLM, Map<string, tf.Tensor>>();

/**
 * Fold the adapter into the base weights (W += scaling * B A) so sampling runs plain linear layers.
 * The original weights are kept, so `unmergeLora` restores them exactly (no float drift).
 */
export function mergeLora(model: Qwen2ForCausalLM): void {
  if (model.loraMerged || model.lora.size === 0) return;
  const saved = new Map<string, tf.Tensor>();
  for (const [name, m] of model.lora) {
    const W = model.params.get(`${name}.weight`)!;
    saved.set(name, tf.keep(W.clone()));
    const merged = tf.tidy(() => tf.add(W, tf.mul(tf.matMul(m.B, m.A), model.loraScaling)));
    W.assign(merged);
    merged.dispose();
  }
  backups.set(model, saved);
  model.loraMerged = true;
}

/** Restore the base weights saved by `mergeLora`. */
export function unmergeLora(model: Qwen2ForCausalLM): void {
  if (!model.loraMerged) return;
  const saved = backups.get(model)!;
  for (const [name, t] of saved) {
    model.params.get(`${name}.weight`)!.assign(t);
    t.dispose();
  }
  backups.delete(model);
  model.loraMerged = false;
}

/** PEFT's key for a LoRA matrix. */
export function peftKey(modulePath: string, which: 'A' | 'B'): string {
  return `base_model.model.${modulePath}.lora_${which}.weight`;
}

/** Write adapter_config.json + adapter_model.safetensors (PEFT layout). */
export async function saveAdapter(model: Qwen2ForCausalLM, dir: string, base_model_name_or_path: string | null = null): Promise<void> {
  const cfg = model.loraConfig;
  if (!cfg || model.lora.size === 0) throw new Error('saveAdapter: the model has no LoRA adapter');
  fs.mkdirSync(dir, { recursive: true });
  const config = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: cfg.lora_alpha,
    lora_dropout: cfg.lora_dropout,
    modules_to_save: null,
    peft_type: 'LORA',
    r: cfg.r,
    rank_pattern: {},
    revision: null,
    target_modules: cfg.target_modules,
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: cfg.use_rslora ?? false,
  };
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2) + '\n');
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, m] of model.lora) {
    tensors.set(peftKey(name, 'A'), { shape: m.A.shape.slice(), data: (await m.A.data()) as Float32Array });
    tensors.set(peftKey(name, 'B'), { shape: m.B.shape.slice(), data: (await m.B.data()) as Float32Array });
  }
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors);
}

/** Read a PEFT adapter directory into the model (replacing any adapter); base weights are frozen. */
export async function loadAdapter(model: Qwen2ForCausalLM, dir: string): Promise<LoraConfig> {
  const cfgFile = path.join(dir, 'adapter_config.json');
  const wFile = path.join(dir, 'adapter_model.safetensors');
  if (!fs.existsSync(cfgFile)) throw new AdapterError(`${cfgFile}: file not found`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new AdapterError(`${cfgFile}: not valid JSON (${(e as Error).message})`);
  }
  if (raw.peft_type !== 'LORA') throw new AdapterError(`${cfgFile}: peft_type is ${JSON.stringify(raw.peft_type)}, only "LORA" is supported`);
  if (raw.use_dora) throw new AdapterError(`${cfgFile}: use_dora is not supported`);
  if ((raw.bias ?? 'none') !== 'none') throw new AdapterError(`${cfgFile}: bias ${JSON.stringify(raw.bias)} is not supported (only "none")`);
  for (const k of ['rank_pattern', 'alpha_pattern']) {
    if (raw[k] && Object.keys(raw[k] as object).length > 0) throw new AdapterError(`${cfgFile}: ${k} is not supported`);
  }
  if (raw.modules_to_save) throw new AdapterError(`${cfgFile}: modules_to_save is not supported`);
  if (raw.layers_to_transform !== undefined && raw.layers_to_transform !== null) throw new AdapterError(`${cfgFile}: layers_to_transform is not supported`);
  if (raw.fan_in_fan_out) throw new AdapterError(`${cfgFile}: fan_in_fan_out is not supported`);
  const r = raw.r as number;
  if (!Number.isInteger(r) || r <= 0) throw new AdapterError(`${cfgFile}: r must be a positive integer`);
  let targets = raw.target_modules as string[] | string;
  if (typeof targets === 'string') {
    if (targets === 'all-linear') targets = DEFAULT_TARGET_MODULES;
    else throw new AdapterError(`${cfgFile}: target_modules as a regex ('${targets}') is not supported; list the module names`);
  }
  const cfg: LoraConfig = {
    r,
    lora_alpha: (raw.lora_alpha as number) ?? 8,
    lora_dropout: (raw.lora_dropout as number) ?? 0,
    target_modules: targets,
    use_rslora: (raw.use_rslora as boolean) ?? false,
  };
  const projs = resolveTargets(cfg.target_modules, cfgFile);
  if (!fs.existsSync(wFile)) throw new AdapterError(`${wFile}: file not found`);
  const tensors = readSafetensors(wFile);
  removeLora(model);
  for (let l = 0; l < model.config.num_hidden_layers; l++) {
    for (const p of projs) {
      const [inF, outF] = projectionShape(model.config, p);
      const name = projectionPath(l, p);
      const A = takeTensor(tensors, peftKey(name, 'A'), [r, inF], wFile);
      const B = takeTensor(tensors, peftKey(name, 'B'), [outF, r], wFile);
      model.lora.set(name, {
        A: makeVariable(A.data, [r, inF]),
        B: makeVariable(B.data, [outF, r]),
      });
    }
  }
  setLoraConfig(model, cfg);
  for (const v of model.params.values()) v.trainable = false;
  return cfg;
}
