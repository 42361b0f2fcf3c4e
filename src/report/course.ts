/**
 * The course run's report.html (offline plotly + danfojs tables, through src/report): the four metrics
 * before / after GRPO per split, reward curves and each sub-reward, exact match during training, the
 * per-behaviour table, and the function-name confusion after GRPO. Also `lineChart` (curves over steps) and
 * the shape of summary.json.
 *
 * Not here: what the metrics mean (src/verify/metrics.ts), how they are measured (src/eval/evaluate.ts) or the
 * generic HTML writer (src/report/html.ts).
 */
import { writeReport, type Section } from './html';
import { barChart, heatmapChart, type Figure } from './plots';
import { frame } from './tables';
import type { EvalReport } from '../verify/metrics';
import type { FourMetrics } from '../eval/evaluate';
import type { GRPOMetrics, SFTMetrics, TrainMetrics } from '../train/log';

/** What summary.json holds. */
export interface CourseSummary {
  run: string;
  seed: number;
  model: string;
  /** split -> { sft, grpo } four metrics. */
  metrics: Record<string, { sft: FourMetrics; grpo: FourMetrics }>;
  rows: Record<string, number>;
  sft_rows: number;
  grpo_prompts: number;
  grpo: { steps: number; mean_step_seconds: number; mean_tokens_per_second: number };
  phase_seconds: Record<string, number>;
}

/** Curves over training steps: one trace per metric key found in `history` (keys a line lacks are skipped). */
export function lineChart<M extends TrainMetrics>(title: string, history: readonly M[], keys: readonly (keyof M & string)[], yTitle = ''): Figure {
  return {
    data: keys
      .filter((k) => history.some((m) => typeof m[k] === 'number'))
      .map((k) => ({ type: 'scatter', mode: 'lines', name: k, x: history.map((m) => m.step), y: history.map((m) => m[k]) })),
    layout: { title: { text: title }, height: 360, margin: { l: 60, r: 20, t: 50, b: 50 }, xaxis: { title: { text: 'step' } }, yaxis: { title: { text: yTitle } } },
  };
}

export function writeCourseReport(
  file: string,
  s: CourseSummary,
  d: { sft_history: SFTMetrics[]; grpo_history: GRPOMetrics[]; before: Record<string, EvalReport>; after: Record<string, EvalReport> },
): string {
  const metricNames = ['response_validity', 'function_name_accuracy', 'schema_match', 'exact_match'] as const;
  const sections: Section[] = [
    { text: `Run ${s.run}, seed ${s.seed}, model ${s.model}. SFT on ${s.sft_rows} curated rows; GRPO for ${s.grpo.steps} steps over ${s.grpo_prompts} prompts.` },
    { heading: 'The four metrics, before and after GRPO' },
  ];
  for (const [split, m] of Object.entries(s.metrics)) {
    sections.push({
      figure: barChart({
        title: `${split} (${s.rows[split]} rows)`,
        x: [...metricNames],
        series: [{ name: 'after SFT', y: metricNames.map((k) => m.sft[k]) }, { name: 'after GRPO', y: metricNames.map((k) => m.grpo[k]) }],
        yTitle: 'fraction of rows',
      }),
    });
    sections.push({ table: frame(metricNames.map((k) => ({ metric: k, sft: m.sft[k], grpo: m.grpo[k], change: round(m.grpo[k] - m.sft[k]) }))), caption: split });
  }
  const rewardKeys = Object.keys(d.grpo_history[0] ?? {}).filter((k): k is `rewards/${string}/mean` => k.startsWith('rewards/') && k.endsWith('/mean'));
  sections.push(
    { heading: 'GRPO training curves' },
    { figure: lineChart('reward (mean over completions) and exact match of the samples', d.grpo_history, ['reward', ...rewardKeys, 'exact_match']) },
    { figure: lineChart('zero-signal groups, clipped completions', d.grpo_history, ['frac_reward_zero_std', 'completions/clipped_ratio']) },
    { figure: lineChart('completion length (tokens)', d.grpo_history, ['completions/mean_length']) },
    { figure: lineChart('grad norm, entropy, KL', d.grpo_history, ['grad_norm', 'entropy', 'kl']) },
    { heading: 'SFT loss' },
    { figure: lineChart('SFT: completion-token cross-entropy', d.sft_history, ['loss']) },
    { heading: 'Per behaviour (exact match)' },
  );
  for (const split of Object.keys(d.after)) {
    const b = d.before[split].by_behavior, a = d.after[split].by_behavior;
    const rows = Object.keys(a).sort().map((k) => ({ behavior: k, n: a[k].n, sft: round(b[k]?.exact_match ?? NaN), grpo: round(a[k].exact_match) }));
    sections.push({ table: frame(rows), caption: split });
  }
  sections.push({ heading: 'Per tool (exact match)' });
  for (const split of Object.keys(d.after)) {
    const b = d.before[split].by_tool, a = d.after[split].by_tool;
    const rows = Object.keys(a).sort().map((k) => ({ tool: k, n: a[k].n, sft: round(b[k]?.exact_match ?? NaN), grpo: round(a[k].exact_match) }));
    sections.push({ table: frame(rows), caption: split });
  }
  const conf = d.after.test?.confusion;
  if (conf) {
    sections.push(
      { heading: 'Function-name confusion on test, after GRPO' },
      { figure: heatmapChart({ title: 'gold (rows) vs predicted (columns)', x: conf.predicted, y: conf.gold, z: conf.gold.map((g) => conf.predicted.map((p) => conf.counts[g]?.[p] ?? 0)) }) },
    );
  }
  sections.push(
    { heading: 'Phase times (seconds)' },
    { table: frame(Object.entries(s.phase_seconds).map(([phase, seconds]) => ({ phase, seconds: round(seconds) }))) },
    { text: `GRPO: ${round(s.grpo.mean_step_seconds)} s per step, ${round(s.grpo.mean_tokens_per_second)} sampled tokens per second of step.` },
  );
  return writeReport(file, `toolcall-grpo course run: ${s.run}`, sections);
}

function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1000) / 1000 : NaN;
}
