/**
 * Group-relative advantages, as TRL's GRPOTrainer computes them, on plain arrays.
 *
 * Rewards arrive flat, `num_generations` consecutive completions per prompt: [p0g0, p0g1, ..., p1g0, ...].
 * advantage = (reward - group mean) / (std + 1e-4), std being the group's (`scale_rewards: 'group'`), the whole
 * batch's ('batch') or none at all ('none', Dr. GRPO). std is torch's default, the unbiased (n - 1) one.
 *
 * Not here: the rewards themselves (src/verify/reward.ts) and the loss (objectives.ts).
 */

export type ScaleRewards = 'group' | 'batch' | 'none';

export interface Advantages {
  /** [B*G] one per completion. */
  advantages: number[];
  /** [B] per-group mean reward. */
  mean_grouped_rewards: number[];
  /** [B] per-group (unbiased) std of rewards. */
  std_grouped_rewards: number[];
  /** [B] true where every completion in the group got the same reward: no learning signal. */
  is_std_zero: boolean[];
  /** Share of groups with zero reward spread (TRL's `frac_reward_zero_std`). */
  frac_reward_zero_std: number;
}

/** Unbiased standard deviation (torch.std's default); 0 for fewer than two values. */
export function std(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / (xs.length - 1));
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Split a flat array into groups of `num_generations`. */
export function groups<T>(xs: readonly T[], num_generations: number): T[][] {
  if (num_generations < 1 || xs.length % num_generations !== 0) {
    throw new RangeError(`groups: length ${xs.length} is not a multiple of num_generations=${num_generations}`);
  }
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += num_generations) out.push(xs.slice(i, i + num_generations));
  return out;
}

/** Group-relative advantages (TRL's `_generate_and_score_completions`, on arrays). */
export function computeAdvantages(rewards: readonly number[], num_generations: number, scale_rewards: ScaleRewards): Advantages {
  const gs = groups(rewards, num_generations);
  const mean_grouped_rewards = gs.map(mean);
  const std_grouped_rewards = gs.map(std);
  const is_std_zero = std_grouped_rewards.map((s) => Math.abs(s) < 1e-8);
  const batchStd = std(rewards);
  const advantages = rewards.map((r, i) => {
    const g = Math.floor(i / num_generations);
    const centred = r - mean_grouped_rewards[g];
    if (scale_rewards === 'none') return centred;
    const s = scale_rewards === 'group' ? std_grouped_rewards[g] : batchStd;
    return centred / (s + 1e-4);
  });
  return {
    advantages,
    mean_grouped_rewards,
    std_grouped_rewards,
    is_std_zero,
    frac_reward_zero_std: mean(is_std_zero.map((z) => (z ? 1 : 0))),
  };
}

/**
 * Groups with no signal judged on exact match: every completion exact, or none. Partial credit can give an
 * all-wrong group a reward spread (one call parses, another also names the tool) and so a "phantom" gradient
 * that pushes between two wrong answers; `skip_zero_std_groups` drops such groups. [B] booleans.
 */
export function zeroSignalGroups(exact: readonly boolean[], num_generations: number): boolean[] {
  return groups(exact, num_generations).map((g) => g.every((e) => e === g[0]));
}
