/**
 * The optimizer side of a training step: AdamW (decoupled weight decay, bias-corrected moments), the learning
 * rate schedule (linear warmup, then constant / linear / cosine decay, as transformers' schedulers), global-norm
 * gradient clipping, and gradient accumulation across micro-batches. The optimizer state is plain
 * Float32Arrays so a checkpoint can save it and a resumed run continues bit for bit.
 *
 * Written out rather than using tf.train.adam because tfjs's optimizers neither decouple weight decay nor expose
 * their moments in a form we can save next to a PEFT adapter.
 */
import * as tf from '@tensorflow/tfjs';

export interface AdamWOptions {
  weight_decay: number;
  adam_beta1: number;
  adam_beta2: number;
  adam_epsilon: number;
}

/** Saved optimizer state: step count and both moments per variable (in the variables' order). */
export interface AdamWState {
  step: number;
  names: string[];
  shapes: number[][];
  exp_avg: Float32Array[];
  exp_avg_sq: Float32Array[];
}

export class AdamW {
  /** Optimizer steps taken (the t in the bias correction). */
  step = 0;
  private m: tf.Variable[];
  private v: tf.Variable[];

  constructor(readonly vars: tf.Variable[], readonly opts: AdamWOptions) {
    // tidy frees the zerosLike temporaries (a variable keeps its own reference; tidy never disposes variables).
    this.m = tf.tidy(() => vars.map((x) => tf.variable(tf.zerosLike(x), false)));
    this.v = tf.tidy(() => vars.map((x) => tf.variable(tf.zerosLike(x), false)));
  }

  /** One update with `grads` (aligned with `vars`) at learning rate `lr`. Does not dispose `grads`. */
  apply(grads: tf.Tensor[], lr: number): void {
    if (grads.length !== this.vars.length) throw new Error(`AdamW.apply: ${grads.length} grads for ${this.vars.length} variables`);
    this.step += 1;
    const { adam_beta1: b1, adam_beta2: b2, adam_epsilon: eps, weight_decay: wd } = this.opts;
    const bc1 = 1 - Math.pow(b1, this.step);
    const bc2 = 1 - Math.pow(b2, this.step);
    tf.tidy(() => {
      this.vars.forEach((p, i) => {
        const g = grads[i];
        const m = this.m[i], v = this.v[i];
        m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
        v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2)));
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        // Decoupled decay, matrices only (norm weights and biases are 1-D and keep their scale).
        const decayed = wd > 0 && p.rank >= 2 ? tf.mul(p, 1 - lr * wd) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    });
  }

  /** The state to save (reads every moment back from the backend). */
  async state(): Promise<AdamWState> {
    const read = (xs: tf.Variable[]) => Promise.all(xs.map(async (x) => (await x.data()) as Float32Array));
    return {
      step: this.step,
      names: this.vars.map((x) => x.name),
      shapes: this.vars.map((x) => x.shape.slice()),
      exp_avg: await read(this.m),
      exp_avg_sq: await read(this.v),
    };
  }

  /** Restore a saved state; shapes must match the variables (names are informative only). */
  loadState(s: AdamWState): void {
    if (s.shapes.length !== this.vars.length) {
      throw new Error(`optimizer state has ${s.shapes.length} tensors, the model has ${this.vars.length} trainable variables`);
    }
    this.vars.forEach((x, i) => {
      if (s.shapes[i].join(',') !== x.shape.join(',')) {
        throw new Error(`optimizer state tensor ${i} (${s.names[i]}) has shape [${s.shapes[i]}], variable ${x.name} has [${x.shape}]`);
      }
      this.m[i].assign(tf.tensor(s.exp_avg[i], x.shape));
      this.v[i].assign(tf.tensor(s.exp_avg_sq[i], x.shape));
    });
    this.step = s.step;
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}

/** transformers' schedules: linear warmup over ceil(warmup_ratio * max_steps), then constant/linear/cosine. */
export function learningRateAt(
  step: number,
  c: { learning_rate: number; max_steps: number; warmup_ratio: number; lr_scheduler_type: 'constant' | 'linear' | 'cosine' },
): number {
  const warmup = Math.ceil(c.warmup_ratio * c.max_steps);
  if (step < warmup) return (c.learning_rate * step) / Math.max(1, warmup);
  if (c.lr_scheduler_type === 'constant') return c.learning_rate;
  const progress = (step - warmup) / Math.max(1, c.max_steps - warmup);
  if (c.lr_scheduler_type === 'linear') return c.learning_rate * Math.max(0, 1 - progress);
  return c.learning_rate * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}

/** Global L2 norm of a list of gradients (a sync point). NaN/Inf if any gradient holds one. */
export async function globalNorm(grads: tf.Tensor[]): Promise<number> {
  const sq = tf.tidy(() => tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
  const v = (await sq.data())[0];
  sq.dispose();
  return Math.sqrt(v);
}

/**
 * Scale `grads` so their global norm is at most `max_norm` (torch's clip_grad_norm_: factor
 * max_norm / (norm + 1e-6) when larger). Returns new tensors (the caller disposes both lists).
 */
export function clipByGlobalNorm(grads: tf.Tensor[], norm: number, max_norm: number): tf.Tensor[] {
  const coef = max_norm > 0 ? Math.min(1, max_norm / (norm + 1e-6)) : 1;
  return tf.tidy(() => grads.map((g) => (coef < 1 ? tf.mul(g, coef) : g.clone())));
}

/** Sums micro-batch gradients; `take()` hands over the sum (aligned with `vars`) and resets. */
export class GradAccumulator {
  private sum: (tf.Tensor | null)[];
  constructor(readonly vars: tf.Variable[]) {
    this.sum = vars.map(() => null);
  }

  /** Add one micro-batch's grads (as returned by tf.variableGrads); disposes them. */
  add(grads: tf.NamedTensorMap): void {
    this.vars.forEach((x, i) => {
      const g = grads[x.name];
      if (!g) return;
      const prev = this.sum[i];
      this.sum[i] = prev ? tf.tidy(() => tf.add(prev, g)) : g.clone();
      prev?.dispose();
    });
    tf.dispose(grads);
  }

  /** Add one micro-batch's grads aligned with `vars` (as DataParallel.valueAndGrads returns them); disposes them. */
  addList(grads: tf.Tensor[]): void {
    if (grads.length !== this.vars.length) throw new Error(`GradAccumulator.addList: ${grads.length} grads for ${this.vars.length} variables`);
    this.add(Object.fromEntries(this.vars.map((x, i) => [x.name, grads[i]])));
  }

  /** The summed grads (zeros for variables that got none). The caller owns and disposes them. */
  take(): tf.Tensor[] {
    const out = this.sum.map((g, i) => g ?? tf.zerosLike(this.vars[i]));
    this.sum = this.vars.map(() => null);
    return out;
  }

  dispose(): void {
    tf.dispose(this.sum.filter((g): g is tf.Tensor => g !== null));
    this.sum = this.vars.map(() => null);
  }
}

/**
 * Finish an optimizer step: take the accumulated grads, measure the global norm, clip, apply AdamW.
 * A NaN/Inf norm skips the update (the weights and moments stay as they were) and says so.
 */
export async function optimizerStep(
  opt: AdamW,
  acc: GradAccumulator,
  lr: number,
  max_grad_norm: number,
): Promise<{ grad_norm: number; skipped: boolean }> {
  const grads = acc.take();
  try {
    const grad_norm = await globalNorm(grads);
    if (!Number.isFinite(grad_norm)) return { grad_norm, skipped: true };
    const clipped = clipByGlobalNorm(grads, grad_norm, max_grad_norm);
    opt.apply(clipped, lr);
    tf.dispose(clipped);
    return { grad_norm, skipped: false };
  } finally {
    tf.dispose(grads);
  }
}

/** True when every value of every variable is finite (reads them back: used before writing weights). */
export async function allFinite(vars: tf.Variable[]): Promise<boolean> {
  for (const v of vars) {
    const d = (await v.data()) as Float32Array;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return false;
  }
  return true;
}
