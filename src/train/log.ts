/**
 * What the trainers log, typed, and metrics.jsonl: one JSON object per logged step.
 *
 * The metric names are TRL's (`loss`, `learning_rate`, `grad_norm`, `reward`, `reward_std`,
 * `rewards/<fn>/mean`, `frac_reward_zero_std`, `completions/mean_length`, `completions/clipped_ratio`, `kl`,
 * `entropy`, `clip_ratio/...`) plus `phase`, `step`, `step_seconds` and `tokens_per_second`. Each phase has its
 * own type (`SFTMetrics`, `PretrainMetrics`, `GRPOMetrics`), so a reader gets numbers without casts.
 *
 * Each line is written with one write call and fsync'd, so a SIGKILL leaves at most a partial last line;
 * opening the log for a resumed run drops that line and every line after the checkpoint's step, so the file
 * reads as if the run had never stopped. JSON has no NaN: a non-finite value is written as null and its key
 * listed in `nonfinite`, and reading the file turns those back into NaN.
 *
 * Not here: how the numbers are computed (the trainers) or plotted (src/report/course.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeAtomic } from '../util/files';

/** What every trainer logs for an optimizer step. */
export interface StepMetrics {
  /** Optimizer steps done, 1-based. */
  step: number;
  /** SFT / pretraining: the mean loss since the previous logged line (skipped steps left out); GRPO: this step's. */
  loss: number;
  learning_rate: number;
  /** Global gradient norm before clipping (NaN when no update ran). */
  grad_norm: number;
  step_seconds: number;
  /** Set when the step applied no update, and why (e.g. "non-finite loss: update skipped"). */
  skipped?: string;
  /** Comma list of keys whose value was not finite when written (they read back as NaN). */
  nonfinite?: string;
}

export interface SFTMetrics extends StepMetrics {
  phase: 'sft';
  /** Completion tokens in the step (the cross-entropy's denominator). */
  num_tokens: number;
  /** eval_steps: the evaluation's score at this step (the course: greedy exact match on validation). */
  eval_exact_match?: number;
}

export interface PretrainMetrics extends StepMetrics {
  phase: 'pretrain';
  /** Tokens trained on so far. */
  tokens: number;
  tokens_per_second: number;
}

/** GRPO's step metrics, TRL's GRPOTrainer names. Per reward function `rewards/<fn>/mean` and `/std`. */
export interface GRPOMetrics extends StepMetrics {
  phase: 'grpo';
  /** Mean weighted reward over the step's completions. */
  reward: number;
  /** Mean over groups of the reward std within the group. */
  reward_std: number;
  [per_func: `rewards/${string}/mean` | `rewards/${string}/std`]: number;
  /** Share of the sampled completions that are the exact call (the course's exact match). */
  exact_match: number;
  frac_reward_zero_std: number;
  /** Share of the step's sampled groups (all generation batches) whose completions are all exact or all not. */
  frac_zero_exact_spread?: number;
  /** dynamic_sampling: generation batches drawn, and prompts drawn over them (prompts_per_step each). */
  num_gen_batches?: number;
  num_prompts_drawn?: number;
  /** Share of groups left out of the loss by skip_zero_std_groups. */
  frac_groups_skipped: number;
  'completions/mean_length': number;
  'completions/min_length': number;
  'completions/max_length': number;
  'completions/clipped_ratio': number;
  'completions/mean_terminated_length': number;
  kl: number;
  /** Mean per-token entropy of the sampling distribution (nats). */
  entropy: number;
  'clip_ratio/low_mean': number;
  'clip_ratio/high_mean': number;
  'clip_ratio/region_mean': number;
  generation_seconds: number;
  train_seconds: number;
  /** Sampled tokens per second of the whole step. */
  tokens_per_second: number;
}

export type TrainMetrics = SFTMetrics | PretrainMetrics | GRPOMetrics;
export type Phase = TrainMetrics['phase'];

export function isGRPOMetrics(m: TrainMetrics): m is GRPOMetrics {
  return m.phase === 'grpo';
}
export function isSFTMetrics(m: TrainMetrics): m is SFTMetrics {
  return m.phase === 'sft';
}

export class MetricsLog {
  private constructor(readonly file: string) {}

  /**
   * Open (create) a metrics.jsonl. With `resumeStep`, keep only the complete lines whose `step` is
   * <= resumeStep (what the checkpoint had seen); without it, start a fresh file.
   */
  static open(file: string, resumeStep?: number): MetricsLog {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (resumeStep === undefined) {
      fs.writeFileSync(file, '');
    } else {
      const kept = readMetrics(file, { tolerant: true }).filter((m) => m.step <= resumeStep);
      writeAtomic(file, kept.map((m) => JSON.stringify(toJson(m)) + '\n').join(''));
    }
    return new MetricsLog(file);
  }

  /** Append one line and fsync it. Non-finite numbers become null (JSON has no NaN) and are named in `nonfinite`. */
  append(m: TrainMetrics): void {
    const fd = fs.openSync(this.file, 'a');
    try {
      fs.writeSync(fd, JSON.stringify(toJson(m)) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** The JSON object of a metrics line: non-finite numbers as null, named in `nonfinite`. */
function toJson(m: TrainMetrics): Record<string, unknown> {
  const bad: string[] = [];
  const clean: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (k === 'nonfinite') continue;
    if (typeof v === 'number' && !Number.isFinite(v)) {
      bad.push(k);
      clean[k] = null;
    } else clean[k] = v;
  }
  if (bad.length) clean.nonfinite = bad.join(',');
  return clean;
}

const PHASES: readonly string[] = ['sft', 'pretrain', 'grpo'];

/**
 * Read a metrics.jsonl (the keys listed in `nonfinite` come back as NaN). `tolerant` skips a torn last line
 * (a killed writer); otherwise a bad line is an error naming file:line.
 */
export function readMetrics(file: string, opts: { tolerant?: boolean } = {}): TrainMetrics[] {
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out: TrainMetrics[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(line) as Record<string, unknown>;
    } catch (e) {
      if (opts.tolerant && i >= lines.length - 2) return;
      throw new Error(`${file}:${i + 1}: not a JSON line (${(e as Error).message})`);
    }
    if (m === null || typeof m !== 'object' || typeof m.step !== 'number' || !PHASES.includes(m.phase as string)) {
      throw new Error(`${file}:${i + 1}: not a metrics line (needs a numeric "step" and "phase" one of ${PHASES.join(', ')})`);
    }
    if (typeof m.nonfinite === 'string') for (const k of m.nonfinite.split(',')) if (m[k] === null) m[k] = NaN;
    out.push(m as unknown as TrainMetrics);
  });
  return out;
}

/**
 * The loss a log line reports in SFT and pretraining: the mean over the optimizer steps since the previous
 * line, skipped steps left out, as transformers logs it.
 */
export class LoggedLoss {
  private sum = 0;
  private n = 0;
  add(loss: number, skipped: boolean): void {
    if (skipped) return;
    this.sum += loss;
    this.n += 1;
  }
  /** The mean since the last call (`fallback` when every step since was skipped); starts the next window. */
  take(fallback: number): number {
    const mean = this.n ? this.sum / this.n : fallback;
    this.sum = 0;
    this.n = 0;
    return mean;
  }
}
