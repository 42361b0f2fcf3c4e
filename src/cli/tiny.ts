/**
 * `npx tsx src/run.ts tiny --out DIR`: write a random (not pretrained) tiny model (a byte-level BPE trained on the synthetic
 * train split's chat texts + a random Qwen2) as a Hugging Face directory, and print what was written and the
 * token lengths of each split's prompts and gold completions under the new tokenizer, as one JSON object.
 *
 * Not a training command: the weights are random (seeded). `course --from_scratch` calls `makeTinyModel` itself;
 * the course's default start, models/tiny-base, is this model pretrained by the `pretrain` command.
 */
import { flagsHelp, parseFlags, ArgError } from '../util/args';
import type { FlagSpec } from '../util/args';
import { resolveUserPath } from '../util/paths';
import { readJsonl, synthesize, type Row } from '../env/synth';
import { initBackend } from '../model/backend';
import { makeTinyModel, tokenLengthStats, TINY_VOCAB_SIZE } from '../model/tiny';
import { ChatTokenizer } from '../model/tokenizer';

const FLAGS: Record<string, FlagSpec> = {
  out: { type: 'string', help: 'output directory (required)' },
  seed: { type: 'int', help: 'seed of the synthetic data and of the random weights', default: 0 },
  n: { type: 'int', help: 'train rows to synthesize for the tokenizer corpus', default: 2000 },
  train: { type: 'string', help: 'read the train rows from this JSONL instead of synthesizing them' },
  'vocab-size': { type: 'int', help: 'token ids including the 3 ChatML specials', default: TINY_VOCAB_SIZE },
  backend: { type: 'string', help: 'TensorFlow.js backend (default: $TFJS_BACKEND, else auto)', choices: ['auto', 'wasm', 'cpu', 'tensorflow', 'webgpu'] },
};

export const help = `Write a random tiny model directory, not pretrained (BPE tokenizer on the synthetic train split + random
Qwen2). The course starts from models/tiny-base, this model pretrained by \`npx tsx src/run.ts pretrain\`.

usage: npx tsx src/run.ts tiny --out DIR [--seed 0] [--n 2000] [--train FILE.jsonl] [--vocab-size 1024]

${flagsHelp(FLAGS)}

Prints one JSON object: the config, parameter count, tokenizer size, and token-length stats (mean / p95 / max of
prompt tokens with the generation prompt, and of gold completion tokens + eos) for train, test, heldout_tools.`;

export async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS);
  if (typeof f.out !== 'string') throw new ArgError('--out DIR is required');
  const dir = resolveUserPath(f.out);
  const splits = synthesize({ seed: f.seed as number, n: f.n as number });
  const train: Row[] = typeof f.train === 'string' ? readJsonl<Row>(resolveUserPath(f.train)) : splits.train;
  await initBackend(f.backend as string);
  const t0 = Date.now();
  const info = await makeTinyModel(dir, { seed: f.seed as number, rows: train, vocab_size: f['vocab-size'] as number });
  const seconds = (Date.now() - t0) / 1000;
  const tok = await ChatTokenizer.fromPretrained(dir);
  const stats = {
    train: tokenLengthStats(tok, train),
    test: tokenLengthStats(tok, splits.test),
    heldout_tools: tokenLengthStats(tok, splits.heldout_tools),
  };
  console.log(JSON.stringify({ dir, seconds, num_parameters: info.num_parameters, tokenizer: info.tokenizer, config: info.config, token_lengths: stats }, null, 2));
  return 0;
}
