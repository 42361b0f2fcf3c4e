/**
 * The training configs, resolved in one place.
 *
 *   fields    one table per phase (SFT_FIELDS, GRPO_FIELDS, PRETRAIN_FIELDS): each field's default, help, type
 *             and allowed values / range, as TRL's `field(default=..., metadata={"help": ...})`. The config types
 *             (SFTConfig, GRPOConfig, PretrainConfig) are derived from the tables, and the defaults are the
 *             main job's (`npm start`: the tiny model pretrained as models/tiny-base), each commented where set.
 *   presets   what differs from the defaults for the other starting points, as data (PRESETS):
 *             tiny-base (the defaults), tiny-scratch (random weights), checkpoint-lora (a real Qwen2 with LoRA).
 *   resolve   resolve(phase, preset, flags, {checkpoint}) = defaults < preset < checkpoint < what the command
 *             sets < command-line flags, every value type-checked, range-checked and cross-checked (reward
 *             names against src/verify/reward.ts REWARDS), with the source of each value, ready to print
 *             (formatResolved) and save. On --resume the checkpoint's config is validated the same way and every
 *             flag that changes one of its values is listed; a few fields cannot change on resume.
 *
 * Errors are ArgErrors that name the flag (`--grpo.num_generations`), the preset or the checkpoint file.
 * Not here: the model's own config (src/model/config.ts, Hugging Face keys) and the LoRA file format (lora.ts).
 */
import * as path from 'node:path';
import { ArgError, didYouMean, flagsHelp, type FlagSpec, type FlagValues } from '../util/args';
import { ROOT, resolveUserPath } from '../util/paths';
import { REWARDS } from '../verify/reward';

type FieldType = 'int' | 'float' | 'bool' | 'string' | 'list' | 'float_list';

/** One config field: TRL's field(default=..., metadata={"help": ...}) plus its type and what it accepts. */
export interface Field<T> {
  type: FieldType;
  default: T;
  /** One line for --help. */
  help: string;
  /** Allowed values (of a string, or of each list element); a function is read at resolve time. */
  choices?: readonly string[] | (() => readonly string[]);
  /** Why a value is out of range, or null when it is fine. */
  check?(v: T): string | null;
  /** The value a run started with is kept on --resume: a different one on the command line is an error. */
  fixed_on_resume?: boolean;
  /** A folder: a flag's value is relative to the current directory, a default's to the project root; stored absolute. */
  path?: boolean;
}

type Fields = Record<string, Field<unknown>>;

/** The config object a field table describes (doc comments of the table's entries carry over). */
export type ConfigOf<F> = { -readonly [K in keyof F]: F[K] extends Field<infer T> ? T : never };

const positive = (v: number) => (v > 0 ? null : 'must be > 0');
const nonNegative = (v: number) => (v >= 0 ? null : 'must be >= 0');
const fraction = (v: number) => (v >= 0 && v < 1 ? null : 'must be in [0, 1)');

const int = (d: number, help: string, check?: (v: number) => string | null, o: Partial<Field<number>> = {}): Field<number> => ({ type: 'int', default: d, help, check, ...o });
const float = (d: number, help: string, check?: (v: number) => string | null, o: Partial<Field<number>> = {}): Field<number> => ({ type: 'float', default: d, help, check, ...o });
const bool = (d: boolean, help: string): Field<boolean> => ({ type: 'bool', default: d, help });
const str = (d: string, help: string): Field<string> => ({ type: 'string', default: d, help });
function choice<T extends string>(choices: readonly T[], d: T, help: string): Field<T> {
  return { type: 'string', default: d, help, choices };
}

/** Settings every trainer has: optimizer, schedule, checkpoints, logging, processes. */
const TRAIN_FIELDS = {
  /** Where metrics.jsonl, checkpoints and the resolved config go (the commands set outputs/<run>/<phase>). */
  output_dir: { ...str('outputs/run', 'run folder (metrics.jsonl, checkpoints, training_config.json); course: <out>/<phase>'), path: true },
  /** Seed for data order, sampling and (tiny model) initialisation. */
  seed: int(0, 'seed for data order, sampling and initialisation', undefined, { fixed_on_resume: true }),
  /** Peak AdamW learning rate (reached after warmup). */
  learning_rate: float(1e-3, 'peak AdamW learning rate', positive),
  /** Decoupled AdamW weight decay (not applied to 1-D weights: norms and biases). TRL's default. */
  weight_decay: float(0.0, 'decoupled weight decay (matrices only)', nonNegative),
  adam_beta1: float(0.9, 'AdamW beta1', fraction),
  adam_beta2: float(0.999, 'AdamW beta2', fraction),
  adam_epsilon: float(1e-8, 'AdamW epsilon', positive),
  /** Clip the global gradient norm to this (0 = off). TRL's default. */
  max_grad_norm: float(1.0, 'clip the global grad norm (0 = off)', nonNegative),
  /** Fraction of the optimizer steps spent warming the learning rate up linearly from 0. */
  warmup_ratio: float(0.1, 'fraction of steps warming the lr up from 0', fraction),
  /** Learning rate after warmup: constant, linear decay to 0 (TRL's default), or cosine decay to 0. */
  lr_scheduler_type: choice(['constant', 'linear', 'cosine'] as const, 'linear', 'lr after warmup'),
  /** Micro-batches summed into one optimizer step. */
  gradient_accumulation_steps: int(1, 'micro-batches per optimizer step', positive),
  /** Optimizer steps to run. */
  max_steps: int(100, 'optimizer steps', positive),
  /** Save a checkpoint every N steps (and always at the end). 0 = only at the end. */
  save_steps: int(50, 'checkpoint every N steps (0 = end only)', nonNegative),
  /** Keep only the newest N checkpoints (0 = keep all). */
  save_total_limit: int(2, 'keep the newest N checkpoints (0 = all)', nonNegative),
  /** Append a metrics.jsonl line every N steps. */
  logging_steps: int(1, 'metrics line every N steps', positive),
  /**
   * Data-parallel processes (accelerate's name): worker threads, each with a replica of the model, that split
   * every micro-batch and every sampling batch by rows (src/train/parallel.ts). 0 = one per CPU core (at most
   * 4): wasm is single-threaded in Node, so this is how the second core is used. wasm only; other backends use
   * 1. Results differ from a 1-process run only in float rounding.
   */
  num_processes: int(0, 'data-parallel worker threads incl. this one (0 = one per core, max 4; wasm only)', nonNegative),
};

/** A copy of a field table with other defaults (a phase's own defaults over the shared fields). */
function withDefaults<F extends Fields>(fields: F, defaults: Partial<ConfigOf<F>>): F {
  const out: Fields = { ...fields };
  for (const [k, v] of Object.entries(defaults)) out[k] = { ...fields[k], default: v };
  return out as F;
}

/** Supervised warm start: masked cross-entropy on completion tokens (TRL's SFTConfig names; LoRA as TRL's ModelConfig). */
export const SFT_FIELDS = {
  ...withDefaults(TRAIN_FIELDS, {
    // From the pretrained tiny base: on an earlier 1500-step base, 1e-3 (test exact 0.64 after 900 steps) beat
    // 3e-3 (0.61), the rate for random weights (preset tiny-scratch).
    learning_rate: 1e-3,
    warmup_ratio: 0.05,
    max_steps: 900, // ~14 epochs of the subset; ~0.3 s/step on the tiny model here (~5 min)
    save_steps: 0, // SFT is short: save at the end only
    logging_steps: 50,
  }),
  /** Rows (sequences) per micro-batch. */
  per_device_train_batch_size: int(16, 'sequences per micro-batch', positive),
  /**
   * How many of train's demonstration rows form the curated SFT set (0 = all of them; ~1/3 of train by default,
   * synth.ts demoFraction). The rest of train is GRPO's pool in the course.
   */
  sft_subset_size: int(0, "curated SFT rows taken from train's demonstration rows (0 = all)", nonNegative),
  /** Truncate prompt+completion to this many tokens. */
  max_length: int(192, 'truncate prompt+completion to N tokens', positive),
  /**
   * Evaluate every N steps (0 = never) with the caller's evaluation (the course: greedy exact match on the
   * validation split, whose templates SFT never sees). transformers' eval_steps.
   */
  eval_steps: int(100, 'evaluate every N steps (0 = off; the course: exact match on the validation split)', nonNegative),
  /** Keep the weights of the best evaluation (ties: the earlier step) instead of the last. transformers' name. */
  load_best_model_at_end: bool(true, 'end with the weights of the best evaluation (ties: the earlier step)'),
  /** Train a LoRA adapter instead of every weight (TRL's ModelConfig.use_peft; real checkpoints). */
  use_peft: bool(false, 'train a LoRA adapter instead of every weight (real checkpoints)'),
  /** SFT's own LoRA settings (PEFT names), used with use_peft. */
  lora_r: int(16, 'LoRA rank (with use_peft)', positive, { fixed_on_resume: true }),
  lora_alpha: float(32, 'LoRA alpha (with use_peft)', positive, { fixed_on_resume: true }),
  lora_dropout: float(0.0, 'LoRA dropout (with use_peft)', fraction, { fixed_on_resume: true }),
};

/** GRPO, with TRL's GRPOConfig names and meanings. */
export const GRPO_FIELDS = {
  ...withDefaults(TRAIN_FIELDS, {
    // LoRA on the tiny model. TRL's GRPOConfig default (1e-6) is for full fine-tuning of big models. Measured on
    // the tiny model after SFT: 3e-3 collapsed (sample reward 0.97 -> 0.4 in 150 steps), 5e-4 barely moved.
    learning_rate: 1e-3,
    warmup_ratio: 0.0,
    lr_scheduler_type: 'constant',
    max_steps: 150, // ~1.6 s/step here with 64 completions: 4 minutes
    gradient_accumulation_steps: 4, // 8 prompts, 64 completions per optimizer step
  }),
  /** Completions sampled per prompt (the group). TRL's default. */
  num_generations: int(8, 'completions per prompt (the group)', (v) => (v >= 2 ? null : 'must be >= 2 (advantages are relative to the group)')),
  /** Completions per micro-batch (a multiple of num_generations, so groups never straddle micro-batches). */
  per_device_train_batch_size: int(16, 'completions per micro-batch (a multiple of num_generations)', positive), // 2 prompts x 8 completions (keeps the wasm heap small)
  /** Tokens sampled at most per completion. */
  max_completion_length: int(64, 'max sampled tokens per completion', positive), // a tool call of the tiny model fits in ~40 tokens
  temperature: float(1.0, 'sampling temperature', nonNegative), // TRL's default
  top_p: float(1.0, 'nucleus sampling', (v) => (v > 0 && v <= 1 ? null : 'must be in (0, 1]')),
  /** 0 = off. */
  top_k: int(0, 'top-k sampling (0 = off)', nonNegative),
  /** KL coefficient to the reference (the base with LoRA switched off). 0 = no KL, no reference pass (TRL's default since 0.19). */
  beta: float(0.0, 'KL coefficient to the LoRA-off reference (0 = off)', nonNegative),
  /** Lower clip: ratio >= 1 - epsilon. TRL's default. */
  epsilon: float(0.2, 'lower clip of the ratio', nonNegative),
  /** Upper clip: ratio <= 1 + epsilon_high (DAPO's clip-higher when > epsilon); = epsilon by default as in TRL. */
  epsilon_high: float(0.2, 'upper clip of the ratio', nonNegative),
  /** Optimizer passes over each generated batch (>1 uses the sampling-time log-probs as "old"). TRL's default 1. */
  num_iterations: int(1, 'optimizer passes per generated batch', positive),
  /** How per-token losses become one number (see objectives.ts). */
  loss_type: choice(['grpo', 'bnpo', 'dapo', 'dr_grpo'] as const, 'grpo', 'loss aggregation'),
  /** Divide advantages by the group's std (TRL's default), the batch's std, or not at all (Dr. GRPO). */
  scale_rewards: choice(['group', 'batch', 'none'] as const, 'group', 'advantage scaling'),
  /** Completions cut by max_completion_length get no loss. */
  mask_truncated_completions: bool(false, 'no loss on completions cut at max_completion_length'),
  /**
   * Reward function names: keys of src/verify/reward.ts REWARDS. The course's four-part reward is 'seed' (needs
   * gold calls); 'outcome' needs only the right action's name and result (the course's default pool).
   */
  reward_funcs: {
    type: 'list',
    default: ['outcome'], // the course's pool is outcome-labelled: no gold call to compare with
    help: 'reward functions, comma list',
    choices: () => Object.keys(REWARDS),
    check: (v) => (v.length > 0 ? null : 'needs at least one reward function'),
  } as Field<string[]>,
  /** One weight per reward function; empty = all 1. */
  reward_weights: { type: 'float_list', default: [], help: 'one weight per reward function (comma list; empty = all 1)' } as Field<number[]>,
  /** Drop groups whose completions are all exact or all not exact (no learning signal; see advantage.ts). */
  skip_zero_std_groups: bool(false, 'drop groups that are all exact or all wrong (judged on exact match)'),
  /**
   * DAPO's dynamic sampling: keep drawing generation batches (prompts_per_step prompts each) and keep only the
   * groups whose exact-match outcomes differ, until the step has prompts_per_step such groups.
   */
  dynamic_sampling: bool(true, 'draw more prompts until the step is full of groups whose exact-match outcomes differ (DAPO)'),
  /** dynamic_sampling: at most this many generation batches per step (verl's max_num_gen_batches). */
  max_num_gen_batches: int(4, 'dynamic_sampling: generation batches per step at most', positive),
  /** LoRA rank, alpha and dropout for GRPO's adapter (PEFT names). */
  lora_r: int(16, 'LoRA rank', positive, { fixed_on_resume: true }),
  lora_alpha: float(32, 'LoRA alpha', positive, { fixed_on_resume: true }), // the course's LoraConfig
  lora_dropout: float(0.0, 'LoRA dropout', fraction, { fixed_on_resume: true }), // dropout would make sampling-time and loss-time log-probs differ
};

/** Next-token pretraining of the tiny base model (src/train/pretrain.ts). */
export const PRETRAIN_FIELDS = {
  ...withDefaults(TRAIN_FIELDS, {
    output_dir: 'models/tiny-base',
    learning_rate: 3e-3, // as SFT from random weights; cosine decay to 0
    lr_scheduler_type: 'cosine',
    warmup_ratio: 0.02,
    weight_decay: 0.1, // nanoGPT's
    adam_beta2: 0.95, // nanoGPT's
    max_steps: 2000,
    save_steps: 500, // the model dir is rewritten every N steps (a long run killed midway keeps its last save)
    logging_steps: 50,
  }),
  /** Sequences per micro-batch. */
  per_device_train_batch_size: int(32, 'sequences per micro-batch', positive),
  /** Tokens predicted per sequence. */
  seq_len: int(128, 'tokens predicted per sequence', (v) => (v >= 8 ? null : 'must be >= 8')),
};

export type SFTConfig = ConfigOf<typeof SFT_FIELDS>;
export type GRPOConfig = ConfigOf<typeof GRPO_FIELDS>;
export type PretrainConfig = ConfigOf<typeof PRETRAIN_FIELDS>;
/** What every trainer's config has. */
export type TrainCommon = ConfigOf<typeof TRAIN_FIELDS>;

export const FIELDS = { sft: SFT_FIELDS, grpo: GRPO_FIELDS, pretrain: PRETRAIN_FIELDS };
export type PhaseName = keyof typeof FIELDS;
export interface PhaseConfigs {
  sft: SFTConfig;
  grpo: GRPOConfig;
  pretrain: PretrainConfig;
}

function defaultsOf<F extends Fields>(fields: F): ConfigOf<F> {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(fields)) out[k] = Array.isArray(f.default) ? [...f.default] : f.default;
  return out as ConfigOf<F>;
}

/** The tables' defaults as config objects (the main job's; tests and notebooks spread them). */
export const SFT_DEFAULTS: SFTConfig = defaultsOf(SFT_FIELDS);
export const GRPO_DEFAULTS: GRPOConfig = defaultsOf(GRPO_FIELDS);
export const PRETRAIN_DEFAULTS: PretrainConfig = defaultsOf(PRETRAIN_FIELDS);

/** A starting point as data: where the model comes from, and what differs from the defaults per phase. */
export interface Preset {
  help: string;
  /** The course's model: the committed pretrained tiny base, a random tiny model made in the run, or --model DIR. */
  model: 'tiny-base' | 'tiny-scratch' | 'checkpoint';
  sft: Partial<SFTConfig>;
  grpo: Partial<GRPOConfig>;
}

export const PRESETS = {
  /** What `npm start` runs: the defaults. */
  'tiny-base': {
    help: 'the tiny Qwen2 pretrained by `pretrain` (models/tiny-base): SFT of every weight, GRPO with LoRA (npm start)',
    model: 'tiny-base',
    sft: {},
    grpo: {},
  },
  'tiny-scratch': {
    help: 'the tiny Qwen2 from random weights (tokenizer and weights made in the run)',
    model: 'tiny-scratch',
    // Random init, with warmup + clipping; 1e-2 diverged (loss 2.6 at step 100).
    sft: { learning_rate: 3e-3 },
    grpo: {},
  },
  'checkpoint-lora': {
    help: 'a real Qwen2 / Qwen2.5 checkpoint (--model DIR, its tokenizer and chat template): LoRA for SFT and GRPO',
    model: 'checkpoint',
    sft: { use_peft: true, learning_rate: 2e-4 }, // LoRA on a pretrained model
    grpo: { learning_rate: 5e-5 },
  },
} satisfies Record<string, Preset>;
export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/** Where a resolved value came from. */
export type Source = 'default' | 'preset' | 'checkpoint' | 'command' | 'flag';

export interface Resolved<C> {
  phase: PhaseName;
  preset: PresetName | null;
  /** Prefix of this phase's flags ('sft.' in the course, '' in `train`). */
  prefix: string;
  config: C;
  source: Record<string, Source>;
  /** --resume: command-line values that replace the checkpoint's. */
  overrides: { key: string; checkpoint: unknown; value: unknown }[];
  /** --resume: keys the checkpoint's config lacks (an older version wrote it): preset / default used. */
  missing: string[];
  /** --resume: the checkpoint's config file, else null. */
  checkpoint: string | null;
}

export interface ResolveOptions<C> {
  /** Prefix of this phase's flags, e.g. 'grpo.' (default ''). */
  prefix?: string;
  /** Values the command sets (the course's seed and run folders), above the preset and checkpoint. */
  set?: Partial<C>;
  /** A checkpoint's training_config.json to continue from (its file named in errors). */
  checkpoint?: { file: string; config: Record<string, unknown> } | null;
}

function choicesOf(f: Field<unknown>): readonly string[] | undefined {
  return typeof f.choices === 'function' ? f.choices() : f.choices;
}

/** Why `v` does not fit field `f`'s type and choices, or null. */
function typeProblem(f: Field<unknown>, v: unknown): string | null {
  switch (f.type) {
    case 'int':
      return Number.isInteger(v) ? null : 'expects an integer';
    case 'float':
      return typeof v === 'number' && Number.isFinite(v) ? null : 'expects a number';
    case 'bool':
      return typeof v === 'boolean' ? null : 'expects true or false';
    case 'float_list':
      return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? null : 'expects a comma list of numbers';
    case 'list':
    case 'string': {
      const xs = f.type === 'list' ? v : [v];
      if (!Array.isArray(xs) || !xs.every((x) => typeof x === 'string')) return f.type === 'list' ? 'expects a comma list' : 'expects a string';
      const ch = choicesOf(f);
      const bad = ch ? xs.find((x) => !ch.includes(x as string)) : undefined;
      if (bad === undefined) return null;
      const near = didYouMean(bad as string, ch!);
      return `'${bad}' is not one of ${ch!.join(' | ')}${near ? ` (did you mean '${near}'?)` : ''}`;
    }
  }
}

/**
 * Resolve one phase's config: defaults < preset < checkpoint < `o.set` < command-line flags (`flags[prefix +
 * key]`, as parseFlags returns them from configFlagSpec). Every value is checked (type, choices, range) and the
 * config as a whole (cross-field rules); an error names where the bad value came from.
 */
export function resolve<P extends PhaseName>(phase: P, preset: PresetName | null, flags: FlagValues, o: ResolveOptions<PhaseConfigs[P]> = {}): Resolved<PhaseConfigs[P]> {
  const fields: Fields = FIELDS[phase];
  const prefix = o.prefix ?? '';
  const ck = o.checkpoint ?? null;
  if (preset !== null && !(preset in PRESETS)) throw new ArgError(`unknown preset '${preset}' (known: ${PRESET_NAMES.join(', ')})`);
  const presetValues: Record<string, unknown> = preset !== null && phase !== 'pretrain' ? (PRESETS[preset] as Preset)[phase as 'sft' | 'grpo'] : {};
  if (ck) {
    const unknown = Object.keys(ck.config).filter((k) => !(k in fields));
    if (unknown.length) throw new ArgError(`${ck.file}: unknown ${phase} config key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (written by another version, or not a ${phase} checkpoint)`);
  }
  const config: Record<string, unknown> = {};
  const source: Record<string, Source> = {};
  const where: Record<string, string> = {};
  const overrides: Resolved<unknown>['overrides'] = [];
  const missing: string[] = [];
  for (const [k, f] of Object.entries(fields)) {
    let v: unknown = f.path ? path.resolve(ROOT, f.default as string) : f.default;
    let s: Source = 'default';
    let at = `the default of ${k}`;
    if (k in presetValues) [v, s, at] = [f.path ? path.resolve(ROOT, presetValues[k] as string) : presetValues[k], 'preset', `preset ${preset}: ${phase}.${k}`];
    if (ck) {
      if (k in ck.config) [v, s, at] = [ck.config[k], 'checkpoint', `${ck.file}: ${k}`];
      else missing.push(k);
    }
    const set = (o.set as Record<string, unknown> | undefined)?.[k];
    if (set !== undefined) [v, s, at] = [set, 'command', `${k} (set by the command)`];
    const flag = flags[prefix + k];
    if (flag !== undefined) {
      const fv = f.type === 'float_list' ? numberList(prefix + k, flag) : f.path && typeof flag === 'string' ? resolveUserPath(flag) : flag;
      if (ck && k in ck.config && !sameValue(fv, ck.config[k])) {
        if (f.fixed_on_resume) throw new ArgError(`--${prefix}${k}=${show(fv)}: cannot change when resuming (the run started with ${show(ck.config[k])}; ${ck.file})`);
        overrides.push({ key: k, checkpoint: ck.config[k], value: fv });
        [v, s] = [fv, 'flag'];
      } else if (!(ck && k in ck.config)) [v, s] = [fv, 'flag'];
      at = `--${prefix}${k}`;
    }
    const problem = typeProblem(f, v) ?? (f.check ? f.check(v) : null);
    if (problem) throw new ArgError(`${at}: ${problem} (got ${show(v)})`);
    config[k] = Array.isArray(v) ? [...v] : v;
    source[k] = s;
    where[k] = at;
  }
  crossCheck(phase, config, where, source);
  return { phase, preset, prefix, config: config as PhaseConfigs[P], source, overrides, missing, checkpoint: ck?.file ?? null };
}

function numberList(flag: string, v: unknown): number[] {
  const xs = Array.isArray(v) ? v : [v];
  const ns = xs.map(Number);
  if (ns.some((x) => !Number.isFinite(x))) throw new ArgError(`--${flag} expects numbers, got '${xs.join(',')}'`);
  return ns;
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function show(v: unknown): string {
  return JSON.stringify(v);
}

/**
 * Rules between fields. The error names the value that was set (a flag before a preset before a default),
 * `where` saying where each value came from.
 */
function crossCheck(phase: PhaseName, c: Record<string, unknown>, where: Record<string, string>, source: Record<string, Source>): void {
  if (phase !== 'grpo') return;
  const g = c as GRPOConfig;
  const rank: Source[] = ['default', 'preset', 'checkpoint', 'command', 'flag'];
  const blame = (...keys: string[]) => where[keys.reduce((a, b) => (rank.indexOf(source[b]) > rank.indexOf(source[a]) ? b : a))];
  if (g.per_device_train_batch_size % g.num_generations !== 0) {
    throw new ArgError(`${blame('per_device_train_batch_size', 'num_generations')}: per_device_train_batch_size=${g.per_device_train_batch_size} must be a multiple of num_generations=${g.num_generations} (groups never straddle micro-batches)`);
  }
  if (g.reward_weights.length !== 0 && g.reward_weights.length !== g.reward_funcs.length) {
    throw new ArgError(`${blame('reward_weights', 'reward_funcs')}: reward_weights needs ${g.reward_funcs.length} weights, one per reward function (got ${show(g.reward_weights)})`);
  }
}

/** Flag specs for a phase's fields (`prefix` + name), without defaults: a flag absent from argv stays unset. */
export function configFlagSpec(phase: PhaseName, prefix = ''): Record<string, FlagSpec> {
  const spec: Record<string, FlagSpec> = {};
  for (const [k, f] of Object.entries(FIELDS[phase] as Fields)) {
    const type = f.type === 'float_list' ? 'list' : f.type;
    spec[prefix + k] = { type, help: f.help, choices: type === 'string' ? choicesOf(f) : undefined };
  }
  return spec;
}

/** `--help` text for a phase's keys: help, allowed values, default, and the presets that change it. */
export function configHelp(phase: PhaseName, prefix = ''): string {
  const spec: Record<string, FlagSpec> = {};
  for (const [k, f] of Object.entries(FIELDS[phase] as Fields)) {
    const byPreset = phase === 'pretrain' ? [] : PRESET_NAMES.flatMap((p) => {
      const vals = (PRESETS[p] as Preset)[phase] as Record<string, unknown>;
      return k in vals ? [`${p}: ${show(vals[k])}`] : [];
    });
    const ch = choicesOf(f);
    const type = f.type === 'float_list' ? 'list' : f.type;
    spec[prefix + k] = {
      type,
      help: f.help + (type !== 'string' && ch ? ` [${ch.join('|')}]` : '') + (byPreset.length ? ` (preset ${byPreset.join(', ')})` : ''),
      choices: type === 'string' ? ch : undefined,
      default: f.default as FlagSpec['default'],
    };
  }
  return flagsHelp(spec);
}

/** `--help` lines for the presets. */
export function presetsHelp(): string {
  return PRESET_NAMES.map((p) => `  ${p.padEnd(24)} ${PRESETS[p].help}`).join('\n');
}

/**
 * A resolved config as every run prints it first: one key per line, with where each value came from when it
 * is not the default (or, on --resume, the checkpoint), and on --resume what the command line changed.
 */
export function formatResolved(title: string, r: Resolved<object>): string {
  const rows = Object.entries(r.config).map(([k, v]) => {
    const s = r.source[k];
    const o = r.overrides.find((x) => x.key === k);
    const note = o ? `  <- --${r.prefix}${k} (checkpoint: ${show(o.checkpoint)})`
      : s === 'preset' ? `  (preset ${r.preset})` : s === 'command' ? '  (set by the command)' : s === 'flag' ? `  (--${r.prefix}${k})` : '';
    return `  ${k.padEnd(28)} ${show(v)}${note}`;
  });
  const head = `${title}${r.preset ? ` (preset ${r.preset})` : ''}:`;
  const tail: string[] = [];
  if (r.missing.length) tail.push(`  (not in the checkpoint's config, so from the ${r.preset ? 'preset / ' : ''}defaults: ${r.missing.join(', ')})`);
  if (r.checkpoint) {
    const o = r.overrides.map((x) => `${x.key} ${show(x.checkpoint)} -> ${show(x.value)}`).join(', ');
    tail.push(`  --resume from ${r.checkpoint}: the command line overrides ${o || 'nothing'}`);
  }
  return [head, ...rows, ...tail].join('\n');
}

/** Print a plain config object, one key per line. */
export function formatConfig(name: string, c: object): string {
  const rows = Object.entries(c).map(([k, v]) => `  ${k.padEnd(28)} ${show(v)}`);
  return `${name}:\n${rows.join('\n')}`;
}

/** The GRPO batch arithmetic, derived rather than asked for (printed at the start of a run). */
export function grpoBatchShape(c: Pick<GRPOConfig, 'per_device_train_batch_size' | 'gradient_accumulation_steps' | 'num_generations'>): {
  completions_per_step: number;
  prompts_per_step: number;
  prompts_per_micro_batch: number;
} {
  const completions_per_step = c.per_device_train_batch_size * c.gradient_accumulation_steps;
  return {
    completions_per_step,
    prompts_per_step: completions_per_step / c.num_generations,
    prompts_per_micro_batch: c.per_device_train_batch_size / c.num_generations,
  };
}
