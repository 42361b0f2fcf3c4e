/**
 * A tiny course run folder in seconds, without running the course: `sft/` is a copy of the committed micro-SFT
 * fixture (tests/fixtures/micro-sft: a full model with its tokenizer, what a tiny course's SFT phase writes),
 * and `grpo/checkpoint-1` a LoRA adapter on it with seeded non-zero B (a fresh adapter would be a no-op and test
 * nothing), its trainer_state.json recording the start as GRPO does. What src/train/runs.ts resolves for the
 * commands that read runs (`predict`, `export`).
 *
 * What it is not: a trained GRPO policy (the adapter is random) or a control phase (no control/ folder).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Qwen2ForCausalLM } from '../../src/model/qwen2';
import { addLora, saveAdapter } from '../../src/model/lora';
import { saveCheckpoint } from '../../src/train/checkpoint';
import { ROOT } from '../../src/util/paths';
import { Rng } from '../../src/util/rng';

export const MICRO_SFT = path.join(ROOT, 'tests', 'fixtures', 'micro-sft');

/** Write the run into `dir` (call initBackend first); returns its sft/ and GRPO checkpoint folders. */
export async function makeRunFolder(dir: string, o: { seed?: number; scale?: number } = {}): Promise<{ sft: string; checkpoint: string }> {
  const sft = path.join(dir, 'sft');
  fs.mkdirSync(sft, { recursive: true });
  for (const f of fs.readdirSync(MICRO_SFT)) fs.copyFileSync(path.join(MICRO_SFT, f), path.join(sft, f));
  const m = await Qwen2ForCausalLM.fromPretrained(sft);
  try {
    addLora(m, { r: 4, lora_alpha: 8 }, o.seed ?? 1);
    const rng = new Rng(o.seed ?? 1);
    for (const mod of m.adapter.modules.values()) {
      const b = new Float32Array(mod.B.size);
      for (let i = 0; i < b.length; i++) b[i] = rng.normal() * (o.scale ?? 0.3);
      tf.tidy(() => mod.B.assign(tf.tensor(b, mod.B.shape)));
    }
    const checkpoint = await saveCheckpoint(path.join(dir, 'grpo'), {
      state: { global_step: 1, rng_state: 1, data_cursor: 0, extra: { phase: 'grpo', start: { base_model: sft, sft_adapter: null } } },
      config: {},
      optimizer: { step: 0, names: [], shapes: [], exp_avg: [], exp_avg_sq: [] },
      writeWeights: (d) => saveAdapter(m, d, sft),
    });
    return { sft, checkpoint };
  } finally {
    m.dispose();
  }
}
