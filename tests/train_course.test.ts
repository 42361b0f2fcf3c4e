// The course command end to end with `--model DIR`: a "real" Qwen2 checkpoint the test writes (a random
// 1-layer Qwen2 with the Qwen2.5-style tokenizer fixture: its own chat template, <|im_end|> as EOS). LoRA only:
// SFT writes a PEFT adapter, GRPO another; summary.json, predictions and report.html come out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { initBackend } from '../src/model/backend';
import { Qwen2ForCausalLM } from '../src/model/qwen2';
import { readSafetensors } from '../src/model/safetensors';
import { ROOT } from '../src/util/paths';

test('course --model DIR: a Qwen2 checkpoint with its own tokenizer and template, LoRA only, all outputs written', async () => {
  await initBackend('wasm');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'train-course-'));
  const modelDir = path.join(tmp, 'qwen2-checkpoint');
  const tokDir = path.join(ROOT, 'tests/fixtures/qwen2.5-tokenizer');
  fs.mkdirSync(modelDir);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) fs.copyFileSync(path.join(tokDir, f), path.join(modelDir, f));
  const vocab = JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer.json'), 'utf8'));
  const vocab_size = Object.keys(vocab.model.vocab).length + vocab.added_tokens.length;
  const model = Qwen2ForCausalLM.random({
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1,
    num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 2048, rope_theta: 1000000, rms_norm_eps: 1e-6,
    hidden_act: 'silu', tie_word_embeddings: false, bos_token_id: 388, eos_token_id: 390,
  }, 7);
  await model.savePretrained(modelDir);
  model.dispose();
  const before = fs.readFileSync(path.join(modelDir, 'model.safetensors'));

  const out = path.join(tmp, 'run');
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/run.ts'), 'course', `--model=${modelDir}`, `--out=${out}`,
    '--n=120', '--eval_limit=6', '--val_limit=4', '--backend=wasm', '--sft.max_steps=2', '--sft.eval_steps=1', '--sft.per_device_train_batch_size=4', '--sft.sft_subset_size=20', '--control_steps=1',
    '--grpo.max_steps=2', '--grpo.num_generations=2', '--grpo.per_device_train_batch_size=4', '--grpo.max_completion_length=8', '--grpo.save_steps=1', '--grpo.lora_r=4'],
    { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  for (const phase of ['synthesize', 'sft', 'evaluate sft', 'grpo', 'evaluate grpo', 'control', 'evaluate control', 'report']) assert.match(r.stdout, new RegExp(`== ${phase}: `));
  // LoRA only: SFT wrote an adapter (no full weights), GRPO checkpoints hold adapters; the checkpoint is untouched.
  assert.ok(fs.existsSync(path.join(out, 'sft', 'adapter_model.safetensors')));
  assert.ok(!fs.existsSync(path.join(out, 'sft', 'model.safetensors')));
  assert.ok(fs.existsSync(path.join(out, 'grpo', 'checkpoint-2', 'adapter_config.json')));
  // The control: an adapter trained on the SFT model (start.json names the SFT adapter it continues).
  assert.ok(fs.existsSync(path.join(out, 'control', 'adapter_model.safetensors')));
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'control', 'start.json'), 'utf8')).sft_adapter, path.join(out, 'sft'));
  assert.ok(fs.readFileSync(path.join(modelDir, 'model.safetensors')).equals(before));
  const adapterCfg = JSON.parse(fs.readFileSync(path.join(out, 'grpo', 'checkpoint-2', 'adapter_config.json'), 'utf8'));
  assert.equal(adapterCfg.peft_type, 'LORA');
  assert.equal(adapterCfg.r, 4);
  // The prompt went through the checkpoint's own chat template (Qwen2.5's default system line is not used
  // because our rows carry their own system message, but its <|im_start|> framing is).
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  for (const split of ['test', 'heldout_tools']) {
    for (const when of ['sft', 'grpo', 'control']) {
      for (const k of ['response_validity', 'function_name_accuracy', 'schema_match', 'exact_match']) {
        const v = summary.metrics[split][when][k];
        assert.ok(v >= 0 && v <= 1, `${split}.${when}.${k} = ${v}`);
      }
    }
    for (const tag of ['sft', 'grpo', 'control']) assert.equal(fs.readFileSync(path.join(out, 'predictions', `${tag}_${split}.jsonl`), 'utf8').trim().split('\n').length, 6);
  }
  // SFT scored validation at each eval step; the GRPO pool was outcome-labelled (no gold call).
  assert.deepEqual(summary.sft.evals.map((e: [number, number]) => e[0]), [1, 2]);
  assert.equal(summary.pool_labels, 'outcome');
  assert.equal(summary.control.steps, 1);
  assert.equal(summary.model, modelDir);
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.match(html, /Plotly/);
  assert.match(html, /exact_match/);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.equal(cfg.grpo.max_steps, 2);
  assert.equal(cfg.sft.learning_rate, 2e-4); // the LoRA default for real checkpoints
});

test('course: a pool with no row left, or a gold-call reward on an outcome-labelled pool, is a clear error before anything trains', async () => {
  const { splitTrain, resolveCourse } = await import('../src/cli/course');
  const { synthesize } = await import('../src/env/synth');
  const { SFT_DEFAULTS } = await import('../src/train/config');
  const train = synthesize({ seed: 0, n: 60 }).train;
  const { sftRows, grpoRows } = splitTrain(train, SFT_DEFAULTS);
  assert.ok(sftRows.length > 0 && sftRows.every((r) => r.demonstration), 'SFT takes demonstration rows only');
  assert.equal(sftRows.length + grpoRows.length, train.length);
  assert.ok(grpoRows.every((r) => !r.demonstration));
  const allDemo = train.map((r) => ({ ...r, demonstration: true }));
  assert.throws(() => splitTrain(allDemo, SFT_DEFAULTS), /leaves GRPO's prompt pool empty/);
  assert.throws(() => resolveCourse(['--grpo.reward_funcs=seed']), /seed reads the gold call.*--pool_labels=gold/);
  assert.doesNotThrow(() => resolveCourse(['--grpo.reward_funcs=seed', '--pool_labels=gold']));
  // Nothing is written by the error (the CLI exits 2 with the message, no stack trace).
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'train-course-')), 'run');
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/run.ts'), 'course', `--out=${out}`, '--grpo.reward_funcs=strict'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
  assert.ok(!fs.existsSync(out), 'nothing written');
});

test('train --algo sft resolves the course\'s SFT config (same preset, same fields; only the folder differs)', async () => {
  const { resolveCourse } = await import('../src/cli/course');
  const { resolveTrain } = await import('../src/cli/train');
  for (const [courseArgs, trainArgs] of [
    [['--seed=2'], ['--seed=2']],
    [['--from_scratch', '--sft.max_steps=50'], ['--preset=tiny-scratch', '--max_steps=50']],
  ]) {
    const course = resolveCourse(courseArgs).setup.sft.config;
    const train = resolveTrain(['--algo=sft', ...trainArgs]).setup.resolved.config;
    assert.deepEqual({ ...train, output_dir: '' }, { ...course, output_dir: '' });
  }
  const lora = resolveCourse(['--preset=checkpoint-lora', `--model=${path.join(ROOT, 'models/tiny-base')}`]).setup.sft.config;
  assert.deepEqual([lora.use_peft, lora.lora_r, lora.learning_rate], [true, 16, 2e-4]);
});

test('train --algo sft on the course\'s data reproduces the course\'s SFT phase (the same weights)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'train-course-'));
  const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/run.ts'), ...args, '--backend=wasm'], { cwd: ROOT, encoding: 'utf8' });
  const sftFlags = ['max_steps=2', 'sft_subset_size=10', 'per_device_train_batch_size=4', 'num_processes=1', 'eval_steps=2']; // warmup: step 1's lr is 0
  const c = run(['course', `--out=${path.join(tmp, 'course')}`, '--n=40', '--eval_limit=2', '--val_limit=3', '--control=false', ...sftFlags.map((f) => `--sft.${f}`),
    '--grpo.max_steps=1', '--grpo.num_generations=2', '--grpo.per_device_train_batch_size=2', '--grpo.max_completion_length=4', '--grpo.num_processes=1']);
  assert.equal(c.status, 0, c.stderr + c.stdout);
  const t = run(['train', '--algo=sft', `--model=${path.join(ROOT, 'models/tiny-base')}`, `--data=${path.join(tmp, 'course', 'data')}`, `--output_dir=${path.join(tmp, 'train')}`, '--val_limit=3', ...sftFlags.map((f) => `--${f}`)]);
  assert.equal(t.status, 0, t.stderr + t.stdout);
  const cfg = (d: string) => ({ ...JSON.parse(fs.readFileSync(path.join(tmp, d, 'training_config.json'), 'utf8')), output_dir: '' });
  assert.deepEqual(cfg('train'), cfg(path.join('course', 'sft')));
  // The same tensors; values equal up to float noise (two processes may run a wasm kernel on different V8 tiers).
  const a = readSafetensors(path.join(tmp, 'train', 'model.safetensors'));
  const b = readSafetensors(path.join(tmp, 'course', 'sft', 'model.safetensors'));
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  const base = readSafetensors(path.join(ROOT, 'models', 'tiny-base', 'model.safetensors'));
  let moved = false;
  for (const [k, t] of a) {
    const u = b.get(k)!;
    assert.deepEqual(t.shape, u.shape);
    t.data.forEach((x, i) => assert.ok(Math.abs(x - u.data[i]) <= 1e-5 * Math.max(1e-3, Math.abs(x)), `${k}[${i}]: ${x} vs ${u.data[i]}`));
    moved ||= t.data.some((x, i) => x !== base.get(k)!.data[i]);
  }
  assert.ok(moved, 'SFT did not change the weights at all');
});
