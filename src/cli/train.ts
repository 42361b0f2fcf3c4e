/**
 * `npx tsx src/run.ts train --algo sft|grpo --model DIR --data DIR --output_dir DIR [--preset P] [--resume DIR] [--key=value ...]`
 *
 * One training phase on data files already on disk (see `synth`). The config keys are the SFT / GRPO fields
 * (src/train/config.ts), resolved as the course resolves them: defaults < preset (default tiny-base, the
 * course's own) < the checkpoint's config (--resume) < the command line. So `train --algo sft --model
 * models/tiny-base --data outputs/course-seed0/data` trains exactly the course's SFT phase. The resolved
 * config is printed first (with what the command line changed on --resume) and written next to the results.
 * The whole course (synth -> tiny model -> SFT -> eval -> GRPO -> eval -> report) is `course`.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import { ArgError, flagsHelp, parseFlags, type FlagSpec } from '../util/args';
import { resolveUserPath } from '../util/paths';
import { initBackend } from '../model/backend';
import { readJsonl } from '../env/synth';
import { PRESET_NAMES, configFlagSpec, configHelp, formatResolved, grpoBatchShape, presetsHelp, resolve, type PresetName, type Resolved, type SFTConfig, type GRPOConfig } from '../train/config';
import { demonstrationSubset } from '../train/sft';
import { exactMatchOn } from '../eval/evaluate';
import { findResume, grpoPhase, sftPhase } from '../train/phases';
import type { LoadedCheckpoint } from '../train/checkpoint';
import type { GoldRow, TrainRow } from '../train/batch';

const FLAGS = {
  algo: { type: 'string', help: 'which trainer', choices: ['sft', 'grpo'] },
  preset: { type: 'string', help: 'the defaults to start from (see below)', choices: PRESET_NAMES, default: 'tiny-base' },
  model: { type: 'string', help: 'model dir (HF layout; for grpo: the SFT output, or a base model with --sft_adapter)' },
  sft_adapter: { type: 'string', help: 'grpo: a PEFT adapter from SFT to fold into --model first' },
  data: { type: 'string', help: 'folder with train.jsonl (and validation.jsonl: sft scores it every eval_steps)', default: 'data' },
  val_limit: { type: 'int', help: 'sft: validation rows scored at each eval_steps (0 = all), as the course', default: 150 },
  resume: { type: 'string', help: 'grpo: a run folder to continue from its newest checkpoint (its config, adapter, optimizer, RNG, data cursor); flags that change its config are printed' },
  backend: { type: 'string', help: 'auto | wasm | cpu | tensorflow | webgpu (default: $TFJS_BACKEND, else auto)' },
} satisfies Record<string, FlagSpec>;

export const help = `Run one training phase (SFT or GRPO) on JSONL data.

usage: npx tsx src/run.ts train --algo sft  --model DIR --output_dir DIR [--data data] [--preset P] [--key=value ...]
       npx tsx src/run.ts train --algo grpo --model DIR --output_dir DIR [--key=value ...]
       npx tsx src/run.ts train --algo grpo --model DIR --resume DIR [--max_steps N]

${flagsHelp(FLAGS)}

Presets:
${presetsHelp()}

SFT keys:
${configHelp('sft')}

GRPO keys:
${configHelp('grpo')}`;

export type TrainSetup =
  | { algo: 'sft'; resolved: Resolved<SFTConfig>; resume: null }
  | { algo: 'grpo'; resolved: Resolved<GRPOConfig>; resume: LoadedCheckpoint | null };

/** Parse the flags and resolve the phase's config (with --resume: against the newest checkpoint's). */
export function resolveTrain(argv: string[]): { setup: TrainSetup; flags: ReturnType<typeof parseTrainFlags> } {
  const algo = pick(argv, 'algo');
  if (algo !== 'sft' && algo !== 'grpo') throw new ArgError('--algo sft|grpo is required');
  const flags = parseTrainFlags(argv, algo);
  const preset = flags.preset as PresetName;
  if (algo === 'sft') {
    if (flags.resume !== undefined) throw new ArgError('--resume continues a GRPO run (SFT saves at the end only)');
    return { setup: { algo, resolved: resolve('sft', preset, flags), resume: null }, flags };
  }
  if (flags.resume === undefined) return { setup: { algo, resolved: resolve('grpo', preset, flags), resume: null }, flags };
  const runDir = resolveUserPath(flags.resume);
  if (typeof flags.output_dir === 'string' && resolveUserPath(flags.output_dir) !== runDir) {
    throw new ArgError(`--output_dir ${flags.output_dir} differs from --resume ${flags.resume}: a resumed run continues in its own folder`);
  }
  const ck = findResume(runDir);
  const resolved = resolve('grpo', preset, flags, { checkpoint: { file: path.join(ck.dir, 'training_config.json'), config: ck.config }, set: { output_dir: runDir } });
  return { setup: { algo, resolved, resume: ck }, flags };
}

function parseTrainFlags(argv: string[], algo: 'sft' | 'grpo') {
  return parseFlags<typeof FLAGS & Record<string, FlagSpec>>(argv, { ...configFlagSpec(algo), ...FLAGS });
}

export async function main(argv: string[]): Promise<number> {
  const { setup, flags } = resolveTrain(argv);
  if (flags.model === undefined) throw new ArgError('--model DIR is required');
  const modelDir = resolveUserPath(flags.model);
  if (!fs.existsSync(path.join(modelDir, 'config.json'))) throw new ArgError(`--model ${modelDir}: no config.json there`);
  const trainFile = path.join(resolveUserPath(flags.data), 'train.jsonl');
  if (!fs.existsSync(trainFile)) throw new ArgError(`--data: ${trainFile} not found (run \`npx tsx src/run.ts synth\` first)`);
  const rows = readJsonl<TrainRow>(trainFile);

  if (setup.algo === 'sft') {
    const config = setup.resolved.config;
    console.log(formatResolved('sft config', setup.resolved));
    const subset = demonstrationSubset(rows, config);
    console.log(`sft: ${subset.length} of ${rows.length} train rows (the demonstration rows, as the course), ${config.max_steps} steps x ${config.per_device_train_batch_size * config.gradient_accumulation_steps} rows (${config.use_peft ? 'LoRA' : 'all weights'})`);
    const valFile = path.join(resolveUserPath(flags.data), 'validation.jsonl');
    const val = config.eval_steps > 0 && fs.existsSync(valFile) ? readJsonl<GoldRow>(valFile) : null;
    const valRows = val && flags.val_limit ? val.slice(0, flags.val_limit) : val;
    if (config.eval_steps > 0) console.log(valRows ? `sft: validation exact match on ${valRows.length} rows of ${valFile} every ${config.eval_steps} steps` : `sft: no ${valFile}: eval_steps ignored`);
    await initBackend(flags.backend);
    const r = await sftPhase({
      modelDir, rows: subset, config,
      evaluate: valRows ? exactMatchOn(valRows) : undefined,
    });
    console.log(`sft: done in ${r.seconds.toFixed(1)}s, loss ${r.loss.toFixed(4)}, ${r.kind === 'full' ? 'model' : 'adapter'} in ${r.outDir}`);
    return 0;
  }
  const config = setup.resolved.config;
  console.log(formatResolved('grpo config', setup.resolved));
  const shape = grpoBatchShape(config);
  console.log(`grpo: ${shape.prompts_per_step} prompts x ${config.num_generations} completions per step, ${rows.length} prompts in the pool`);
  await initBackend(flags.backend);
  const r = await grpoPhase({
    start: { base_model: modelDir, sft_adapter: flags.sft_adapter !== undefined ? resolveUserPath(flags.sft_adapter) : null },
    runDir: config.output_dir,
    rows,
    config,
    resume: setup.resume,
  });
  console.log(`grpo: ${r.steps} steps in ${r.seconds.toFixed(1)}s; last checkpoint ${r.last_checkpoint}`);
  return 0;
}

/** The value of one flag before full parsing (which needs to know the algo). */
function pick(argv: string[], key: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${key}`) return argv[i + 1];
    if (argv[i].startsWith(`--${key}=`)) return argv[i].slice(key.length + 3);
  }
  return undefined;
}
