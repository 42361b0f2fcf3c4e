/**
 * Where a GRPO step's prompts come from. The step asks a `PromptSampler` for rows (`next(n)`), so the source is
 * one small replaceable piece: the default walks the prompt pool in seeded, epoch-by-epoch shuffled order;
 * another may filter, weight or draw more (dynamic sampling, a pass-rate curriculum) behind the same two calls.
 * Its position goes into every checkpoint (trainer_state.json: `data_cursor`, plus `sampler_state` for a sampler
 * that needs more), so a resumed run draws exactly what the uninterrupted one would have.
 *
 * Not here: the data order itself (batch.ts `DataOrder`, shared with SFT) or what the step does with the rows.
 */
import { DataOrder, type TrainRow } from './batch';

/** The part of a sampler's position that checkpoints save. */
export interface SamplerPosition {
  /** Prompts drawn so far (the next prompt's index in the sampler's order). */
  data_cursor: number;
  /** Anything else a sampler needs to continue (JSON); absent for the default one. */
  sampler_state?: unknown;
}

export interface PromptSampler {
  /** The next `n` prompts (advances the position). */
  next(n: number): TrainRow[];
  /** Where the sampler stands, to save in a checkpoint. */
  position(): SamplerPosition;
}

/**
 * The default: every prompt of the pool once per epoch, in an order shuffled per epoch from `seed` (the same
 * order as before samplers existed: DataOrder salted 'grpo'), starting at `data_cursor`.
 */
export class EpochSampler implements PromptSampler {
  private readonly order: DataOrder;
  private cursor: number;

  constructor(private readonly rows: readonly TrainRow[], seed: number, from: SamplerPosition = { data_cursor: 0 }) {
    if (rows.length === 0) throw new Error('GRPO: the prompt pool is empty (no rows to sample prompts from)');
    this.order = new DataOrder(rows.length, seed, 'grpo');
    this.cursor = from.data_cursor;
  }

  next(n: number): TrainRow[] {
    const idx = this.order.take(this.cursor, n);
    this.cursor += n;
    return idx.map((i) => this.rows[i]);
  }

  position(): SamplerPosition {
    return { data_cursor: this.cursor };
  }
}
