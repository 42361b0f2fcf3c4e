/**
 * The course run's report.html (offline plotly + danfojs tables, through src/report): the four metrics after
 * SFT, after GRPO and for the control (SFT continued on the pool's gold calls) per split, the SFT validation
 * curve that picked GRPO's start, GRPO's pool pass rate / zero-spread / prompts-drawn curves, reward curves
 * and each sub-reward, the per-behaviour and per-tool tables (heldout_tools: tool right vs arguments right),
 * and the function-name confusion after GRPO. Also `lineChart` (curves over steps) and
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
  /** split -> { sft, grpo, control } four metrics (control: with --control). */
  metrics: Record<string, { sft: FourMetrics; grpo: FourMetrics; control?: FourMetrics }>;
  rows: Record<string, number>;
  sft_rows: number;
  grpo_prompts: number;
  /** How GRPO's pool rows are labelled: outcome (no gold call) or gold. */
  pool_labels?: 'outcome' | 'gold';
  /** SFT's validation evaluations [step, exact match] and the step GRPO started from. */
  sft?: { evals: [number, number][]; best: { step: number; score: number } | null; validation_rows: number };
  grpo: {
    steps: number;
    mean_step_seconds: number;
    mean_tokens_per_second: number;
    /** Exact match of the sampled completions (the pool's pass rate), mean of the first / last 10 logged steps. */
    pool_exact_first10?: number;
    pool_exact_last10?: number;
  };
  /** The control's steps and gold rows, or null without --control. */
  control?: { steps: number; rows: number } | null;
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
  d: {
    sft_history: SFTMetrics[];
    grpo_history: GRPOMetrics[];
    before: Record<string, EvalReport>;
    after: Record<string, EvalReport>;
    /** The control's reports (--control), else null. */
    control?: Record<string, EvalReport> | null;
  },
): string {
  const metricNames = ['response_validity', 'function_name_accuracy', 'schema_match', 'exact_match'] as const;
  const ctl = d.control ?? null;
  const sections: Section[] = [
    {
      text: `Run ${s.run}, seed ${s.seed}, model ${s.model}. SFT on ${s.sft_rows} demonstration rows` +
        (s.sft?.best ? ` (GRPO starts from step ${s.sft.best.step}, the best validation exact match, ${round(s.sft.best.score)} on ${s.sft.validation_rows} rows)` : '') +
        `; GRPO for ${s.grpo.steps} steps over a pool of ${s.grpo_prompts} ${s.pool_labels === 'outcome' ? 'outcome-labelled requests (no gold call: the reward checks what the call returns)' : 'requests'}.` +
        (s.control ? ` The control is SFT continued from the same start on the gold calls of the SFT rows and the pool (${s.control.rows} rows) for ${s.control.steps} steps: imitation with more information than GRPO had.` : ''),
    },
    { heading: `The four metrics: after SFT, after GRPO${ctl ? ', and the control' : ''}` },
  ];
  for (const [split, m] of Object.entries(s.metrics)) {
    const series = [{ name: 'after SFT', y: metricNames.map((k) => m.sft[k]) }, { name: 'after GRPO', y: metricNames.map((k) => m.grpo[k]) }];
    if (m.control) series.push({ name: 'control (SFT on the pool\'s gold)', y: metricNames.map((k) => m.control![k]) });
    sections.push({ figure: barChart({ title: `${split} (${s.rows[split]} rows)`, x: [...metricNames], series, yTitle: 'fraction of rows' }) });
    sections.push({
      table: frame(metricNames.map((k) => ({ metric: k, sft: m.sft[k], grpo: m.grpo[k], change: round(m.grpo[k] - m.sft[k]), ...(m.control ? { control: m.control[k] } : {}) }))),
      caption: split,
    });
  }
  if (s.sft?.evals.length) {
    const ev = s.sft.evals;
    sections.push(
      { heading: 'Which SFT checkpoint GRPO starts from' },
      {
        figure: {
          data: [{ type: 'scatter', mode: 'lines+markers', name: 'validation exact match', x: ev.map((e) => e[0]), y: ev.map((e) => e[1]) }],
          layout: { title: { text: 'SFT: greedy exact match on validation (templates SFT never sees)' }, height: 320, margin: { l: 60, r: 20, t: 50, b: 50 }, xaxis: { title: { text: 'SFT step' } }, yaxis: { title: { text: 'exact match' } } },
        },
      },
    );
  }
  const rewardKeys = Object.keys(d.grpo_history[0] ?? {}).filter((k): k is `rewards/${string}/mean` => k.startsWith('rewards/') && k.endsWith('/mean'));
  sections.push(
    { heading: 'GRPO training curves' },
    { figure: lineChart("the pool's pass rate (exact match of every sampled completion) and groups with no exact-match spread", d.grpo_history, ['exact_match', 'frac_zero_exact_spread']) },
    { figure: lineChart('prompts drawn per step (dynamic sampling draws more until the step is full of groups that teach)', d.grpo_history, ['num_prompts_drawn']) },
    { figure: lineChart('reward (mean over the completions trained on)', d.grpo_history, ['reward', ...rewardKeys]) },
    { figure: lineChart('zero-signal groups, clipped completions', d.grpo_history, ['frac_reward_zero_std', 'completions/clipped_ratio']) },
    { figure: lineChart('completion length (tokens)', d.grpo_history, ['completions/mean_length']) },
    { figure: lineChart('grad norm, entropy, KL', d.grpo_history, ['grad_norm', 'entropy', 'kl']) },
    { heading: 'SFT loss' },
    { figure: lineChart('SFT: completion-token cross-entropy', d.sft_history, ['loss']) },
    { heading: 'Per behaviour (exact match)' },
  );
  for (const split of Object.keys(d.after)) {
    const b = d.before[split].by_behavior, a = d.after[split].by_behavior;
    const c = ctl?.[split]?.by_behavior;
    const rows = Object.keys(a).sort().map((k) => ({ behavior: k, n: a[k].n, sft: round(b[k]?.exact_match ?? NaN), grpo: round(a[k].exact_match), ...(c ? { control: round(c[k]?.exact_match ?? NaN) } : {}) }));
    sections.push({ table: frame(rows), caption: split });
  }
  sections.push({ heading: 'Per tool: tool right (function-name accuracy) and arguments right (exact match)' });
  for (const split of Object.keys(d.after)) {
    const b = d.before[split].by_tool, a = d.after[split].by_tool;
    const c = ctl?.[split]?.by_tool;
    const rows = Object.keys(a).sort().map((k) => ({
      tool: k, n: a[k].n,
      'tool right sft': round(b[k]?.function_name_accuracy ?? NaN), 'tool right grpo': round(a[k].function_name_accuracy),
      'exact sft': round(b[k]?.exact_match ?? NaN), 'exact grpo': round(a[k].exact_match),
      ...(c ? { 'exact control': round(c[k]?.exact_match ?? NaN) } : {}),
    }));
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
