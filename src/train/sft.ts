/**
 * SFT warm start: masked cross-entropy on the completion tokens only. The prompt (system line, tool list,
 * user request) gets no loss: the model is taught to answer, not to predict the user's words.
 *
 *   loss = - sum_{completion tokens} log p(token | prefix) / (completion tokens in the step)
 *
 * (TRL SFTTrainer's `completion_only_loss`, averaged per token over the whole optimizer step.)
 *
 * Why a small subset of train, not all of it: SFT here plays the part of the hand-checked examples a company
 * starts with (a few hundred calls someone verified). It teaches the output format and the common tool
 * choices. The rest of the train prompts are GRPO's pool: prompts whose gold calls are only used by the
 * verifier, the cheap, plentiful signal RL learns from. Training SFT on everything would leave GRPO nothing
 * to improve and would not show what verifiable rewards add.
 * How small: the tiny model from scratch needs about a thousand rows to generalise at all. Measured on test
 * (first 100-150 rows, seed 0): 300 rows x 400 steps reached exact match 0.16-0.19 while its train loss fell
 * to 0.14 (memorising); 1000 rows x 900 steps reached 0.46. So the default is 1000 of 3000 train rows.
 *
 * For the tiny model, SFT trains every weight (full fine-tuning); with `use_peft` (a real checkpoint) the
 * caller adds LoRA first and only the adapter trains.
 *
 * Not here: the loss (objectives.ts `crossEntropyObjective`), the update (update.ts), the GRPO loop (grpo.ts),
 * evaluation (src/eval/evaluate.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { Qwen2ForCausalLM } from '../model/qwen2';
import { Rng, hash32 } from '../util/rng';
import { Progress } from '../util/progress';
import type { SFTConfig } from './config';
import { DataOrder, goldCompletionIds, makeBatch, promptIds, type Batch, type TokenizerLike, type TrainRow } from './batch';
import { AdamW, learningRateAt } from './optim';
import { crossEntropyObjective } from './objectives';
import { update, skippedMessage } from './update';
import { LoggedLoss, type MetricsLog, type SFTMetrics } from './log';
import { DataParallel } from './parallel';

/**
 * The curated SFT subset: `n` rows, as a person assembling seed examples would pick them. Behaviours keep their
 * share of the rows (the synthesized mix, default 60% execute / 20% ask_user / 10% refuse / 10% no_call), and
 * within a behaviour the rows are spread evenly over its kinds: the tool for execute rows, the (tool, missing
 * arguments) group for ask_user (18 groups: each needs its own examples), the category for refuse. Seeded.
 * n = 0 or n >= rows: all rows.
 */
export function curatedSubset<T extends TrainRow>(rows: readonly T[], n: number, seed: number): T[] {
  if (n <= 0 || n >= rows.length) return rows.slice();
  const rng = new Rng(hash32(`sft-subset:${seed}`));
  const kind = (r: T): string => {
    const id = r.template_id ?? '';
    if (r.behavior === 'ask_user' || r.behavior === 'refuse') return id.slice(0, id.lastIndexOf('.')); // group / category
    return r.tool ?? '';
  };
  const byBehavior = new Map<string, Map<string, T[]>>();
  for (const r of rows) {
    const b = r.behavior ?? '';
    if (!byBehavior.has(b)) byBehavior.set(b, new Map());
    const kinds = byBehavior.get(b)!;
    const k = kind(r);
    if (!kinds.has(k)) kinds.set(k, []);
    kinds.get(k)!.push(r);
  }
  // Each behaviour's quota: its share of the rows (largest remainder), capped by what it has.
  const behaviors = [...byBehavior.keys()].sort();
  const sizes = behaviors.map((b) => [...byBehavior.get(b)!.values()].reduce((a, l) => a + l.length, 0));
  const exact = sizes.map((m) => (n * m) / rows.length);
  const quota = exact.map(Math.floor);
  const order = behaviors.map((_, i) => i).sort((a, b) => exact[b] - quota[b] - (exact[a] - quota[a]) || a - b);
  for (let k = 0; quota.reduce((a, q) => a + q, 0) < n; k++) quota[order[k % order.length]]++;
  const out: T[] = [];
  behaviors.forEach((b, bi) => {
    const kinds = byBehavior.get(b)!;
    const lists = [...kinds.keys()].sort().map((k) => rng.shuffle(kinds.get(k)!.slice()));
    const picked: T[] = [];
    for (let i = 0; picked.length < quota[bi]; i++) {
      let any = false;
      for (const l of lists) {
        if (i < l.length && picked.length < quota[bi]) {
          picked.push(l[i]);
          any = true;
        }
      }
      if (!any) break;
    }
    out.push(...picked);
  });
  return rng.shuffle(out);
}

/**
 * The course's SFT rows: the curated subset (`sft_subset_size`, 0 = all) of train's demonstration rows (rows of
 * the demonstration templates, synth.ts), or of all rows when none is marked. What `course` and `train --algo
 * sft` train on.
 */
export function demonstrationSubset<T extends TrainRow & { demonstration?: boolean }>(train: readonly T[], c: Pick<SFTConfig, 'sft_subset_size' | 'seed'>): T[] {
  const demos = train.filter((r) => r.demonstration === true);
  return curatedSubset(demos.length ? demos : train, c.sft_subset_size, c.seed);
}

/** Prompt + gold completion ids of a row, cut to `max_length` tokens (the prompt loses its oldest tokens first). */
export function sftExample(tok: TokenizerLike, row: TrainRow, max_length: number): { prompt: number[]; completion: number[] } {
  let prompt = promptIds(tok, row);
  const completion = goldCompletionIds(tok, row).slice(0, max_length - 1);
  if (prompt.length + completion.length > max_length) prompt = prompt.slice(prompt.length + completion.length - max_length);
  return { prompt, completion };
}

export interface SFTOptions {
  model: Qwen2ForCausalLM;
  tokenizer: TokenizerLike;
  /** The SFT rows (already the curated subset). */
  rows: readonly TrainRow[];
  config: SFTConfig;
  /** Metrics go to `<runDir>/metrics.jsonl` lines with phase 'sft' (optional). */
  log?: MetricsLog;
  /** Called after each step (notebooks plot from it). */
  onStep?: (m: SFTMetrics) => void;
  /** Print a progress bar (default true). */
  progress?: boolean;
  /** Split each micro-batch's rows over these data-parallel ranks of `model` (default: this thread; parallel.ts). */
  parallel?: DataParallel | null;
  /**
   * With config.eval_steps: score the model as it is now (higher is better), e.g. greedy exact match on a
   * validation split; it may generate on `parallel` (the replicas hold the current weights).
   */
  evaluate?: (parallel: DataParallel) => Promise<number>;
}

export interface SFTResult {
  steps: number;
  seconds: number;
  /** The last logged training loss. */
  loss: number;
  history: SFTMetrics[];
  /** eval_steps: every evaluation [step, score]; with load_best_model_at_end the model ends at `best`'s weights. */
  evals: [number, number][];
  best: { step: number; score: number } | null;
}

/** Run SFT for `config.max_steps` optimizer steps over the rows (epochs reshuffled, seeded). */
export async function trainSFT(o: SFTOptions): Promise<SFTResult> {
  const c = o.config;
  const examples = o.rows.map((r) => sftExample(o.tokenizer, r, c.max_length));
  const order = new DataOrder(examples.length, c.seed, 'sft');
  const vars = o.model.trainableVariables();
  if (vars.length === 0) throw new Error('trainSFT: the model has no trainable variables');
  const parallel = o.parallel ?? DataParallel.local(o.model);
  const opt = new AdamW(vars, c);
  const bar = o.progress === false ? null : new Progress({ label: 'sft', total: c.max_steps, every: Math.max(1, Math.floor(c.max_steps / 10)) });
  const history: SFTMetrics[] = [];
  const t0 = Date.now();
  let cursor = 0;
  const logged = new LoggedLoss();
  const evals: [number, number][] = [];
  let best: { step: number; score: number; weights: Float32Array[] } | null = null;
  const evalDue = (step: number) => o.evaluate !== undefined && c.eval_steps > 0 && (step % c.eval_steps === 0 || step === c.max_steps);
  try {
    for (let step = 0; step < c.max_steps; step++) {
      const ts = Date.now();
      const lr = learningRateAt(step, c);
      // Gather the step's micro-batches first: the per-token mean needs the step's token count.
      const micro: Batch[] = [];
      for (let m = 0; m < c.gradient_accumulation_steps; m++) {
        const idx = order.take(cursor, c.per_device_train_batch_size);
        cursor += idx.length;
        micro.push(makeBatch(idx.map((i) => examples[i].prompt), idx.map((i) => examples[i].completion), o.tokenizer.pad_token_id));
      }
      const num_tokens = micro.reduce((s, b) => s + b.completion_mask.flat().reduce((a, x) => a + x, 0), 0);
      const u = await update(parallel, opt, micro.map((b) => crossEntropyObjective(b, num_tokens)), lr, c.max_grad_norm);
      logged.add(u.loss, u.skipped !== null);
      const m: SFTMetrics = { phase: 'sft', step: step + 1, loss: u.loss, learning_rate: lr, grad_norm: u.grad_norm, num_tokens, step_seconds: (Date.now() - ts) / 1000 };
      const skipped = skippedMessage(u);
      if (skipped) m.skipped = skipped;
      if (evalDue(step + 1)) {
        const score = await o.evaluate!(parallel);
        evals.push([step + 1, score]);
        m.eval_exact_match = score;
        // Strictly better only: on a tie the earlier (less converged) weights stay, which leaves GRPO more to do.
        if (c.load_best_model_at_end && (best === null || score > best.score)) {
          best = { step: step + 1, score, weights: await Promise.all(vars.map(async (v) => ((await v.data()) as Float32Array).slice())) };
        }
      }
      if ((step + 1) % c.logging_steps === 0 || step + 1 === c.max_steps || skipped || m.eval_exact_match !== undefined) {
        m.loss = logged.take(u.loss);
        o.log?.append(m);
        history.push(m);
      }
      o.onStep?.(m);
      bar?.update(step + 1, { loss: m.loss });
    }
    if (best && best.step !== c.max_steps) {
      vars.forEach((v, i) => {
        const t = tf.tensor(best!.weights[i], v.shape);
        v.assign(t);
        t.dispose();
      });
      o.model.invalidateCaches();
      await parallel.syncWeights();
      console.log(`sft: load_best_model_at_end: step ${best.step} (eval ${best.score.toFixed(3)}; last ${evals[evals.length - 1][1].toFixed(3)} at step ${c.max_steps})`);
    }
  } finally {
    opt.dispose();
  }
  const last = history.length ? history[history.length - 1].loss : NaN;
  return { steps: c.max_steps, seconds: (Date.now() - t0) / 1000, loss: last, history, evals, best: best && { step: best.step, score: best.score } };
}
