/**
 * Writes tests/fixtures/micro-sft/: a micro Qwen2 (2 layers, d=48, vocab 512) with its BPE tokenizer, SFT'd on
 * synthetic rows until it emits JSON tool calls often enough that GRPO's rewards vary within a group. The
 * training tests (tests/train_resume.test.ts) start GRPO from it, so they need no minutes-long SFT of their own.
 *
 *   npx tsx scripts/make-train-fixture.ts     (about a minute on 2 cores; deterministic)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/model/backend';
import { synthesize } from '../src/env/synth';
import { makeTinyModel } from '../src/model/tiny';
import { SFT_DEFAULTS } from '../src/train/config';
import { curatedSubset } from '../src/train/sft';
import { sftPhase } from '../src/train/phases';
import { ROOT } from '../src/util/paths';

export const MICRO = { hidden_size: 48, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 512 };

async function main(): Promise<void> {
  await initBackend('wasm');
  const out = path.join(ROOT, 'tests/fixtures/micro-sft');
  const splits = synthesize({ seed: 0, n: 600, nTest: 20, nHeldout: 10 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'micro-'));
  await makeTinyModel(tmp, { seed: 0, rows: splits.train, ...MICRO });
  fs.rmSync(out, { recursive: true, force: true });
  const steps = Number(process.env.STEPS ?? 300);
  const r = await sftPhase({
    modelDir: tmp, outDir: out, rows: curatedSubset(splits.train, 300, 0),
    config: { ...SFT_DEFAULTS, max_steps: steps, per_device_train_batch_size: 16, learning_rate: 1e-2, warmup_ratio: 0.05, logging_steps: 50 },
  });
  fs.rmSync(path.join(out, 'metrics.jsonl'), { force: true });
  console.log(`micro-sft: loss ${r.loss.toFixed(3)} after ${r.steps} steps (${r.seconds.toFixed(0)}s) -> ${out}`);
}
main();
