/**
 * `npx tsx src/run.ts course [--run NAME] [--seed N] [--model DIR] [--sft.key=value] [--grpo.key=value]`
 *
 * The whole course in one command, on the tiny default model (or a real Qwen2 checkpoint with --model):
 *
 *   1. synthesize data        train / test / heldout_tools JSONL
 *   2. tiny base model        models/tiny-base: pretrained by `pretrain` on a synthetic financial corpus (its
 *                             tokenizer included); --from_scratch builds a random one here instead, as
 *                             --model DIR uses a real checkpoint
 *   3. SFT                    a small curated subset of train (full fine-tuning; LoRA with --model)
 *   4. evaluate               greedy, the four metrics on test and heldout_tools
 *   5. GRPO                   the rest of train as the prompt pool, LoRA on the SFT model
 *   6. evaluate               same splits, same greedy decoding
 *   7. report                 summary.json, predictions, report.html
 *
 * Everything goes to outputs/<run>/: config.json (resolved), data/, model/ (tiny), sft/, grpo/ (metrics.jsonl,
 * checkpoint-*), predictions/, summary.json, report.html. Each phase prints its wall time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, flagsHelp, parseFlags, type FlagSpec } from '../util/args';
import { OUTPUTS_DIR, ROOT, resolveUserPath } from '../util/paths';
import { fmtTime } from '../util/progress';
import { initBackend } from '../model/backend';
import { makeTinyModel } from '../model/tiny';
import { synthesize, writeSplits, type Row } from '../env/synth';
import { GRPO_DEFAULTS, SFT_DEFAULTS, configFlagSpec, configHelp, formatConfig, grpoBatchShape, resolveConfig, type GRPOConfig, type SFTConfig } from '../train/config';
import { curatedSubset } from '../train/sft';
import { grpoPhase, loadStart, sftPhase, type GRPOStart } from '../train/phases';
import { evaluateModel, fourMetrics, writePredictions } from '../train/evaluate';
import { DataParallel, numProcessesFor } from '../train/parallel';
import { readMetrics, writeAtomic } from '../train/log';
import { writeCourseReport, type CourseSummary } from '../train/course_report';
import type { EvalReport } from '../verify/metrics';

const FLAGS: Record<string, FlagSpec> = {
  run: { type: 'string', help: 'run name: outputs/<run>/ (default course-seed<seed>)' },
  out: { type: 'string', help: 'write the run here instead of outputs/<run>/' },
  seed: { type: 'int', help: 'one seed for data, model init, SFT and GRPO', default: 0 },
  n: { type: 'int', help: 'train rows to synthesize (SFT takes sft.sft_subset_size of them, GRPO the rest)', default: 3000 },
  model: { type: 'string', help: 'a real Qwen2 checkpoint dir (its tokenizer + chat template; LoRA only) instead of the tiny model' },
  base: { type: 'string', help: 'the tiny base model dir (made by `pretrain`)', default: 'models/tiny-base' },
  from_scratch: { type: 'bool', help: 'train a BPE on this run\'s train split and start SFT from random weights, not from --base', default: false },
  eval_limit: { type: 'int', help: 'evaluate on the first N rows of each split (0 = all)', default: 0 },
  backend: { type: 'string', help: 'auto | wasm | cpu | tensorflow | webgpu (default: $TFJS_BACKEND, else auto)' },
};

export const help = `The whole course: data -> tiny base model -> SFT -> eval -> GRPO -> eval -> report, into outputs/<run>/.

usage: npx tsx src/run.ts course [--run NAME] [--seed N] [--base DIR | --from_scratch | --model DIR] [--sft.key=value ...] [--grpo.key=value ...]

${flagsHelp(FLAGS)}

SFT keys (prefix --sft.):
${configHelp(SFT_DEFAULTS, 'sft.')}

GRPO keys (prefix --grpo.):
${configHelp(GRPO_DEFAULTS, 'grpo.')}`;

/** The course's phase configs for the tiny model (tuned; see the closing note of the training issue). */
// SFT starts from the pretrained tiny base: on an earlier 1500-step base, 1e-3 (test exact 0.64 after 900 steps)
// beat SFT_DEFAULTS' 3e-3 (0.61), which is tuned for a random init and stays the rate with --from_scratch.
export const COURSE_SFT: SFTConfig = { ...SFT_DEFAULTS, learning_rate: 1e-3 };
export const COURSE_GRPO: GRPOConfig = { ...GRPO_DEFAULTS };

export async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { ...FLAGS, ...configFlagSpec(SFT_DEFAULTS, 'sft.'), ...configFlagSpec(GRPO_DEFAULTS, 'grpo.') });
  const seed = flags.seed as number;
  const run = (flags.run as string | undefined) ?? `course-seed${seed}`;
  const out = typeof flags.out === 'string' ? resolveUserPath(flags.out) : path.join(OUTPUTS_DIR, run);
  const real = typeof flags.model === 'string' ? resolveUserPath(flags.model) : null;
  if (real && !fs.existsSync(path.join(real, 'config.json'))) throw new ArgError(`--model ${real}: no config.json there`);
  const fromScratch = !real && (flags.from_scratch as boolean);
  const base = real || fromScratch ? null : path.resolve(ROOT, flags.base as string);
  if (base && !fs.existsSync(path.join(base, 'config.json'))) {
    throw new ArgError(`--base ${base}: no config.json there (make it with \`npx tsx src/run.ts pretrain --out ${flags.base}\`, or pass --from_scratch)`);
  }
  const sft = resolveConfig({ ...COURSE_SFT, seed, output_dir: path.join(out, 'sft') }, flags, 'sft.');
  const grpo = resolveConfig({ ...COURSE_GRPO, seed, output_dir: path.join(out, 'grpo') }, flags, 'grpo.');
  if (real && !('sft.learning_rate' in flags)) sft.learning_rate = 2e-4; // LoRA on a pretrained model
  if (fromScratch && !('sft.learning_rate' in flags)) sft.learning_rate = SFT_DEFAULTS.learning_rate; // random init
  if (real && !('grpo.learning_rate' in flags)) grpo.learning_rate = 5e-5;
  const evalLimit = flags.eval_limit as number;

  const modelName = real ?? base ?? '(tiny, random, built here)';
  console.log(formatConfig('course', { run, seed, n: flags.n, model: modelName, eval_limit: evalLimit }));
  console.log(formatConfig('sft config', sft));
  console.log(formatConfig('grpo config', grpo));
  fs.mkdirSync(out, { recursive: true });
  writeAtomic(path.join(out, 'config.json'), JSON.stringify({ run, seed, n: flags.n, model: real, base, from_scratch: fromScratch, eval_limit: evalLimit, sft, grpo }, null, 2) + '\n');
  await initBackend(flags.backend as string);

  const times: Record<string, number> = {};
  const phase = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    console.log(`\n== ${name}`);
    const r = await f();
    times[name] = (Date.now() - t0) / 1000;
    console.log(`== ${name}: ${fmtTime(times[name])}`);
    return r;
  };

  // 1. Data.
  const splits = await phase('synthesize', async () => {
    const s = synthesize({ seed, n: flags.n as number });
    writeSplits(s, path.join(out, 'data'));
    console.log(`train ${s.train.length}, test ${s.test.length}, heldout_tools ${s.heldout_tools.length} rows -> ${path.join(out, 'data')}`);
    return s;
  });
  const evalSplits: Record<string, Row[]> = {
    test: evalLimit ? splits.test.slice(0, evalLimit) : splits.test,
    heldout_tools: evalLimit ? splits.heldout_tools.slice(0, evalLimit) : splits.heldout_tools,
  };

  // 2. The tiny base model (pretrained, or random with --from_scratch), or the given checkpoint.
  const modelDir = real ?? base ?? path.join(out, 'model');
  if (fromScratch) {
    await phase('tokenizer + tiny model', async () => {
      const info = await makeTinyModel(modelDir, { seed, rows: splits.train });
      console.log(`tiny Qwen2: ${info.num_parameters} parameters, vocab ${info.tokenizer.vocab_size}, random weights -> ${modelDir}`);
    });
  } else if (base) {
    const pc = path.join(base, 'pretrain_config.json');
    const p = fs.existsSync(pc) ? (JSON.parse(fs.readFileSync(pc, 'utf8')) as { max_steps?: number; seq_len?: number; per_device_train_batch_size?: number }) : null;
    console.log(`\n== tiny base model: ${base}` + (p ? ` (pretrained ${p.max_steps} steps x ${p.per_device_train_batch_size} x ${p.seq_len} tokens)` : ''));
  }

  // 3. SFT on the curated subset; GRPO gets the rest of train.
  const sftRows = curatedSubset(splits.train, sft.sft_subset_size, seed);
  const sftIds = new Set(sftRows.map((r) => r.id));
  const grpoRows = splits.train.filter((r) => !sftIds.has(r.id));
  const sftRes = await phase('sft', async () => {
    console.log(`sft: ${sftRows.length} curated rows, ${sft.max_steps} steps x ${sft.per_device_train_batch_size * sft.gradient_accumulation_steps} rows (${real ? 'LoRA' : 'all weights'})`);
    return sftPhase({ modelDir, outDir: sft.output_dir, rows: sftRows, config: sft, lora: real ? { r: grpo.lora_r, lora_alpha: grpo.lora_alpha, lora_dropout: 0 } : null });
  });
  const start: GRPOStart = sftRes.kind === 'full' ? { base_model: sftRes.outDir, sft_adapter: null } : { base_model: modelDir, sft_adapter: sftRes.outDir };

  // 4. Evaluate the SFT model.
  const predDir = path.join(out, 'predictions');
  fs.mkdirSync(predDir, { recursive: true });
  const before = await phase('evaluate sft', async () => {
    const { model, tokenizer } = await loadStart(start);
    try {
      return await evalAll(model, tokenizer, evalSplits, predDir, 'sft', grpo.num_processes);
    } finally {
      model.dispose();
    }
  });

  // 5. GRPO on the rest of train.
  const shape = grpoBatchShape(grpo);
  const g = await phase('grpo', async () => {
    console.log(`grpo: ${grpoRows.length} prompts in the pool; ${grpo.max_steps} steps x ${shape.prompts_per_step} prompts x ${grpo.num_generations} completions`);
    return grpoPhase({ start, runDir: grpo.output_dir, rows: grpoRows, config: grpo, keepModel: true });
  });

  // 6. Evaluate the GRPO model (the policy as trained: base + adapter).
  const after = await phase('evaluate grpo', async () => {
    try {
      return await evalAll(g.model!, g.tokenizer, evalSplits, predDir, 'grpo', grpo.num_processes);
    } finally {
      g.model!.dispose();
    }
  });

  // 7. Summary + report.
  await phase('report', async () => {
    const history = readMetrics(path.join(grpo.output_dir, 'metrics.jsonl'));
    const stepSecs = history.map((m) => m.step_seconds as number).filter(Number.isFinite);
    const tps = history.map((m) => m.tokens_per_second as number).filter(Number.isFinite);
    const summary: CourseSummary = {
      run,
      seed,
      model: real ?? (base ? `tiny base ${path.relative(ROOT, base)}` : 'tiny from scratch'),
      metrics: Object.fromEntries(Object.keys(evalSplits).map((s) => [s, { sft: fourMetrics(before[s]), grpo: fourMetrics(after[s]) }])),
      rows: Object.fromEntries(Object.entries(evalSplits).map(([s, r]) => [s, r.length])),
      sft_rows: sftRows.length,
      grpo_prompts: grpoRows.length,
      grpo: {
        steps: g.steps,
        mean_step_seconds: stepSecs.reduce((a, b) => a + b, 0) / Math.max(1, stepSecs.length),
        mean_tokens_per_second: tps.reduce((a, b) => a + b, 0) / Math.max(1, tps.length),
      },
      phase_seconds: times,
    };
    writeAtomic(path.join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    const file = writeCourseReport(path.join(out, 'report.html'), summary, {
      sft_history: readMetrics(path.join(sft.output_dir, 'metrics.jsonl')),
      grpo_history: history,
      before,
      after,
    });
    console.log(`summary -> ${path.join(out, 'summary.json')}\nreport  -> ${file}`);
    printSummary(summary);
  });
  console.log('\nphase times: ' + Object.entries(times).map(([k, v]) => `${k} ${fmtTime(v)}`).join(', '));
  console.log(`total ${fmtTime(Object.values(times).reduce((a, b) => a + b, 0))}`);
  return 0;
}

async function evalAll(
  model: Parameters<typeof evaluateModel>[0],
  tok: Parameters<typeof evaluateModel>[1],
  splits: Record<string, Row[]>,
  predDir: string,
  tag: string,
  num_processes: number,
): Promise<Record<string, EvalReport>> {
  const out: Record<string, EvalReport> = {};
  const dp = await DataParallel.start(model, numProcessesFor(num_processes));
  try {
    for (const [name, rows] of Object.entries(splits)) {
      const r = await evaluateModel(model, tok, rows, { parallel: dp.size > 1 ? dp : null });
      writePredictions(path.join(predDir, `${tag}_${name}.jsonl`), rows, r.predictions);
      out[name] = r.report;
      const m = fourMetrics(r.report);
      console.log(`${tag} ${name.padEnd(14)} ${Object.entries(m).map(([k, v]) => `${k} ${v.toFixed(3)}`).join('  ')}  (${r.seconds.toFixed(1)}s)`);
    }
  } finally {
    await dp.close();
  }
  return out;
}

function printSummary(s: CourseSummary): void {
  console.log('\nsplit           metric                   sft     grpo    change');
  for (const [split, m] of Object.entries(s.metrics)) {
    for (const k of Object.keys(m.sft) as (keyof typeof m.sft)[]) {
      const d = m.grpo[k] - m.sft[k];
      console.log(`${split.padEnd(15)} ${k.padEnd(24)} ${m.sft[k].toFixed(3)}   ${m.grpo[k].toFixed(3)}   ${d >= 0 ? '+' : ''}${d.toFixed(3)}`);
    }
  }
}
