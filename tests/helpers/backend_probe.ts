/**
 * Runs the model's checks on ONE backend and prints a JSON line: used by tests/webgpu.test.ts to compare
 * webgpu with wasm (one backend per process, so each backend gets its own child process).
 *
 *   npx tsx tests/helpers/backend_probe.ts <wasm|webgpu|cpu>
 *
 * 1. parity: logits of the qwen2-tiny fixture vs its float64 reference (max relative error);
 * 2. greedy continuation through the KV cache (generate) vs the reference ids;
 * 3. one full fine-tuning step (masked cross-entropy, every weight trainable, the embedding gradient included);
 * 4. one GRPO step with LoRA on all seven projections: per_token_logps on the tape, the clipped-surrogate +
 *    k3-KL loss (TRL's 'grpo' aggregation), gradients, global-norm clip, AdamW; reports the loss, grad norm and
 *    the log-probs after the update.
 * 5. the trainers' own path on the updated LoRA model: `completionLogps` over a left-padded batch whose rows
 *    share a prompt prefix (the prefix run once and its keys/values tiled), with gradients through it; then
 *    greedy decoding of a left-padded batch of two prompts with the adapter merged for sampling.
 * Reads tensors only with `await data()` (webgpu cannot read back synchronously in Node).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/model/backend';
import { Qwen2ForCausalLM } from '../../src/model/qwen2';
import { addLora } from '../../src/model/lora';
import { per_token_logps } from '../../src/model/logprobs';
import { generate } from '../../src/model/generate';
import { grpoLoss } from '../../src/train/objectives';
import { AdamW, globalNorm, clipByGlobalNorm } from '../../src/train/optim';
import { completionLogps } from '../../src/train/logps';
import { makeBatch } from '../../src/train/batch';
import { ROOT } from '../../src/util/paths';

const FIXTURE = path.join(ROOT, 'tests', 'fixtures', 'qwen2-tiny');

async function main(): Promise<void> {
  const backend = await initBackend(process.argv[2] ?? 'wasm');
  const ref = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'reference.json'), 'utf8')) as {
    input_ids: number[][];
    logits: number[][][];
    greedy: { prompt: number[]; new_ids: number[] };
  };
  const model = await Qwen2ForCausalLM.fromPretrained(FIXTURE);

  // 1. parity
  const ids = tf.tensor2d(ref.input_ids, undefined, 'int32'); // [2, 11]
  const { logits, past_key_values } = model.forward(ids);
  const got = (await logits.data()) as Float32Array; // [2, 11, V]
  tf.dispose([ids, logits, ...past_key_values.flatMap((l) => [l.key, l.value])]);
  const flat = ref.logits.flat(2);
  let maxRel = 0;
  const scale = Math.max(...flat.map(Math.abs));
  flat.forEach((v, i) => (maxRel = Math.max(maxRel, Math.abs(got[i] - v) / scale)));

  // 2. greedy through the cache
  const g = await generate(model, [ref.greedy.prompt], {
    max_new_tokens: ref.greedy.new_ids.length,
    do_sample: false,
    pad_token_id: 0,
  });

  const seqs = [...ref.input_ids, ref.input_ids[0].slice().reverse(), ref.input_ids[1].slice().reverse()]; // [4, 11]
  const K = 6; // completion = last 6 tokens
  const batch = tf.tensor2d(seqs, undefined, 'int32');
  const mask = tf.tensor2d(seqs.map(() => [1, 1, 1, 1, 1, 0]));

  // 3. one full fine-tuning step: masked cross-entropy on the completion tokens
  const full = model.trainableVariables();
  const ftOpt = new AdamW(full, { adam_beta1: 0.9, adam_beta2: 0.999, adam_epsilon: 1e-8, weight_decay: 0.01 });
  const ft = tf.variableGrads(
    () => tf.neg(tf.div(tf.sum(tf.mul(per_token_logps(model, batch, { logits_to_keep: K }), mask)), tf.sum(mask))) as tf.Scalar,
    full,
  );
  const ftGrads = full.map((v) => ft.grads[v.name]);
  const ft_grad_norm = await globalNorm(ftGrads);
  ftOpt.apply(ftGrads, 1e-3);
  const ft_loss = (await ft.value.data())[0];
  tf.dispose([ft.value, ...ftGrads]);

  // 4. one GRPO step with LoRA
  addLora(model, { r: 4, lora_alpha: 8, lora_dropout: 0 }, 1);
  const vars = model.trainableVariables();
  const opt = new AdamW(vars, { adam_beta1: 0.9, adam_beta2: 0.999, adam_epsilon: 1e-8, weight_decay: 0.01 });
  const adv = tf.tensor1d([1, -0.5, 0.5, -0.25]);
  model.adapter.disable();
  const refLogps = per_token_logps(model, batch, { logits_to_keep: K }); // reference = base model, LoRA off
  model.adapter.enable();
  const oldLogps = tf.add(per_token_logps(model, batch, { logits_to_keep: K }), 0.05) as tf.Tensor2D; // an "old" policy a bit off
  const step = { num_sequences: 4, num_tokens: 20, num_micro_batches: 1 };
  const { value, grads } = tf.variableGrads(
    () =>
      grpoLoss(
        { per_token_logps: per_token_logps(model, batch, { logits_to_keep: K }), old_per_token_logps: oldLogps, ref_per_token_logps: refLogps, advantages: adv, completion_mask: mask },
        { beta: 0.04, epsilon: 0.2, epsilon_high: 0.28, loss_type: 'grpo', max_completion_length: K },
        step,
      ),
    vars,
  );
  const gl = vars.map((v) => grads[v.name]);
  const grad_norm = await globalNorm(gl);
  const clipped = clipByGlobalNorm(gl, grad_norm, 1.0);
  opt.apply(clipped, 1e-2);
  const after = per_token_logps(model, batch, { logits_to_keep: K });

  // 5. the trainers' shared-prefix log-probs (with gradients) and batched greedy decoding with LoRA merged
  const shared = ref.input_ids[0]; // 11 tokens every row starts with
  const tb = makeBatch(
    [[...shared, 5], [...shared, 7, 9, 11], [...shared, 13, 2]],
    [[20, 21, 22], [30, 31], [40, 41, 42, 43]],
    0,
  );
  const shaped = tf.variableGrads(() => {
    const lp = completionLogps(model, tb, 4); // [3, 4], prefix of 11 computed once
    return tf.neg(tf.sum(tf.mul(lp, tf.tensor2d(tb.completion_mask)))) as tf.Scalar;
  }, vars);
  const sgl = vars.map((v) => shaped.grads[v.name]);
  const prefix_grad_norm = await globalNorm(sgl);
  const prefix_loss = (await shaped.value.data())[0];
  tf.dispose([shaped.value, ...sgl]);
  const batched = await generate(model, [ref.input_ids[1], ref.input_ids[0].slice(0, 5)], { max_new_tokens: 5, do_sample: false, pad_token_id: 0 });
  const out = {
    backend,
    parity_max_rel_err: maxRel,
    greedy_new_ids: g.sequences[0],
    greedy_expected: ref.greedy.new_ids,
    ft_loss,
    ft_grad_norm,
    loss: (await value.data())[0],
    grad_norm,
    logps_after: Array.from((await after.data()) as Float32Array),
    prefix_loss,
    prefix_grad_norm,
    batched_greedy: batched.sequences,
  };
  tf.dispose([value, ...gl, ...clipped, after, batch, mask, adv, refLogps, oldLogps]);
  console.log(JSON.stringify(out));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  },
);
