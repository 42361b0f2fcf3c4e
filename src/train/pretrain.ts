/**
 * Pretraining the tiny base model: next-token prediction on every token of packed sequences of the synthetic
 * financial corpus (src/env/corpus.ts), nanoGPT style. This is what makes the tiny default a *base model* the
 * way Qwen2.5 is one before the course fine-tunes it: it can read dates, amounts, currencies and company names
 * and copy values, and it knows nothing about tools.
 *
 *   sequence  <|endoftext|> doc <|endoftext|> doc ... cut at seq_len + 1 tokens (documents run over sequences)
 *   loss      mean over all seq_len predicted tokens of -log p(token | previous tokens)
 *
 * The sequence is a batch row with "prompt = its first token, completion = the rest", so the loss is SFT's
 * cross-entropy objective (objectives.ts) and the update (gradient accumulation, data parallelism, clipping,
 * AdamW) is the same code as SFT's and GRPO's (update.ts).
 *
 * Not here: the corpus (src/env/corpus.ts), the command (src/cli/pretrain.ts), the config (config.ts).
 */
import type { Qwen2ForCausalLM } from '../model/qwen2';
import { Rng } from '../util/rng';
import { Progress } from '../util/progress';
import type { PretrainConfig } from './config';
import { makeBatch, type Batch } from './batch';
import { crossEntropyObjective } from './objectives';
import { update, skippedMessage } from './update';
import { AdamW, learningRateAt } from './optim';
import { LoggedLoss, type MetricsLog, type PretrainMetrics } from './log';
import { DataParallel } from './parallel';

/** Packs documents from `next()` into token sequences of seq_len + 1 ids (an endless, seeded stream). */
export class Packer {
  private buf: number[] = [];
  constructor(
    private readonly encode: (text: string) => number[],
    private readonly next: () => string,
    private readonly sep: number,
    private readonly seq_len: number,
  ) {}

  sequence(): number[] {
    while (this.buf.length < this.seq_len + 1) this.buf.push(this.sep, ...this.encode(this.next()));
    return this.buf.splice(0, this.seq_len + 1);
  }
}

export interface PretrainOptions {
  model: Qwen2ForCausalLM;
  encode: (text: string) => number[];
  /** Separator between documents (<|endoftext|>). */
  sep_token_id: number;
  pad_token_id: number;
  /** A document from a seeded stream. */
  document: (rng: Rng) => string;
  config: PretrainConfig;
  log?: MetricsLog;
  progress?: boolean;
  /** Data-parallel ranks of `model` (default: this thread). */
  parallel?: DataParallel | null;
  onStep?: (m: PretrainMetrics) => void;
  /** Called (and awaited) every `save_steps` steps and after the last, with the step number. */
  save?: (step: number) => Promise<void>;
}

/** Train for `config.max_steps` optimizer steps; returns the logged history. */
export async function pretrain(o: PretrainOptions): Promise<{ seconds: number; history: PretrainMetrics[]; tokens: number }> {
  const c = o.config;
  const rng = new Rng(c.seed);
  const packer = new Packer(o.encode, () => o.document(rng), o.sep_token_id, c.seq_len);
  const vars = o.model.trainableVariables();
  const parallel = o.parallel ?? DataParallel.local(o.model);
  const opt = new AdamW(vars, c);
  const bar = o.progress === false ? null : new Progress({ label: 'pretrain', total: c.max_steps, every: Math.max(1, Math.floor(c.max_steps / 20)) });
  const history: PretrainMetrics[] = [];
  const t0 = Date.now();
  const logged = new LoggedLoss();
  let tokens = 0;
  try {
    for (let step = 0; step < c.max_steps; step++) {
      const ts = Date.now();
      const lr = learningRateAt(step, c);
      const micro: Batch[] = [];
      for (let m = 0; m < c.gradient_accumulation_steps; m++) {
        const seqs = Array.from({ length: c.per_device_train_batch_size }, () => packer.sequence());
        micro.push(makeBatch(seqs.map((s) => s.slice(0, 1)), seqs.map((s) => s.slice(1)), o.pad_token_id)); // [B, 1 + seq_len]
      }
      const num_tokens = micro.length * c.per_device_train_batch_size * c.seq_len;
      const u = await update(parallel, opt, micro.map((b) => crossEntropyObjective(b, num_tokens)), lr, c.max_grad_norm);
      tokens += num_tokens;
      logged.add(u.loss, u.skipped !== null);
      const secs = (Date.now() - ts) / 1000;
      const m: PretrainMetrics = { phase: 'pretrain', step: step + 1, loss: u.loss, learning_rate: lr, grad_norm: u.grad_norm, tokens, step_seconds: secs, tokens_per_second: num_tokens / secs };
      const skipped = skippedMessage(u);
      if (skipped) m.skipped = skipped;
      if ((step + 1) % c.logging_steps === 0 || step + 1 === c.max_steps || skipped) {
        m.loss = logged.take(u.loss);
        o.log?.append(m);
        history.push(m);
      }
      o.onStep?.(m);
      bar?.update(step + 1, { loss: m.loss });
      if (o.save && ((c.save_steps > 0 && (step + 1) % c.save_steps === 0) || step + 1 === c.max_steps)) await o.save(step + 1);
    }
  } finally {
    opt.dispose();
  }
  return { seconds: (Date.now() - t0) / 1000, history, tokens };
}
