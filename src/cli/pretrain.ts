/**
 * `npx tsx src/run.ts pretrain --out DIR [--seed 0] [--key=value ...]`: build and pretrain the tiny base model.
 *
 *   1. tokenizer   byte-level BPE trained on corpus documents + the chat texts of a synthesized train split
 *                  (so tool names and the JSON call format get their own tokens), ChatML special tokens
 *   2. model       a random tiny Qwen2 (src/model/tiny.ts's shape), written in Hugging Face layout to DIR
 *   3. pretrain    next-token prediction on the synthetic financial corpus (src/env/corpus.ts) for max_steps,
 *                  data-parallel over the cores; metrics.jsonl and pretrain_config.json go to DIR too
 *
 * The result is an ordinary Hugging Face model directory: the course starts from it as from any checkpoint.
 * `models/tiny-base/` in the repository was made by this command with its defaults (see its README.md).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, flagsHelp, parseFlags, type FlagSpec } from '../util/args';
import { resolveUserPath } from '../util/paths';
import { fmtTime } from '../util/progress';
import { initBackend } from '../model/backend';
import { chatCorpus, makeTinyModel, TINY_VOCAB_SIZE } from '../model/tiny';
import { Qwen2ForCausalLM } from '../model/qwen2';
import { ChatTokenizer } from '../model/tokenizer';
import { synthesize } from '../env/synth';
import { corpusDocument, corpusDocuments } from '../env/corpus';
import { TRAIN_COMMON_DEFAULTS, configFlagSpec, configHelp, formatConfig, resolveConfig } from '../train/config';
import { pretrain, type PretrainConfig } from '../train/pretrain';
import { MetricsLog, writeAtomic } from '../train/log';
import { DataParallel, numProcessesFor } from '../train/parallel';

export const PRETRAIN_DEFAULTS: PretrainConfig = {
  ...TRAIN_COMMON_DEFAULTS,
  output_dir: 'models/tiny-base',
  learning_rate: 3e-3, // as SFT from scratch; cosine decay to 0
  lr_scheduler_type: 'cosine',
  warmup_ratio: 0.02,
  weight_decay: 0.1, // nanoGPT's
  adam_beta2: 0.95, // nanoGPT's
  max_steps: 2000,
  per_device_train_batch_size: 32,
  seq_len: 128,
  save_steps: 500, // the model dir is rewritten every N steps (a long run killed midway keeps its last save)
  logging_steps: 50,
};

const FLAGS: Record<string, FlagSpec> = {
  out: { type: 'string', help: 'model directory to write (default models/tiny-base)' },
  tokenizer_docs: { type: 'int', help: 'corpus documents the BPE is trained on (plus 2000 synthesized chat rows)', default: 20000 },
  vocab_size: { type: 'int', help: 'token ids including the 3 ChatML specials', default: TINY_VOCAB_SIZE },
  backend: { type: 'string', help: 'auto | wasm | cpu | tensorflow | webgpu (default: $TFJS_BACKEND, else auto)' },
};

export const help = `Build and pretrain the tiny base model (tokenizer + random tiny Qwen2 + next-token prediction on the
synthetic financial corpus) into a Hugging Face model directory.

usage: npx tsx src/run.ts pretrain [--out models/tiny-base] [--seed 0] [--max_steps 2000] [--key=value ...]

${flagsHelp(FLAGS)}

Pretraining keys:
${configHelp(PRETRAIN_DEFAULTS)}`;

export async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { ...FLAGS, ...configFlagSpec(PRETRAIN_DEFAULTS) });
  const config = resolveConfig(PRETRAIN_DEFAULTS, flags);
  if (typeof flags.out === 'string') config.output_dir = flags.out;
  const dir = resolveUserPath(config.output_dir);
  if (!(config.seq_len >= 8)) throw new ArgError(`--seq_len must be >= 8 (got ${config.seq_len})`);
  console.log(formatConfig('pretrain config', config));
  await initBackend(flags.backend as string);
  const t0 = Date.now();

  // 1-2. Tokenizer (corpus + the task's chat texts) and random weights.
  const docs = corpusDocuments(flags.tokenizer_docs as number, config.seed + 1);
  const chats = chatCorpus(synthesize({ seed: config.seed, n: 2000, nTest: 0, nHeldout: 0 }).train);
  const info = await makeTinyModel(dir, { seed: config.seed, corpus: [...docs, ...chats], vocab_size: flags.vocab_size as number });
  console.log(`tiny Qwen2: ${info.num_parameters} parameters, vocab ${info.tokenizer.vocab_size} -> ${dir}`);

  // 3. Pretraining.
  const tok = await ChatTokenizer.fromPretrained(dir);
  const model = await Qwen2ForCausalLM.fromPretrained(dir);
  const sep = tok.encode('<|endoftext|>');
  if (sep.length !== 1) throw new Error('pretrain: <|endoftext|> is not one token');
  fs.rmSync(path.join(dir, 'metrics.jsonl'), { force: true });
  const log = MetricsLog.open(path.join(dir, 'metrics.jsonl'));
  writeAtomic(path.join(dir, 'pretrain_config.json'), JSON.stringify(config, null, 2) + '\n');
  const dp = await DataParallel.start(model, numProcessesFor(config.num_processes));
  const tokensPerStep = config.per_device_train_batch_size * config.gradient_accumulation_steps * config.seq_len;
  console.log(`pretrain: ${config.max_steps} steps x ${tokensPerStep} tokens = ${(config.max_steps * tokensPerStep / 1e6).toFixed(1)}M tokens, ${dp.size} process(es)`);
  try {
    const r = await pretrain({
      model,
      encode: (t) => tok.encode(t),
      sep_token_id: sep[0],
      pad_token_id: tok.pad_token_id,
      document: corpusDocument,
      config,
      log,
      parallel: dp.size > 1 ? dp : null,
      save: () => model.savePretrained(dir),
    });
    const last = r.history[r.history.length - 1];
    console.log(`pretrain: ${r.tokens} tokens in ${fmtTime(r.seconds)}, final loss ${(last?.loss as number)?.toFixed(4)}; total ${fmtTime((Date.now() - t0) / 1000)}`);
  } finally {
    await dp.close();
    model.dispose();
  }
  return 0;
}
