/**
 * The typed training configs: one object for SFT, one for GRPO, with TRL's field names and each default
 * commented where it is set (nanoGPT habit). `--key=value` overrides are checked against the defaults: an
 * unknown key or a value of the wrong type is an error that names the flag.
 *
 * Not here: the model's own config (src/model/config.ts, Hugging Face keys) and the LoRA config (PEFT names).
 */
import { ArgError, parseFlags, flagsHelp, type FlagSpec } from '../util/args';

/** Settings shared by both trainers: optimizer, schedule, checkpoints, logging. */
export interface TrainCommon {
  /** Where metrics.jsonl, checkpoints and the resolved config go. */
  output_dir: string;
  /** Seed for data order, sampling and (tiny model) initialisation. */
  seed: number;
  /** Peak AdamW learning rate (reached after warmup). */
  learning_rate: number;
  /** Decoupled AdamW weight decay (not applied to 1-D weights: norms and biases). */
  weight_decay: number;
  adam_beta1: number;
  adam_beta2: number;
  adam_epsilon: number;
  /** Clip the global gradient norm to this (0 = off). */
  max_grad_norm: number;
  /** Fraction of the optimizer steps spent warming the learning rate up linearly from 0. */
  warmup_ratio: number;
  /** Learning rate after warmup: constant, linear decay to 0, or cosine decay to 0. */
  lr_scheduler_type: 'constant' | 'linear' | 'cosine';
  /** Micro-batches summed into one optimizer step. */
  gradient_accumulation_steps: number;
  /** Optimizer steps to run. */
  max_steps: number;
  /** Save a checkpoint every N steps (and always at the end). 0 = only at the end. */
  save_steps: number;
  /** Keep only the newest N checkpoints (0 = keep all). */
  save_total_limit: number;
  /** Append a metrics.jsonl line every N steps. */
  logging_steps: number;
  /**
   * Data-parallel processes (accelerate's name): worker threads, each with a replica of the model, that split
   * every micro-batch and every sampling batch by rows (src/train/parallel.ts). 0 = one per CPU core (at most
   * 4). wasm only; other backends use 1. Results differ from a 1-process run only in float rounding.
   */
  num_processes: number;
}

/** Supervised warm start: masked cross-entropy on completion tokens. */
export interface SFTConfig extends TrainCommon {
  /** Rows (sequences) per micro-batch. */
  per_device_train_batch_size: number;
  /** How many train rows form the curated SFT subset (0 = all). */
  sft_subset_size: number;
  /** Truncate prompt+completion to this many tokens. */
  max_length: number;
}

/** GRPO, with TRL's GRPOConfig names and meanings. */
export interface GRPOConfig extends TrainCommon {
  /** Completions sampled per prompt (the group). */
  num_generations: number;
  /** Completions per micro-batch (a multiple of num_generations here, so groups never straddle micro-batches). */
  per_device_train_batch_size: number;
  /** Tokens sampled at most per completion. */
  max_completion_length: number;
  temperature: number;
  top_p: number;
  /** 0 = off. */
  top_k: number;
  /** KL coefficient to the reference (the base with LoRA switched off). 0 = no KL, no reference pass. */
  beta: number;
  /** Lower clip: ratio >= 1 - epsilon. */
  epsilon: number;
  /** Upper clip: ratio <= 1 + epsilon_high (DAPO's clip-higher when > epsilon). */
  epsilon_high: number;
  /** Optimizer passes over each generated batch (>1 uses the sampling-time log-probs as "old"). */
  num_iterations: number;
  /** How per-token losses become one number (see loss.ts). */
  loss_type: 'grpo' | 'bnpo' | 'dapo' | 'dr_grpo';
  /** Divide advantages by the group's std, the batch's std, or not at all (Dr. GRPO). */
  scale_rewards: 'group' | 'batch' | 'none';
  /** Completions cut by max_completion_length get no loss. */
  mask_truncated_completions: boolean;
  /** Reward function names from src/verify/reward.ts REWARDS. */
  reward_funcs: string[];
  /** One weight per reward function; empty = all 1. */
  reward_weights: number[];
  /** Drop groups whose completions are all exact or all not exact (no learning signal; see advantage.ts). */
  skip_zero_std_groups: boolean;
  /** LoRA rank, alpha and dropout for GRPO's adapter (PEFT names). */
  lora_r: number;
  lora_alpha: number;
  lora_dropout: number;
}

export const TRAIN_COMMON_DEFAULTS: TrainCommon = {
  output_dir: 'outputs/run', // overridden by the commands with outputs/<run>
  seed: 0,
  learning_rate: 1e-3, // the tiny model trains from scratch; a real checkpoint wants ~1e-5 (LoRA ~1e-4)
  weight_decay: 0.0, // TRL's default
  adam_beta1: 0.9,
  adam_beta2: 0.999,
  adam_epsilon: 1e-8,
  max_grad_norm: 1.0, // TRL's default
  warmup_ratio: 0.1,
  lr_scheduler_type: 'linear', // TRL's default
  gradient_accumulation_steps: 1,
  max_steps: 100,
  save_steps: 50,
  save_total_limit: 2,
  logging_steps: 1,
  num_processes: 0, // one per core: wasm is single-threaded in Node, so this is how the second core is used
};

export const SFT_DEFAULTS: SFTConfig = {
  ...TRAIN_COMMON_DEFAULTS,
  learning_rate: 3e-3, // tiny model from random init, with warmup + clipping; 1e-2 diverged (loss 2.6 at step 100)
  warmup_ratio: 0.05,
  max_steps: 900, // ~14 epochs of the subset; ~0.26 s/step on the tiny model here (4 min)
  save_steps: 0, // SFT is short: save at the end only
  logging_steps: 50,
  per_device_train_batch_size: 16,
  sft_subset_size: 1000, // the "hand-checked seed set" (a third of the default 3000 train rows); the rest is GRPO's pool
  max_length: 192,
};

export const GRPO_DEFAULTS: GRPOConfig = {
  ...TRAIN_COMMON_DEFAULTS,
  // LoRA on the tiny model. TRL's GRPOConfig default (1e-6) is for full fine-tuning of big models. Measured on
  // the tiny model after SFT: 3e-3 collapsed (sample reward 0.97 -> 0.4 in 150 steps), 5e-4 barely moved.
  learning_rate: 1e-3,
  warmup_ratio: 0.0,
  lr_scheduler_type: 'constant',
  max_steps: 150, // ~2 s/step here with 64 completions: 5 minutes
  save_steps: 50,
  num_generations: 8, // TRL's default
  per_device_train_batch_size: 16, // 2 prompts x 8 completions per micro-batch (keeps the wasm heap small)
  gradient_accumulation_steps: 4, // 8 prompts, 64 completions per optimizer step
  max_completion_length: 64, // a tool call of the tiny model fits in ~40 tokens
  temperature: 1.0, // TRL's default
  top_p: 1.0,
  top_k: 0,
  beta: 0.0, // TRL's default since 0.19: no KL term, no reference forward pass
  epsilon: 0.2, // TRL's default
  epsilon_high: 0.2, // = epsilon unless set (TRL's default)
  num_iterations: 1, // TRL's default: old log-probs = current ones, ratio = 1
  loss_type: 'grpo',
  scale_rewards: 'group', // TRL's default
  mask_truncated_completions: false,
  reward_funcs: ['seed'], // the course's four-part reward
  reward_weights: [],
  skip_zero_std_groups: false,
  lora_r: 16,
  lora_alpha: 32, // the course's LoraConfig
  lora_dropout: 0.0, // dropout would make sampling-time and loss-time log-probs differ
};

const CHOICES: Record<string, readonly string[]> = {
  lr_scheduler_type: ['constant', 'linear', 'cosine'],
  loss_type: ['grpo', 'bnpo', 'dapo', 'dr_grpo'],
  scale_rewards: ['group', 'batch', 'none'],
};

const HELP: Record<string, string> = {
  output_dir: 'run folder (metrics.jsonl, checkpoints, config.json)',
  seed: 'seed for data order, sampling and initialisation',
  learning_rate: 'peak AdamW learning rate',
  weight_decay: 'decoupled weight decay (matrices only)',
  adam_beta1: 'AdamW beta1',
  adam_beta2: 'AdamW beta2',
  adam_epsilon: 'AdamW epsilon',
  max_grad_norm: 'clip the global grad norm (0 = off)',
  warmup_ratio: 'fraction of steps warming the lr up from 0',
  lr_scheduler_type: 'lr after warmup',
  gradient_accumulation_steps: 'micro-batches per optimizer step',
  max_steps: 'optimizer steps',
  save_steps: 'checkpoint every N steps (0 = end only)',
  save_total_limit: 'keep the newest N checkpoints (0 = all)',
  logging_steps: 'metrics line every N steps',
  num_processes: 'data-parallel worker threads incl. this one (0 = one per core, max 4; wasm only)',
  per_device_train_batch_size: 'sequences per micro-batch (GRPO: completions, a multiple of num_generations)',
  sft_subset_size: 'curated SFT rows taken from train (0 = all)',
  max_length: 'SFT: truncate prompt+completion to N tokens',
  num_generations: 'completions per prompt (the group)',
  max_completion_length: 'max sampled tokens per completion',
  temperature: 'sampling temperature',
  top_p: 'nucleus sampling',
  top_k: 'top-k sampling (0 = off)',
  beta: 'KL coefficient to the LoRA-off reference (0 = off)',
  epsilon: 'lower clip of the ratio',
  epsilon_high: 'upper clip of the ratio',
  num_iterations: 'optimizer passes per generated batch',
  loss_type: 'loss aggregation',
  scale_rewards: 'advantage scaling',
  mask_truncated_completions: 'no loss on completions cut at max_completion_length',
  reward_funcs: 'reward functions (comma list of seed,tiered,strict)',
  reward_weights: 'one weight per reward function (comma list)',
  skip_zero_std_groups: 'drop groups that are all exact or all wrong (judged on exact match)',
  lora_r: 'LoRA rank',
  lora_alpha: 'LoRA alpha',
  lora_dropout: 'LoRA dropout',
};

/** A flag spec for every key of `defaults`, typed by the default's type. Prefix e.g. 'sft.' or 'grpo.'. */
export function configFlagSpec(defaults: object, prefix = ''): Record<string, FlagSpec> {
  const spec: Record<string, FlagSpec> = {};
  for (const [k, v] of Object.entries(defaults)) {
    const help = HELP[k] ?? k;
    const type = typeof v === 'boolean' ? 'bool' : Array.isArray(v) ? 'list'
      : typeof v === 'number' ? (Number.isInteger(v) && !FLOAT_KEYS.has(k) ? 'int' : 'float') : 'string';
    spec[prefix + k] = { type, help, choices: CHOICES[k] };
  }
  return spec;
}

// Numbers whose default happens to be whole but which take fractions.
const FLOAT_KEYS = new Set(['learning_rate', 'weight_decay', 'max_grad_norm', 'warmup_ratio', 'temperature', 'top_p',
  'beta', 'epsilon', 'epsilon_high', 'adam_beta1', 'adam_beta2', 'adam_epsilon', 'lora_alpha', 'lora_dropout']);

/**
 * Apply parsed flag values (from parseFlags with configFlagSpec) onto a copy of `defaults`, then validate.
 * Keys absent from `values` keep their defaults.
 */
export function resolveConfig<T extends object>(defaults: T, values: Record<string, unknown>, prefix = ''): T {
  const out = { ...defaults } as Record<string, unknown>;
  for (const k of Object.keys(defaults)) {
    const v = values[prefix + k];
    if (v === undefined) continue;
    if (k === 'reward_weights') {
      const ws = (v as string[]).map(Number);
      if (ws.some((w) => !Number.isFinite(w))) throw new ArgError(`--${prefix}${k} expects numbers, got '${(v as string[]).join(',')}'`);
      out[k] = ws;
    } else out[k] = v;
  }
  validate(out, prefix);
  return out as T;
}

/** Parse `--key=value` overrides of one config (rejects unknown keys and wrong types). */
export function parseConfig<T extends object>(defaults: T, argv: string[]): T {
  return resolveConfig(defaults, parseFlags(argv, configFlagSpec(defaults)));
}

/** Check ranges and cross-field rules; throws ArgError naming the flag. */
export function validate(c: Record<string, unknown>, prefix = ''): void {
  const bad = (k: string, why: string) => { throw new ArgError(`--${prefix}${k}: ${why} (got ${JSON.stringify(c[k])})`); };
  const pos = ['learning_rate', 'max_steps', 'gradient_accumulation_steps', 'per_device_train_batch_size', 'logging_steps',
    'num_generations', 'max_completion_length', 'num_iterations', 'max_length', 'lora_r'];
  for (const k of pos) if (k in c && !((c[k] as number) > 0)) bad(k, 'must be > 0');
  const nonneg = ['weight_decay', 'max_grad_norm', 'save_steps', 'save_total_limit', 'beta', 'epsilon', 'epsilon_high',
    'sft_subset_size', 'top_k', 'temperature', 'num_processes'];
  for (const k of nonneg) if (k in c && !((c[k] as number) >= 0)) bad(k, 'must be >= 0');
  if ('warmup_ratio' in c && !((c.warmup_ratio as number) >= 0 && (c.warmup_ratio as number) < 1)) bad('warmup_ratio', 'must be in [0, 1)');
  if ('top_p' in c && !((c.top_p as number) > 0 && (c.top_p as number) <= 1)) bad('top_p', 'must be in (0, 1]');
  if ('lora_dropout' in c && !((c.lora_dropout as number) >= 0 && (c.lora_dropout as number) < 1)) bad('lora_dropout', 'must be in [0, 1)');
  if ('num_generations' in c) {
    const G = c.num_generations as number;
    if (G < 2) bad('num_generations', 'must be >= 2 (advantages are relative to the group)');
    if ((c.per_device_train_batch_size as number) % G !== 0) {
      bad('per_device_train_batch_size', `must be a multiple of num_generations=${G}`);
    }
  }
  if ('reward_funcs' in c) {
    const fs = c.reward_funcs as string[];
    if (fs.length === 0) bad('reward_funcs', 'needs at least one reward function');
    const ws = c.reward_weights as number[];
    if (ws.length !== 0 && ws.length !== fs.length) bad('reward_weights', `needs ${fs.length} weights (one per reward function)`);
  }
}

/** The GRPO batch arithmetic, derived rather than asked for (printed at the start of a run). */
export function grpoBatchShape(c: GRPOConfig): { completions_per_step: number; prompts_per_step: number; prompts_per_micro_batch: number } {
  const completions_per_step = c.per_device_train_batch_size * c.gradient_accumulation_steps;
  return {
    completions_per_step,
    prompts_per_step: completions_per_step / c.num_generations,
    prompts_per_micro_batch: c.per_device_train_batch_size / c.num_generations,
  };
}

/** `--help` text for a config. */
export function configHelp(defaults: object, prefix = ''): string {
  const spec = configFlagSpec(defaults, prefix);
  for (const [k, v] of Object.entries(defaults)) spec[prefix + k].default = v as never;
  return flagsHelp(spec);
}

/** Print a resolved config, one key per line (what every run shows first). */
export function formatConfig(name: string, c: object): string {
  const rows = Object.entries(c).map(([k, v]) => `  ${k.padEnd(28)} ${JSON.stringify(v)}`);
  return `${name}:\n${rows.join('\n')}`;
}
