/**
 * `logits`: run a checkpoint on given token ids and print the logits (and optionally a greedy continuation
 * through the KV cache) as one JSON object. For checking the port against a reference implementation
 * (e.g. transformers' `model(input_ids).logits`), not for generation.
 *
 *   npx tsx src/run.ts logits --model tests/fixtures/qwen2-tiny --ids 3,17,5 --greedy 4
 *   -> {"logits": [[...V floats] per position], "new_ids": [...]}
 */
import * as tf from '@tensorflow/tfjs';
import { ArgError, flagsHelp, parseFlags, FlagSpec } from '../util/args';
import { resolveUserPath } from '../util/paths';
import { initBackend } from '../model/backend';
import { Qwen2ForCausalLM, disposeCache, KVCache } from '../model/qwen2';
import { ConfigError } from '../model/config';
import { SafetensorsError } from '../model/safetensors';

const SPEC: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'Hugging Face model directory (config.json + model.safetensors)' },
  ids: { type: 'list', help: 'comma-separated input token ids, e.g. 3,17,5' },
  greedy: { type: 'int', help: 'also greedy-decode this many new tokens with the KV cache', default: 0 },
  backend: { type: 'string', help: 'TensorFlow.js backend (default: $TFJS_BACKEND, else auto)', choices: ['auto', 'wasm', 'cpu', 'tensorflow', 'webgpu'] },
};

export const help = `Print a checkpoint's logits for given token ids as JSON (port checking).

usage: npx tsx src/run.ts logits --model DIR --ids 3,17,5 [--greedy N] [--backend B]

${flagsHelp(SPEC)}

Output (stdout, one line): {"logits": [[...] for each position], "new_ids": [...] (with --greedy)}.
The chosen backend is printed on stderr.`;

/** Greedy-decode n tokens after `ids` with the cache (one forward per new token). */
export async function greedyDecode(model: Qwen2ForCausalLM, ids: number[], n: number): Promise<number[]> {
  const out: number[] = [];
  let cache: KVCache | undefined;
  let input = tf.tensor2d([ids], [1, ids.length], 'int32');
  for (let s = 0; s < n; s++) {
    const { logits, past_key_values } = model.forward(input, { past_key_values: cache });
    disposeCache(cache);
    cache = past_key_values;
    const T = logits.shape[1];
    const next = tf.tidy(() => tf.argMax(tf.slice(logits, [0, T - 1, 0], [1, 1, -1]).reshape([-1])));
    const id = (await next.data())[0];
    tf.dispose([logits, next, input]);
    out.push(id);
    input = tf.tensor2d([[id]], [1, 1], 'int32');
  }
  input.dispose();
  disposeCache(cache);
  return out;
}

export async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv, SPEC);
  if (!f.model) throw new ArgError('--model is required');
  const ids = ((f.ids as string[] | undefined) ?? []).map((s) => {
    if (!/^\d+$/.test(s)) throw new ArgError(`--ids: '${s}' is not a token id`);
    return Number(s);
  });
  if (ids.length === 0) throw new ArgError('--ids is required (e.g. --ids 3,17,5)');
  await initBackend(f.backend as string);
  let model: Qwen2ForCausalLM;
  try {
    model = await Qwen2ForCausalLM.fromPretrained(resolveUserPath(f.model as string));
  } catch (e) {
    if (e instanceof ConfigError || e instanceof SafetensorsError) {
      console.error(`error: ${e.message}`); // already names the file
      return 1;
    }
    throw e;
  }
  const V = model.config.vocab_size;
  const bad = ids.find((i) => i >= V);
  if (bad !== undefined) throw new ArgError(`--ids: ${bad} is outside the vocabulary (vocab_size ${V})`);
  const input = tf.tensor2d([ids], [1, ids.length], 'int32');
  const { logits, past_key_values } = model.forward(input, { use_cache: false });
  const out: { logits: number[][]; new_ids?: number[] } = { logits: ((await logits.array()) as number[][][])[0] };
  tf.dispose([input, logits]);
  disposeCache(past_key_values);
  if ((f.greedy as number) > 0) out.new_ids = await greedyDecode(model, ids, f.greedy as number);
  console.log(JSON.stringify(out));
  model.dispose();
  return 0;
}
