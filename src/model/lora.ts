/**
 * LoRA adapters for Qwen2ForCausalLM: the adapter object the model carries (`model.adapter`), its state, and
 * saving / loading in PEFT's format so an adapter trained here loads in Python's PEFT and the other way round.
 *
 *   y = x W^T + b + scaling * dropout(x) A^T B^T      A [r, in] ~ U(+-1/sqrt(in)) (PEFT's kaiming-uniform),
 *                                                     B [out, r] = 0, so a new adapter changes nothing;
 *                                                     scaling = lora_alpha / r (rsLoRA: / sqrt(r)).
 *
 * The adapter's state is one of
 *   none      no adapter: forward is the base model
 *   active    forward adds scaling * B A to each adapted projection (the policy)
 *   disabled  the adapter is kept but forward ignores it (GRPO's reference model = the base)
 *   merged    B A is folded into the base weights (sampling runs plain linear layers); `unmerge` restores the
 *             base weights bit for bit from a saved copy
 * and only this file changes it: add / load (none -> active), disable / enable, merge / unmerge, remove (-> none),
 * mergeAndUnload (PEFT's: fold for good -> none).
 *
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
import type { Qwen2Config } from './config';
import { PROJECTIONS, projectionPath, projectionShape, type Projection } from './layout';
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

/** LoRA weights of one projection. */
export interface LoraModule {
  /** [r, in] */
  A: tf.Variable;
  /** [out, r] */
  B: tf.Variable;
}

export type AdapterState = 'none' | 'active' | 'disabled' | 'merged';

/** The course's default targets: every projection of attention and MLP. */
export const DEFAULT_TARGET_MODULES: string[] = [...PROJECTIONS];

/** Raised for an adapter directory we cannot load; the message names the file. */
export class AdapterError extends Error {}

/**
 * A model's LoRA adapter and its state. The model owns one (`model.adapter`, state 'none' until an adapter is
 * added) and reads it in forward through `active()`; everything that changes it is a method here.
 * Ownership: the A/B variables and the merge backups belong to the adapter (`remove` / `dispose` free them).
 */
export class LoraAdapter {
  private mods = new Map<string, LoraModule>();
  private cfg: LoraConfig | null = null;
  private st: AdapterState = 'none';
  /** Base weights as they were before `merge`, by module path. */
  private backups = new Map<string, tf.Tensor>();
  /** Seeded stream for dropout masks. */
  private dropoutRng = new Rng(0);

  /** `params`: the model's base weights by HF name (the adapter freezes and, when merging, rewrites them). */
  constructor(private readonly params: Map<string, tf.Variable>) {}

  get state(): AdapterState {
    return this.st;
  }

  /** The PEFT settings (a copy), or null in state 'none'. */
  get config(): LoraConfig | null {
    return this.cfg ? { ...this.cfg, target_modules: [...this.cfg.target_modules] } : null;
  }

  /** lora_alpha / r (rsLoRA: lora_alpha / sqrt(r)); 0 without an adapter. */
  get scaling(): number {
    const c = this.cfg;
    if (!c) return 0;
    return c.use_rslora ? c.lora_alpha / Math.sqrt(c.r) : c.lora_alpha / c.r;
  }

  /** The adapted projections by module path (empty in state 'none'). Read-only view. */
  get modules(): ReadonlyMap<string, LoraModule> {
    return this.mods;
  }

  /** A then B of every module, in module order (the trainable variables of a LoRA model). */
  variables(): tf.Variable[] {
    return [...this.mods.values()].flatMap((m) => [m.A, m.B]);
  }

  /** What forward adds to the projection at `modulePath`: its module while the adapter is active, else nothing. */
  active(modulePath: string): LoraModule | undefined {
    return this.st === 'active' ? this.mods.get(modulePath) : undefined;
  }

  /**
   * An inverted-dropout mask [rows, inF] for the adapter's input in training mode (entries 0 or 1 / (1 - p)),
   * drawn from the adapter's seeded stream; undefined when lora_dropout is 0 or not training.
   */
  dropoutMask(rows: number, inF: number, training: boolean): tf.Tensor2D | undefined {
    const p = this.cfg?.lora_dropout ?? 0;
    if (!training || !(p > 0)) return undefined;
    const data = new Float32Array(rows * inF);
    for (let i = 0; i < data.length; i++) data[i] = this.dropoutRng.next() < p ? 0 : 1 / (1 - p);
    return tf.tensor2d(data, [rows, inF]);
  }

  /** none -> active: take these modules (replacing any adapter) and freeze every base weight. */
  attach(config: LoraConfig, modules: Map<string, LoraModule>): void {
    this.remove();
    this.mods = modules;
    this.cfg = { ...config, target_modules: [...config.target_modules] };
    this.st = 'active';
    for (const v of this.params.values()) v.trainable = false;
  }

  /** active -> disabled: forward runs the base model. */
  disable(): void {
    if (this.st === 'merged') throw new Error('LoraAdapter.disable: the adapter is merged; unmerge first');
    if (this.st === 'none') throw new Error('LoraAdapter.disable: there is no adapter');
    this.st = 'disabled';
  }

  /** disabled -> active. */
  enable(): void {
    if (this.st === 'merged') throw new Error('LoraAdapter.enable: the adapter is merged; unmerge first');
    if (this.st === 'none') throw new Error('LoraAdapter.enable: there is no adapter');
    this.st = 'active';
  }

  /**
   * active -> merged: W += scaling * B A for every module, the original W kept so `unmerge` restores it
   * exactly (no float drift). Only an active adapter merges (a disabled one is off, merged would turn it on).
   */
  merge(): void {
    if (this.st !== 'active') throw new Error(`LoraAdapter.merge: the adapter is ${this.st}, only an active one merges`);
    for (const [name, m] of this.mods) {
      const W = this.baseWeight(name);
      this.backups.set(name, tf.keep(W.clone()));
      const merged = tf.tidy(() => tf.add(W, tf.mul(tf.matMul(m.B, m.A), this.scaling)));
      W.assign(merged);
      merged.dispose();
    }
    this.st = 'merged';
  }

  /** merged -> active: the base weights saved by `merge` are put back. */
  unmerge(): void {
    if (this.st !== 'merged') throw new Error(`LoraAdapter.unmerge: the adapter is ${this.st}, not merged`);
    for (const [name, t] of this.backups) {
      this.baseWeight(name).assign(t);
      t.dispose();
    }
    this.backups.clear();
    this.st = 'active';
  }

  /**
   * PEFT's merge_and_unload: fold the adapter into the base weights for good (W += scaling * B A) and drop it
   * (-> none). Used to make "base + SFT adapter" the starting point (and the KL reference) of GRPO. A disabled
   * adapter is folded too (merge_and_unload ignores the enabled flag).
   */
  mergeAndUnload(): void {
    if (this.st === 'none') return;
    if (this.st !== 'merged') {
      for (const [name, m] of this.mods) {
        const W = this.baseWeight(name);
        const merged = tf.tidy(() => tf.add(W, tf.mul(tf.matMul(m.B, m.A), this.scaling)));
        W.assign(merged);
        merged.dispose();
      }
    }
    tf.dispose([...this.backups.values()]);
    this.backups.clear();
    this.st = 'none';
    this.remove();
  }

  /** -> none: the adapter is dropped (its weights disposed; merged weights restored first). Base weights stay frozen. */
  remove(): void {
    if (this.st === 'merged') this.unmerge();
    for (const m of this.mods.values()) tf.dispose([m.A, m.B]);
    this.mods = new Map();
    this.cfg = null;
    this.st = 'none';
  }

  /** Free the adapter's tensors without touching the base weights (the model is being disposed). */
  dispose(): void {
    tf.dispose([...this.backups.values()]);
    this.backups.clear();
    for (const m of this.mods.values()) tf.dispose([m.A, m.B]);
    this.mods = new Map();
    this.cfg = null;
    this.st = 'none';
  }

  private baseWeight(modulePath: string): tf.Variable {
    const W = this.params.get(`${modulePath}.weight`);
    if (!W) throw new Error(`LoraAdapter: the model has no weight ${modulePath}.weight`);
    return W;
  }
}

/** What the functions below need from a model: its config, its base weights by HF name, and its adapter. */
export interface LoraHost {
  readonly config: Qwen2Config;
  readonly params: Map<string, tf.Variable>;
  readonly adapter: LoraAdapter;
}

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

/** A trainable variable from data (the temporary tensor is disposed). */
function variable(data: Float32Array, shape: number[]): tf.Variable {
  const t = tf.tensor(data, shape, 'float32');
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

/**
 * Add a fresh adapter (A random, B zero) to every target projection and freeze the base weights (-> active).
 * Replaces an existing adapter. Same seed => same A.
 */
export function addLora(model: LoraHost, config: Partial<LoraConfig> & { r: number }, seed = 0): LoraConfig {
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
  model.adapter.remove();
  const rng = new Rng(seed);
  const modules = new Map<string, LoraModule>();
  for (let l = 0; l < model.config.num_hidden_layers; l++) {
    for (const p of targets) {
      const [inF, outF] = projectionShape(model.config, p);
      const bound = 1 / Math.sqrt(inF); // kaiming_uniform_(a=sqrt(5)) on [r, in]
      const a = new Float32Array(cfg.r * inF);
      for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
      modules.set(projectionPath(l, p), { A: variable(a, [cfg.r, inF]), B: variable(new Float32Array(outF * cfg.r), [outF, cfg.r]) });
    }
  }
  model.adapter.attach(cfg, modules);
  return cfg;
}

/** PEFT's key for a LoRA matrix. */
export function peftKey(modulePath: string, which: 'A' | 'B'): string {
  return `base_model.model.${modulePath}.lora_${which}.weight`;
}

/** Write adapter_config.json + adapter_model.safetensors (PEFT layout). */
export async function saveAdapter(model: LoraHost, dir: string, base_model_name_or_path: string | null = null): Promise<void> {
  const cfg = model.adapter.config;
  if (!cfg || model.adapter.modules.size === 0) throw new Error('saveAdapter: the model has no LoRA adapter');
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
  for (const [name, m] of model.adapter.modules) {
    tensors.set(peftKey(name, 'A'), { shape: m.A.shape.slice(), data: (await m.A.data()) as Float32Array });
    tensors.set(peftKey(name, 'B'), { shape: m.B.shape.slice(), data: (await m.B.data()) as Float32Array });
  }
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors);
}

/** A number field of adapter_config.json, or `fallback` when absent; anything else is an error naming the file. */
function numberField(raw: Record<string, unknown>, key: string, fallback: number, file: string): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new AdapterError(`${file}: ${key} must be a number, got ${JSON.stringify(raw[key])}`);
  return v;
}

/** Read a PEFT adapter directory into the model (replacing any adapter; -> active); base weights are frozen. */
export async function loadAdapter(model: LoraHost, dir: string): Promise<LoraConfig> {
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
  const r = raw.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r <= 0) throw new AdapterError(`${cfgFile}: r must be a positive integer`);
  let targets = raw.target_modules as string[] | string;
  if (typeof targets === 'string') {
    if (targets === 'all-linear') targets = DEFAULT_TARGET_MODULES;
    else throw new AdapterError(`${cfgFile}: target_modules as a regex ('${targets}') is not supported; list the module names`);
  }
  const cfg: LoraConfig = {
    r,
    lora_alpha: numberField(raw, 'lora_alpha', 8, cfgFile), // PEFT's default
    lora_dropout: numberField(raw, 'lora_dropout', 0, cfgFile),
    target_modules: targets,
    use_rslora: raw.use_rslora === true,
  };
  const projs = resolveTargets(cfg.target_modules, cfgFile);
  if (!fs.existsSync(wFile)) throw new AdapterError(`${wFile}: file not found`);
  const tensors = readSafetensors(wFile);
  const modules = new Map<string, LoraModule>();
  try {
    for (let l = 0; l < model.config.num_hidden_layers; l++) {
      for (const p of projs) {
        const [inF, outF] = projectionShape(model.config, p);
        const name = projectionPath(l, p);
        const A = takeTensor(tensors, peftKey(name, 'A'), [r, inF], wFile);
        const B = takeTensor(tensors, peftKey(name, 'B'), [outF, r], wFile);
        modules.set(name, { A: variable(A.data, [r, inF]), B: variable(B.data, [outF, r]) });
      }
    }
  } catch (e) {
    for (const m of modules.values()) tf.dispose([m.A, m.B]);
    throw e;
  }
  model.adapter.attach(cfg, modules);
  return cfg;
}
