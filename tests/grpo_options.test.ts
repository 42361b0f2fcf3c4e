// GRPO's dynamic sampling (DAPO) and SFT's validation-chosen checkpoint, on the micro SFT'd fixture model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend';
import { synthesize } from '../src/env/synth';
import { buildMessages } from '../src/env/prompt';
import { getTool } from '../src/env/tools';
import { addLora } from '../src/model/lora';
import { GRPOState, concatScored, grpoStep, selectGroups, type Rollout, type Scored } from '../src/train/grpo';
import { zeroSignalGroups } from '../src/train/advantage';
import type { PromptSampler, SamplerPosition } from '../src/train/sampler';
import type { TrainRow } from '../src/train/batch';
import { GRPO_DEFAULTS, SFT_DEFAULTS } from '../src/train/config';
import { loadStart } from '../src/train/phases';
import { trainSFT } from '../src/train/sft';
import { ROOT } from '../src/util/paths';

const sftDir = path.join(ROOT, 'tests/fixtures/micro-sft');

function fakeScored(exact: boolean[], G: number): { rollout: Rollout; scored: Scored } {
  const n = exact.length;
  const ids = Array.from({ length: n }, (_, i) => [i]);
  const rows = Array.from({ length: n }, (_, i) => ({ id: `p${Math.floor(i / G)}` }) as TrainRow);
  return {
    rollout: { rows, prompt_ids: ids, completion_ids: ids, completions: ids.map(String), logprobs: ids, entropies: ids, truncated: exact.map(() => false), seconds: 1 },
    scored: { rewards: exact.map(Number), per_func: { seed_reward: exact.map(Number) }, exact },
  };
}

test('selectGroups / concatScored keep whole groups, in order, every column aligned', () => {
  const a = fakeScored([true, false, true, true, false, true], 2); // groups: mixed, all-true, mixed
  const sel = selectGroups(a.rollout, a.scored, [2, 0], 2);
  assert.deepEqual(sel.rollout.rows.map((r) => r.id), ['p2', 'p2', 'p0', 'p0']);
  assert.deepEqual(sel.rollout.completions, ['4', '5', '0', '1']);
  assert.deepEqual(sel.scored.exact, [false, true, true, false]);
  assert.deepEqual(sel.scored.per_func.seed_reward, [0, 1, 1, 0]);
  const both = concatScored([sel, a]);
  assert.equal(both.rollout.rows.length, 10);
  assert.equal(both.rollout.seconds, 2);
  assert.deepEqual(both.scored.exact.slice(4), a.scored.exact);
  assert.deepEqual(zeroSignalGroups(both.scored.exact, 2), [false, false, false, true, false]);
});

test('dynamic sampling: draws generation batches until the step holds prompts_per_step groups with exact-match spread', async () => {
  await initBackend('wasm');
  // The committed micro-SFT fixture was trained on prompts that list every train tool: give it those (and only
  // requests a listed tool serves), as the prompts it knows.
  const rows: TrainRow[] = synthesize({ seed: 0, n: 300, nTest: 20, nHeldout: 10 }).train
    .filter((r) => r.unlisted_tool === null && !getTool(r.tool)?.synthetic)
    .map((r) => ({ ...r, messages: buildMessages(r.query) }));
  let asked = 0;
  const sampler: PromptSampler = {
    next(n: number): TrainRow[] {
      const out = Array.from({ length: n }, (_, i) => rows[(asked * n + i) % rows.length]);
      asked += 1;
      return out;
    },
    position: (): SamplerPosition => ({ data_cursor: asked }),
  };
  const { model, tokenizer } = await loadStart({ base_model: sftDir, sft_adapter: null });
  addLora(model, { r: 4, lora_alpha: 8 }, 0);
  const config = {
    ...GRPO_DEFAULTS, num_generations: 4, per_device_train_batch_size: 8, gradient_accumulation_steps: 1, max_completion_length: 40,
    temperature: 1.0, seed: 1, dynamic_sampling: true, max_num_gen_batches: 8,
  };
  const state = GRPOState.create({ model, tokenizer, config, sampler });
  try {
    const r = await grpoStep(state);
    const G = config.num_generations;
    const batches = r.metrics.num_gen_batches!;
    assert.equal(asked, batches);
    assert.equal(r.metrics.num_prompts_drawn, 2 * batches);
    assert.equal(r.sampled.rollout.rows.length, 2 * G * batches);
    // The pool's pass rate is over everything sampled, not just what was kept.
    assert.equal(r.metrics.exact_match, r.sampled.scored.exact.filter(Boolean).length / r.sampled.scored.exact.length);
    // This seed fills the step before the limit (checked, so the test covers the stopping rule): exactly
    // prompts_per_step = 2 groups kept, each with spread, and the last batch was the one that filled it.
    const spreadPerBatch = Array.from({ length: batches }, (_, k) =>
      zeroSignalGroups(r.sampled.scored.exact.slice(k * 2 * G, (k + 1) * 2 * G), G).filter((z) => !z).length);
    const total = spreadPerBatch.reduce((x, y) => x + y, 0);
    assert.ok(batches < config.max_num_gen_batches && total >= 2, `spread per batch ${spreadPerBatch}`);
    assert.ok(spreadPerBatch.slice(0, -1).reduce((x, y) => x + y, 0) < 2, 'a batch was drawn after the step was full');
    assert.equal(r.rollout.rows.length, 2 * G);
    assert.ok(zeroSignalGroups(r.scored.exact, G).every((z) => !z));
    assert.equal(r.update.skipped, undefined);
    assert.ok(Number.isFinite(r.metrics.grad_norm) && r.metrics.grad_norm > 0);

    // With one generation batch allowed and no spread in it (held-out tools: the model never calls them), the
    // update is skipped and says why.
    const heldout = synthesize({ seed: 0, n: 300, nTest: 20, nHeldout: 10 }).heldout_tools;
    const none = GRPOState.create({ model, tokenizer, config: { ...config, max_num_gen_batches: 1 }, rows: heldout.slice(0, 2) });
    try {
      const q = await grpoStep(none);
      assert.ok(q.sampled.scored.exact.every((e) => !e));
      assert.match(q.update.skipped ?? '', /no group with exact-match spread in 1 generation batches/);
      assert.ok(Number.isNaN(q.metrics.grad_norm));
      assert.equal(none.optimizer.step, 0); // nothing applied
    } finally {
      none.dispose();
    }
  } finally {
    state.dispose();
    model.dispose();
  }
});

test('SFT load_best_model_at_end: ends with the weights of the best evaluation (the earlier one on a tie)', async () => {
  await initBackend('wasm');
  const rows: TrainRow[] = synthesize({ seed: 6, n: 60, nTest: 10, nHeldout: 10 }).train;
  const scores = [0.2, 0.6, 0.6, 0.4];
  const run = async (load_best_model_at_end: boolean) => {
    const { model, tokenizer } = await loadStart({ base_model: sftDir, sft_adapter: null });
    const seen: Float32Array[] = [];
    let k = 0;
    const config = { ...SFT_DEFAULTS, max_steps: 8, eval_steps: 2, load_best_model_at_end, per_device_train_batch_size: 4, learning_rate: 5e-3, logging_steps: 100, num_processes: 1 };
    const r = await trainSFT({
      model, tokenizer, rows, config, progress: false,
      evaluate: async () => {
        seen.push(((await model.trainableVariables()[0].data()) as Float32Array).slice());
        return scores[k++];
      },
    });
    const end = ((await model.trainableVariables()[0].data()) as Float32Array).slice();
    const before = tf.memory().numTensors;
    model.dispose();
    assert.ok(tf.memory().numTensors < before);
    return { r, seen, end };
  };
  const best = await run(true);
  assert.deepEqual(best.r.evals, [[2, 0.2], [4, 0.6], [6, 0.6], [8, 0.4]]);
  assert.deepEqual(best.r.best, { step: 4, score: 0.6 });
  assert.deepEqual(Array.from(best.end), Array.from(best.seen[1])); // the step-4 weights, not step 6's or 8's
  assert.ok(best.r.history.some((m) => m.step === 4 && m.eval_exact_match === 0.6));
  const last = await run(false);
  assert.equal(last.r.best, null);
  assert.deepEqual(Array.from(last.end), Array.from(last.seen[3])); // no selection: the last weights
  assert.notDeepEqual(Array.from(best.end), Array.from(last.end));
});
