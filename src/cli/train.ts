/**
 * `npx tsx src/run.ts train --algo sft|grpo --model DIR --data DIR --output_dir DIR [--resume DIR] [--key=value ...]`
 *
 * One training phase on data files already on disk (see `synth`). The config keys are the SFTConfig /
 * GRPOConfig fields (src/train/config.ts); the resolved config is printed first and written next to the
 * results. The whole course (synth -> tiny model -> SFT -> eval -> GRPO -> eval -> report) is `course`.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import { ArgError, flagsHelp, parseFlags, type FlagSpec } from '../util/args';
import { resolveUserPath } from '../util/paths';
import { initBackend } from '../model/backend';
import { readJsonl } from '../env/synth';
import { GRPO_DEFAULTS, SFT_DEFAULTS, configFlagSpec, configHelp, formatConfig, grpoBatchShape, resolveConfig } from '../train/config';
import { curatedSubset } from '../train/sft';
import { grpoPhase, sftPhase } from '../train/phases';
import type { TrainRow } from '../train/batch';

const FLAGS: Record<string, FlagSpec> = {
  algo: { type: 'string', help: 'which trainer', choices: ['sft', 'grpo'] },
  model: { type: 'string', help: 'model dir (HF layout; for grpo: the SFT output, or a base model with --sft_adapter)' },
  sft_adapter: { type: 'string', help: 'grpo: a PEFT adapter from SFT to fold into --model first' },
  data: { type: 'string', help: 'folder with train.jsonl', default: 'data' },
  lora: { type: 'bool', help: 'sft: train a LoRA adapter instead of every weight (real checkpoints)', default: false },
  resume: { type: 'string', help: 'grpo: a run folder to continue from its newest checkpoint (its config, adapter, optimizer, RNG, data cursor)' },
  backend: { type: 'string', help: 'auto | wasm | cpu | tensorflow | webgpu (default: $TFJS_BACKEND, else auto)' },
};

export const help = `Run one training phase (SFT or GRPO) on JSONL data.

usage: npx tsx src/run.ts train --algo sft  --model DIR --output_dir DIR [--data data] [--key=value ...]
       npx tsx src/run.ts train --algo grpo --model DIR --output_dir DIR [--key=value ...]
       npx tsx src/run.ts train --algo grpo --model DIR --resume DIR [--max_steps N]

${flagsHelp(FLAGS)}

SFT keys:
${configHelp(SFT_DEFAULTS)}

GRPO keys:
${configHelp(GRPO_DEFAULTS)}`;

export async function main(argv: string[]): Promise<number> {
  const algo = pick(argv, 'algo');
  if (algo !== 'sft' && algo !== 'grpo') throw new ArgError('--algo sft|grpo is required');
  const defaults = algo === 'sft' ? SFT_DEFAULTS : GRPO_DEFAULTS;
  const flags = parseFlags(argv, { ...FLAGS, ...configFlagSpec(defaults) });
  if (typeof flags.model !== 'string') throw new ArgError('--model DIR is required');
  const modelDir = resolveUserPath(flags.model);
  if (!fs.existsSync(path.join(modelDir, 'config.json'))) throw new ArgError(`--model ${modelDir}: no config.json there`);
  const trainFile = path.join(resolveUserPath(flags.data as string), 'train.jsonl');
  if (!fs.existsSync(trainFile)) throw new ArgError(`--data: ${trainFile} not found (run \`npx tsx src/run.ts synth\` first)`);
  const rows = readJsonl<TrainRow>(trainFile);
  await initBackend(flags.backend as string);

  if (algo === 'sft') {
    const config = resolveConfig(SFT_DEFAULTS, flags);
    config.output_dir = resolveUserPath(config.output_dir);
    console.log(formatConfig('sft config', config));
    const subset = curatedSubset(rows, config.sft_subset_size, config.seed);
    console.log(`sft: ${subset.length} of ${rows.length} train rows, ${config.max_steps} steps x ${config.per_device_train_batch_size * config.gradient_accumulation_steps} rows`);
    const lora = flags.lora ? { r: GRPO_DEFAULTS.lora_r, lora_alpha: GRPO_DEFAULTS.lora_alpha, lora_dropout: 0 } : null;
    const r = await sftPhase({ modelDir, outDir: config.output_dir, rows: subset, config, lora });
    console.log(`sft: done in ${r.seconds.toFixed(1)}s, loss ${r.loss.toFixed(4)}, ${r.kind === 'full' ? 'model' : 'adapter'} in ${r.outDir}`);
    return 0;
  }
  const config = resolveConfig(GRPO_DEFAULTS, flags);
  config.output_dir = resolveUserPath(typeof flags.resume === 'string' ? flags.resume : config.output_dir);
  console.log(formatConfig('grpo config', config));
  const shape = grpoBatchShape(config);
  console.log(`grpo: ${shape.prompts_per_step} prompts x ${config.num_generations} completions per step, ${rows.length} prompts in the pool`);
  const r = await grpoPhase({
    start: { base_model: modelDir, sft_adapter: typeof flags.sft_adapter === 'string' ? resolveUserPath(flags.sft_adapter) : null },
    runDir: config.output_dir,
    rows,
    config,
    resume: typeof flags.resume === 'string',
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
