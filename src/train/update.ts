/**
 * One optimizer update, the same for pretraining, SFT and GRPO:
 *
 *   for each micro-batch: its objective's loss and gradients, split over the data-parallel ranks and summed
 *   -> global-norm clip -> AdamW -> the new trainable weights sent to the replicas
 *
 * over a DataParallel of any size (size 1 = this thread only, no special case). A non-finite loss or gradient
 * applies nothing (weights and optimizer moments stay as they were) and says which one it was.
 *
 * Not here: what the objectives are (objectives.ts), how the ranks split the rows (parallel.ts), AdamW, the
 * schedule and clipping themselves (optim.ts), or when to log and save (the trainers).
 */
import type { DataParallel } from './parallel';
import type { Objective } from './objectives';
import { GradAccumulator, optimizerStep, type AdamW } from './optim';

export interface UpdateResult {
  /** Sum over the micro-batches of their losses (= the step's loss: each is normalised by the whole step). */
  loss: number;
  /** Global gradient norm before clipping; NaN when the loss was not finite (no gradient was used). */
  grad_norm: number;
  /** Why nothing was applied, or null when the update went through. */
  skipped: 'non-finite loss' | 'non-finite gradient' | null;
}

/**
 * Differentiate every micro-batch objective on `parallel`'s ranks, sum the gradients, clip them to
 * `max_grad_norm` (0 = no clipping), apply AdamW at `lr` to `opt.vars` (the model's trainable variables) and
 * sync the replicas.
 */
export async function update(parallel: DataParallel, opt: AdamW, micro: readonly Objective[], lr: number, max_grad_norm: number): Promise<UpdateResult> {
  const acc = new GradAccumulator(opt.vars);
  let loss = 0;
  try {
    for (const o of micro) {
      const r = await parallel.valueAndGrads(o, opt.vars);
      loss += r.value;
      acc.addList(r.grads);
    }
  } catch (e) {
    acc.dispose();
    throw e;
  }
  if (!Number.isFinite(loss)) {
    acc.dispose();
    return { loss, grad_norm: NaN, skipped: 'non-finite loss' };
  }
  const { grad_norm, skipped } = await optimizerStep(opt, acc, lr, max_grad_norm);
  if (skipped) return { loss, grad_norm, skipped: 'non-finite gradient' };
  await parallel.syncWeights();
  return { loss, grad_norm, skipped: null };
}

/** The `skipped` text a trainer logs for a skipped update, e.g. "non-finite loss: update skipped". */
export function skippedMessage(r: Pick<UpdateResult, 'skipped'>): string | undefined {
  return r.skipped ? `${r.skipped}: update skipped` : undefined;
}
