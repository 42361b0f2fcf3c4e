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
import { flagsHelp, parseFlags, type FlagSpec } from '../util/args';
import { resolveUserPath } from '../util/paths';
import { writeJson } from '../util/files';
import { fmtTime } from '../util/progress';
import { initBackend } from '../model/backend';
import { chatCorpus, makeTinyModel, TINY_VOCAB_SIZE } from '../model/tiny';
import { Qwen2ForCausalLM } from '../model/qwen2';
import { ChatTokenizer } from '../model/tokenizer';
import { synthesize } from '../env/synth';
import { corpusDocument, corpusDocuments } from '../env/corpus';
import { configFlagSpec, configHelp, formatResolved, resolve } from '../train/config';
import { pretrain } from '../train/pretrain';
import { MetricsLog } from '../train/log';
import { DataParallel, numProcessesFor } from '../train/parallel';

const FLAGS = {
  out: { type: 'string', help: 'model directory to write (= --output_dir; default models/tiny-base in the project)' },
  tokenizer_docs: { type: 'int', help: 'corpus documents the BPE is trained on (plus 2000 synthesized chat rows)', default: 20000 },
  vocab_size: { type: 'int', help: 'token ids including the 3 ChatML specials', default: TINY_VOCAB_SIZE },
  backend: { type: 'string', help: 'auto | wasm | cpu | tensorflow | webgpu (default: $TFJS_BACKEND, else auto)' },
} satisfies Record<string, FlagSpec>;

export const help = `Build and pretrain the tiny base model (tokenizer + random tiny Qwen2 + next-token prediction on the
synthetic financial corpus) into a Hugging Face model directory.

usage: npx tsx src/run.ts pretrain [--out models/tiny-base] [--seed 0] [--max_steps 2000] [--key=value ...]

${flagsHelp(FLAGS)}

Pretraining keys:
${configHelp('pretrain')}`;

export async function main(argv: string[]): Promise<number> {
  const flags = parseFlags<typeof FLAGS & Record<string, FlagSpec>>(argv, { ...configFlagSpec('pretrain'), ...FLAGS });
  const resolved = resolve('pretrain', null, flags, { set: flags.out !== undefined ? { output_dir: resolveUserPath(flags.out) } : {} });
  const config = resolved.config;
  const dir = config.output_dir;
  console.log(formatResolved('pretrain config', resolved));
  await initBackend(flags.backend);
  const t0 = Date.now();

  // 1-2. Tokenizer (corpus + the task's chat texts) and random weights.
  const docs = corpusDocuments(flags.tokenizer_docs, config.seed + 1);
  const chats = chatCorpus(synthesize({ seed: config.seed, n: 2000, nTest: 0, nHeldout: 0 }).train);
  const info = await makeTinyModel(dir, { seed: config.seed, corpus: [...docs, ...chats], vocab_size: flags.vocab_size });
  console.log(`tiny Qwen2: ${info.num_parameters} parameters, vocab ${info.tokenizer.vocab_size} -> ${dir}`);

  // 3. Pretraining.
  const tok = await ChatTokenizer.fromPretrained(dir);
  const model = await Qwen2ForCausalLM.fromPretrained(dir);
  const sep = tok.encode('<|endoftext|>');
  if (sep.length !== 1) throw new Error('pretrain: <|endoftext|> is not one token');
  fs.rmSync(path.join(dir, 'metrics.jsonl'), { force: true });
  const log = MetricsLog.open(path.join(dir, 'metrics.jsonl'));
  writeJson(path.join(dir, 'pretrain_config.json'), config);
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
      parallel: dp,
      save: () => model.savePretrained(dir),
    });
    const last = r.history[r.history.length - 1];
    console.log(`pretrain: ${r.tokens} tokens in ${fmtTime(r.seconds)}, final loss ${last ? last.loss.toFixed(4) : '?'}; total ${fmtTime((Date.now() - t0) / 1000)}`);
  } finally {
    await dp.close();
    model.dispose();
  }
  return 0;
}
