/**
 * `npx tsx src/run.ts course [--run NAME] [--seed N] [--model DIR] [--sft.key=value] [--grpo.key=value]`
 *
 * The whole course in one command, on the tiny default model (or a real Qwen2 checkpoint with --model):
 *
 *   1. synthesize data        train / test / heldout_tools JSONL
 *   2. tiny base model        models/tiny-base: pretrained by `pretrain` on a synthetic financial corpus (its
 *                             tokenizer included); --from_scratch builds a random one here instead, as
 *                             --model DIR uses a real checkpoint
 *   3. SFT                    the demonstration rows of train (full fine-tuning; LoRA with --model); every
 *                             sft.eval_steps the validation split (templates SFT never sees) is scored and the
 *                             best checkpoint is kept (load_best_model_at_end): GRPO starts from it
 *   4. evaluate               greedy, the four metrics on test and heldout_tools
 *   5. GRPO                   the rest of train as the prompt pool, outcome-labelled by default (the request,
 *                             the right action and its result: no gold call), LoRA on the SFT model
 *   6. evaluate               same splits, same greedy decoding
 *   7. control                (--control, the default) SFT continued from the same start on the GOLD calls of
 *                             the SFT rows and of every pool row, for as many steps as GRPO ran: did
 *                             reinforcement beat plain imitation of the same requests?
 *   8. report                 summary.json, predictions, report.html
 *
 * Everything goes to outputs/<run>/: config.json (resolved), data/, model/ (tiny), sft/, grpo/ (metrics.jsonl,
 * checkpoint-*), control/, predictions/, summary.json, report.html. Each phase prints its wall time.
 *
 * The configs come from one resolution (src/train/config.ts): the preset (tiny-base, tiny-scratch with
 * --from_scratch, checkpoint-lora with --model), the run's seed and folders, then --sft.* / --grpo.* flags.
 * `train --algo sft --preset P` resolves SFT the same way, so it reproduces this command's SFT phase.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, flagsHelp, parseFlags, type FlagSpec } from '../util/args';
import { OUTPUTS_DIR, ROOT, resolveUserPath } from '../util/paths';
import { writeJson } from '../util/files';
import { fmtTime } from '../util/progress';
import { initBackend } from '../model/backend';
import { makeTinyModel } from '../model/tiny';
import { synthesize, writeSplits, type Row } from '../env/synth';
import {
  PRESETS, PRESET_NAMES, configFlagSpec, configHelp, formatConfig, formatResolved, grpoBatchShape, presetsHelp, resolve,
  type GRPOConfig, type PresetName, type Resolved, type SFTConfig,
} from '../train/config';
import { demonstrationSubset } from '../train/sft';
import { outcomeLabelled, type TrainRow } from '../train/batch';
import { REWARD_COLUMNS } from '../verify/reward';
import { grpoPhase, loadStart, sftPhase, type GRPOStart } from '../train/phases';
import { DataParallel, numProcessesFor } from '../train/parallel';
import { isGRPOMetrics, isSFTMetrics, readMetrics } from '../train/log';
import { evaluateModel, exactMatchOn, fourMetrics, writePredictions } from '../eval/evaluate';
import { mean } from '../train/advantage';
import { loadMergedModel, resolveRunModel } from '../train/runs';
import { ChatTokenizer } from '../model/tokenizer';
import { writeCourseReport, type CourseSummary } from '../report/course';
import type { EvalReport } from '../verify/metrics';

const FLAGS = {
  run: { type: 'string', help: 'run name: outputs/<run>/ (default course-seed<seed>)' },
  out: { type: 'string', help: 'write the run here instead of outputs/<run>/' },
  seed: { type: 'int', help: 'one seed for data, model init, SFT and GRPO', default: 0 },
  n: { type: 'int', help: 'train rows to synthesize (SFT takes its demonstration rows, GRPO the rest)', default: 3000 },
  pool_labels: { type: 'string', help: "GRPO's pool rows: outcome (request + right action + its result, no gold call) or gold (with the gold call)", choices: ['outcome', 'gold'], default: 'outcome' },
  control: { type: 'bool', help: 'also train the control: SFT continued on the gold calls of the SFT rows and the pool, as many steps as GRPO', default: true },
  control_steps: { type: 'int', help: 'optimizer steps of the control (0 = grpo.max_steps)', default: 0 },
  val_limit: { type: 'int', help: "validation rows scored at each of SFT's eval_steps (0 = all)", default: 150 },
  preset: { type: 'string', help: 'starting point (default: checkpoint-lora with --model, tiny-scratch with --from_scratch, else tiny-base)', choices: PRESET_NAMES },
  model: { type: 'string', help: 'a real Qwen2 checkpoint dir (its tokenizer + chat template; LoRA only) instead of the tiny model: preset checkpoint-lora' },
  base: { type: 'string', help: 'the pretrained tiny base model dir (made by `pretrain`; default models/tiny-base in the project)' },
  from_scratch: { type: 'bool', help: 'train a BPE on this run\'s train split and start SFT from random weights, not from --base: preset tiny-scratch', default: false },
  eval_limit: { type: 'int', help: 'evaluate on the first N rows of each split (0 = all)', default: 0 },
  backend: { type: 'string', help: 'auto | wasm | cpu | tensorflow | webgpu (default: $TFJS_BACKEND, else auto)' },
} satisfies Record<string, FlagSpec>;

export const help = `The whole course: data -> tiny base model -> SFT -> eval -> GRPO -> eval -> report, into outputs/<run>/.

usage: npx tsx src/run.ts course [--run NAME] [--seed N] [--base DIR | --from_scratch | --model DIR] [--sft.key=value ...] [--grpo.key=value ...]

${flagsHelp(FLAGS)}

Presets (what differs from the defaults below is listed with each key):
${presetsHelp()}

SFT keys (prefix --sft.):
${configHelp('sft', 'sft.')}

GRPO keys (prefix --grpo.):
${configHelp('grpo', 'grpo.')}`;

/** The course's resolved settings: the run, where the model comes from, and both phases' configs. */
export interface CourseSetup {
  run: string;
  seed: number;
  out: string;
  preset: PresetName;
  /** --model DIR (preset checkpoint-lora), else null. */
  real: string | null;
  /** The pretrained tiny base (preset tiny-base), else null. */
  base: string | null;
  sft: Resolved<SFTConfig>;
  grpo: Resolved<GRPOConfig>;
  /**
   * The control's config (--control), else null: the resolved SFT config with what the control changes
   * (control/ as its folder, --control_steps or grpo.max_steps steps, no validation, no best-checkpoint pick).
   */
  control: SFTConfig | null;
}

/** Parse the course's flags and resolve both phases' configs (no file is touched). */
export function resolveCourse(argv: string[]): { setup: CourseSetup; flags: ReturnType<typeof parseCourseFlags> } {
  const flags = parseCourseFlags(argv);
  const seed = flags.seed;
  const run = flags.run ?? `course-seed${seed}`;
  const out = flags.out !== undefined ? resolveUserPath(flags.out) : path.join(OUTPUTS_DIR, run);
  const real = flags.model !== undefined ? resolveUserPath(flags.model) : null;
  const implied: PresetName = real ? 'checkpoint-lora' : flags.from_scratch ? 'tiny-scratch' : 'tiny-base';
  const preset = (flags.preset as PresetName | undefined) ?? implied;
  if (flags.preset !== undefined && flags.preset !== implied && (real || flags.from_scratch)) {
    throw new ArgError(`--preset ${flags.preset} contradicts ${real ? '--model (preset checkpoint-lora)' : '--from_scratch (preset tiny-scratch)'}`);
  }
  const kind = PRESETS[preset].model;
  if (kind === 'checkpoint' && !real) throw new ArgError(`--preset ${preset} needs --model DIR (a Qwen2 checkpoint)`);
  if (real && !fs.existsSync(path.join(real, 'config.json'))) throw new ArgError(`--model ${real}: no config.json there`);
  const base = kind === 'tiny-base' ? (flags.base !== undefined ? resolveUserPath(flags.base) : path.join(ROOT, 'models', 'tiny-base')) : null;
  if (base && !fs.existsSync(path.join(base, 'config.json'))) {
    throw new ArgError(`--base ${base}: no config.json there (make it with \`npx tsx src/run.ts pretrain --out ${base}\`, or pass --from_scratch)`);
  }
  const sft = resolve('sft', preset, flags, { prefix: 'sft.', set: { seed, output_dir: path.join(out, 'sft') } });
  const grpo = resolve('grpo', preset, flags, { prefix: 'grpo.', set: { seed, output_dir: path.join(out, 'grpo') } });
  if (flags.pool_labels === 'outcome') {
    const needGold = grpo.config.reward_funcs.filter((f) => (REWARD_COLUMNS as Record<string, readonly string[]>)[f]?.includes('gold_call'));
    if (needGold.length) throw new ArgError(`--grpo.reward_funcs=${grpo.config.reward_funcs.join(',')}: ${needGold.join(', ')} read${needGold.length === 1 ? 's' : ''} the gold call, which an outcome-labelled pool does not have; use --grpo.reward_funcs=outcome or --pool_labels=gold`);
  }
  const control: SFTConfig | null = flags.control
    ? { ...sft.config, output_dir: path.join(out, 'control'), max_steps: flags.control_steps || grpo.config.max_steps, eval_steps: 0, load_best_model_at_end: false }
    : null;
  return { setup: { run, seed, out, preset, real, base, sft, grpo, control }, flags };
}

function parseCourseFlags(argv: string[]) {
  return parseFlags<typeof FLAGS & Record<string, FlagSpec>>(argv, { ...configFlagSpec('sft', 'sft.'), ...configFlagSpec('grpo', 'grpo.'), ...FLAGS });
}

/**
 * The rows SFT trains on (its curated set, drawn from the demonstration rows of train) and GRPO's pool (every
 * other train row: phrasings, tools and catalogs SFT never showed). Throws, before any training, when the pool
 * would be empty.
 */
export function splitTrain<R extends Row>(train: readonly R[], sft: SFTConfig): { sftRows: R[]; grpoRows: R[] } {
  const sftRows = demonstrationSubset(train, sft);
  const ids = new Set(sftRows.map((r) => r.id));
  const grpoRows = train.filter((r) => !ids.has(r.id));
  if (grpoRows.length === 0) throw emptyPool(sft.sft_subset_size, train.length);
  return { sftRows, grpoRows };
}

/** GRPO's pool as the course labels it: outcome-labelled (no gold call) or with gold calls. */
export function poolRows(rows: readonly Row[], labels: 'outcome' | 'gold'): TrainRow[] {
  return labels === 'gold' ? rows.slice() : rows.map(outcomeLabelled);
}

function emptyPool(k: number, n: number): ArgError {
  return new ArgError(`--sft.sft_subset_size=${k} leaves GRPO's prompt pool empty (all ${n} train rows go to SFT); use fewer SFT rows, or more rows (--n)`);
}

export async function main(argv: string[]): Promise<number> {
  const { setup, flags } = resolveCourse(argv);
  const { run, seed, out, preset, real, base } = setup;
  const sft = setup.sft.config;
  const grpo = setup.grpo.config;
  const fromScratch = PRESETS[preset].model === 'tiny-scratch';
  const evalLimit = flags.eval_limit;

  const modelName = real ?? base ?? '(tiny, random, built here)';
  console.log(formatConfig('course', { run, seed, n: flags.n, preset, model: modelName, eval_limit: evalLimit }));
  console.log(formatResolved('sft config', setup.sft));
  console.log(formatResolved('grpo config', setup.grpo));
  if (setup.control) console.log(`control config: the sft config with output_dir ${setup.control.output_dir}, max_steps ${setup.control.max_steps}, eval_steps 0, load_best_model_at_end false`);
  fs.mkdirSync(out, { recursive: true });
  writeJson(path.join(out, 'config.json'), {
    run, seed, n: flags.n, preset, model: real, base, from_scratch: fromScratch, eval_limit: evalLimit, val_limit: flags.val_limit, pool_labels: flags.pool_labels,
    sft, grpo, control: setup.control,
  });
  await initBackend(flags.backend);

  const times: Record<string, number> = {};
  const phase = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    console.log(`\n== ${name}`);
    const r = await f();
    times[name] = (Date.now() - t0) / 1000;
    console.log(`== ${name}: ${fmtTime(times[name])}`);
    return r;
  };

  // 1. Data; SFT's curated subset and GRPO's pool (the rest of train), checked before anything trains.
  const splits = await phase('synthesize', async () => {
    const s = synthesize({ seed, n: flags.n });
    writeSplits(s, path.join(out, 'data'));
    console.log(`train ${s.train.length}, test ${s.test.length}, heldout_tools ${s.heldout_tools.length} rows -> ${path.join(out, 'data')}`);
    return s;
  });
  const { sftRows, grpoRows: poolSource } = splitTrain(splits.train, sft);
  const grpoRows = poolRows(poolSource, flags.pool_labels as 'outcome' | 'gold');
  console.log(`sft: ${sftRows.length} demonstration rows; grpo pool: ${grpoRows.length} rows (${flags.pool_labels === 'outcome' ? 'outcome-labelled: no gold call' : 'with gold calls'})`);
  const evalSplits: Record<string, Row[]> = {
    test: evalLimit ? splits.test.slice(0, evalLimit) : splits.test,
    heldout_tools: evalLimit ? splits.heldout_tools.slice(0, evalLimit) : splits.heldout_tools,
  };
  const valRows = flags.val_limit ? splits.validation.slice(0, flags.val_limit) : splits.validation;

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

  // 3. SFT on the demonstration rows; every eval_steps greedy exact match on validation picks the checkpoint.
  const sftRes = await phase('sft', async () => {
    console.log(`sft: ${sftRows.length} rows, ${sft.max_steps} steps x ${sft.per_device_train_batch_size * sft.gradient_accumulation_steps} rows (${sft.use_peft ? 'LoRA' : 'all weights'})` +
      (sft.eval_steps ? `; validation exact match on ${valRows.length} rows every ${sft.eval_steps} steps${sft.load_best_model_at_end ? ', best kept' : ''}` : ''));
    return sftPhase({
      modelDir, rows: sftRows, config: sft,
      evaluate: exactMatchOn(valRows),
    });
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

  // 7. The control: the same start, SFT on the gold calls of every row SFT and GRPO saw, as many steps as GRPO.
  let control: { report: Record<string, EvalReport>; steps: number; rows: number } | null = null;
  if (setup.control) {
    const cfg = setup.control;
    const steps = cfg.max_steps;
    const rows = [...sftRows, ...poolSource]; // gold calls: what imitation would get from the same requests
    await phase('control', async () => {
      console.log(`control: SFT from the GRPO start on ${rows.length} gold rows (${sftRows.length} SFT + ${poolSource.length} pool), ${steps} steps`);
      return sftPhase({ modelDir: start.base_model, sft_adapter: start.sft_adapter, rows, config: cfg });
    });
    const report = await phase('evaluate control', async () => {
      const rm = resolveRunModel(out, 'control'); // control/: a full model, or an adapter over the SFT start
      const model = await loadMergedModel(rm);
      const tokenizer = await ChatTokenizer.fromPretrained(rm.tokenizer_dir);
      try {
        return await evalAll(model, tokenizer, evalSplits, predDir, 'control', grpo.num_processes);
      } finally {
        model.dispose();
      }
    });
    control = { report, steps, rows: rows.length };
  }

  // 8. Summary + report.
  await phase('report', async () => {
    const history = readMetrics(path.join(grpo.output_dir, 'metrics.jsonl')).filter(isGRPOMetrics);
    const stepSecs = history.map((m) => m.step_seconds).filter(Number.isFinite);
    const tps = history.map((m) => m.tokens_per_second).filter(Number.isFinite);
    const pass = history.map((m) => m.exact_match);
    const k = Math.min(10, pass.length);
    const summary: CourseSummary = {
      run,
      seed,
      model: real ?? (base ? `tiny base ${path.relative(ROOT, base)}` : 'tiny from scratch'),
      metrics: Object.fromEntries(Object.keys(evalSplits).map((s) => [s, {
        sft: fourMetrics(before[s]), grpo: fourMetrics(after[s]), ...(control ? { control: fourMetrics(control.report[s]) } : {}),
      }])),
      rows: Object.fromEntries(Object.entries(evalSplits).map(([s, r]) => [s, r.length])),
      sft_rows: sftRows.length,
      grpo_prompts: grpoRows.length,
      pool_labels: flags.pool_labels as 'outcome' | 'gold',
      sft: { evals: sftRes.evals, best: sftRes.best, validation_rows: valRows.length },
      grpo: {
        steps: g.steps,
        mean_step_seconds: mean(stepSecs),
        mean_tokens_per_second: mean(tps),
        pool_exact_first10: mean(pass.slice(0, k)),
        pool_exact_last10: mean(pass.slice(pass.length - k)),
      },
      control: control && { steps: control.steps, rows: control.rows },
      phase_seconds: times,
    };
    writeJson(path.join(out, 'summary.json'), summary);
    const file = writeCourseReport(path.join(out, 'report.html'), summary, {
      sft_history: readMetrics(path.join(sft.output_dir, 'metrics.jsonl')).filter(isSFTMetrics),
      grpo_history: history,
      before,
      after,
      control: control?.report ?? null,
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
      const r = await evaluateModel(model, tok, rows, { parallel: dp });
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
  const hasControl = Object.values(s.metrics).some((m) => m.control);
  console.log(`\nsplit           metric                   sft     grpo    change${hasControl ? '  control' : ''}`);
  for (const [split, m] of Object.entries(s.metrics)) {
    for (const k of Object.keys(m.sft) as (keyof typeof m.sft)[]) {
      const d = m.grpo[k] - m.sft[k];
      console.log(`${split.padEnd(15)} ${k.padEnd(24)} ${m.sft[k].toFixed(3)}   ${m.grpo[k].toFixed(3)}   ${d >= 0 ? '+' : ''}${d.toFixed(3)}` + (m.control ? `   ${m.control[k].toFixed(3)}` : ''));
    }
  }
}
