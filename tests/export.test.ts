/**
 * `export`: a run's model with its adapters merged, as a Hugging Face folder, checked three ways (transformers
 * cannot run here): its layout against tests/fixtures/qwen2-tiny (written by transformers' save_pretrained),
 * the weights and logits after loading it back with this project's loader against the run's model with its
 * adapter(s), and the qwen2-tiny fixture through an export against its reference logits. `--data`: the TRL
 * JSONL and verl parquet, the parquet read back by a second, independent reader (parquet-wasm: Apache Arrow's
 * Rust implementation), and their labels as the reward service reads them.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend';
import { Qwen2ForCausalLM } from '../src/model/qwen2';
import { addLora, loadAdapter, saveAdapter } from '../src/model/lora';
import { readHeader, readSafetensors } from '../src/model/safetensors';
import { saveCheckpoint } from '../src/train/checkpoint';
import { ROOT } from '../src/util/paths';
import { Rng } from '../src/util/rng';
import { exportModel } from '../src/cli/export';
import { loadMergedModel, resolveRunModel } from '../src/train/runs';
import { labelOf } from '../src/serve/wire';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'export-test-'));
const FIX = path.join(ROOT, 'tests', 'fixtures', 'qwen2-tiny');
const IDS = [[5, 17, 3, 900, 42, 7, 1022, 11], [1, 2, 3, 4, 5, 6, 7, 8]];

before(async () => {
  await initBackend('wasm');
});

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'run.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });
}

async function logits(m: Qwen2ForCausalLM, ids: number[][]): Promise<Float32Array> {
  const input = tf.tensor2d(ids, undefined, 'int32');
  const out = m.forward(input, { use_cache: false });
  const data = (await out.logits.data()) as Float32Array;
  tf.dispose([input, out.logits]);
  return data;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Give every LoRA B a seeded non-zero value (a fresh or barely trained adapter is a no-op, which tests nothing). */
function randomizeB(m: Qwen2ForCausalLM, seed: number): void {
  const rng = new Rng(seed);
  for (const mod of m.adapter.modules.values()) {
    const n = mod.B.size;
    const b = new Float32Array(n);
    for (let i = 0; i < n; i++) b[i] = rng.normal() * 0.05;
    mod.B.assign(tf.tensor(b, mod.B.shape));
  }
}

// One real tiny course run (SFT full fine-tuning from models/tiny-base, then GRPO LoRA), shared by the tests.
const RUN = path.join(TMP, 'run');
let courseRan: { status: number | null; stderr: string } | null = null;
function course(): void {
  if (courseRan) return;
  const r = run(['course', `--out=${RUN}`, '--n=120', '--eval_limit=4', '--backend=wasm', '--sft.max_steps=2', '--sft.per_device_train_batch_size=4',
    '--sft.sft_subset_size=20', '--sft.num_processes=1', '--grpo.max_steps=1', '--grpo.num_generations=2', '--grpo.per_device_train_batch_size=4',
    '--grpo.max_completion_length=8', '--grpo.save_steps=1', '--grpo.num_processes=1']);
  courseRan = { status: r.status, stderr: r.stderr + r.stdout };
  assert.equal(r.status, 0, courseRan.stderr);
  assert.ok(fs.existsSync(path.join(RUN, 'grpo', 'checkpoint-1', 'adapter_model.safetensors')));
}

/** Make the run's GRPO adapter non-trivial, in place: one step on a 2-step SFT model may leave B at 0. */
async function randomizeRunAdapter(): Promise<void> {
  const ck = path.join(RUN, 'grpo', 'checkpoint-1');
  const m = await Qwen2ForCausalLM.fromPretrained(path.join(RUN, 'sft'));
  await loadAdapter(m, ck);
  randomizeB(m, 3);
  await saveAdapter(m, ck, path.join(RUN, 'sft'));
  m.dispose();
}

test('export --phase grpo: the layout of a transformers checkpoint, and the weights of the run\'s model with its adapter merged', async () => {
  course();
  await randomizeRunAdapter();
  const ck = path.join(RUN, 'grpo', 'checkpoint-1');
  const r = resolveRunModel(RUN, 'grpo');
  assert.deepEqual(r, { phase: 'grpo', base_model: path.join(RUN, 'sft'), adapters: [ck], tokenizer_dir: path.join(RUN, 'sft') });

  const out = path.join(TMP, 'hf-grpo');
  const res = run(['export', `--run=${RUN}`, `--out=${out}`, '--backend=wasm']);
  assert.equal(res.status, 0, res.stderr + res.stdout);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
    assert.ok(fs.existsSync(path.join(out, f)), `${f} missing`);
  }

  // Layout, against the transformers-written fixture: config keys, tensor names (layer index aside), F32, format pt.
  const fixCfg = JSON.parse(fs.readFileSync(path.join(FIX, 'config.json'), 'utf8'));
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  for (const k of Object.keys(fixCfg)) assert.ok(k in cfg, `config.json lacks ${k}`);
  assert.deepEqual(cfg.architectures, ['Qwen2ForCausalLM']);
  assert.equal(cfg.model_type, 'qwen2');
  assert.equal(cfg.torch_dtype, 'float32');
  const pattern = (file: string) => [...new Set(Object.keys(readHeader(file).header).map((n) => n.replace(/\.\d+\./, '.N.')))].sort();
  assert.equal(cfg.tie_word_embeddings, fixCfg.tie_word_embeddings, 'both tied: no lm_head.weight in either');
  assert.deepEqual(pattern(path.join(out, 'model.safetensors')), pattern(path.join(FIX, 'model.safetensors')));
  const h = readHeader(path.join(out, 'model.safetensors'));
  assert.deepEqual(h.metadata, readHeader(path.join(FIX, 'model.safetensors')).metadata);
  assert.deepEqual(h.metadata, { format: 'pt' });
  assert.ok(Object.values(h.header).every((e) => e.dtype === 'F32'));
  const gen = JSON.parse(fs.readFileSync(path.join(out, 'generation_config.json'), 'utf8'));
  assert.ok(gen.eos_token_id !== undefined && gen.pad_token_id !== undefined);

  // Weights: exactly the run's model (SFT + GRPO adapter) with the adapter merged as sampling merges it.
  const policy = await Qwen2ForCausalLM.fromPretrained(path.join(RUN, 'sft'));
  await loadAdapter(policy, ck);
  const unmerged = await logits(policy, IDS);
  policy.adapter.merge();
  const merged = await logits(policy, IDS);
  const written = readSafetensors(path.join(out, 'model.safetensors'));
  assert.equal(written.size, policy.params.size);
  for (const [name, v] of policy.params) assert.deepEqual(written.get(name)!.data, (await v.data()) as Float32Array, name);
  const back = await Qwen2ForCausalLM.fromPretrained(out);
  const exported = await logits(back, IDS);
  assert.deepEqual(exported, merged, 'identical logits to the run\'s model with its adapter merged');
  assert.ok(maxAbsDiff(exported, unmerged) < 1e-4, `and within 1e-4 of the adapter applied unmerged (${maxAbsDiff(exported, unmerged)})`);
  const base = await Qwen2ForCausalLM.fromPretrained(path.join(RUN, 'sft'));
  assert.ok(maxAbsDiff(await logits(base, IDS), exported) > 1e-3, 'the adapter changed the model');
  for (const m of [policy, back, base]) m.dispose();
});

test('export --phase sft: the full fine-tuned SFT model as it is; bad runs are refused with the folder named', async () => {
  course();
  const out = path.join(TMP, 'hf-sft');
  const res = run(['export', `--run=${RUN}`, '--phase=sft', `--out=${out}`, '--backend=wasm']);
  assert.equal(res.status, 0, res.stderr + res.stdout);
  const a = readSafetensors(path.join(out, 'model.safetensors'));
  const b = readSafetensors(path.join(RUN, 'sft', 'model.safetensors'));
  assert.equal(a.size, b.size);
  for (const [n, t] of b) assert.deepEqual(a.get(n)!.data, t.data, n);
  // Refusals: an existing export, a run without GRPO, a missing folder.
  const again = run(['export', `--run=${RUN}`, '--phase=sft', `--out=${out}`]);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /already holds a model \(pass --overwrite/);
  const sftOnly = run(['export', `--run=${path.join(RUN, 'sft')}`, `--out=${path.join(TMP, 'x')}`]);
  assert.equal(sftOnly.status, 1);
  assert.match(sftOnly.stderr, /no complete checkpoint-<step> folder \(did GRPO run\? for the SFT model use --phase sft\)/);
  const missing = run(['export', `--run=${path.join(TMP, 'nope')}`, `--out=${path.join(TMP, 'x')}`]);
  assert.match(missing.stderr, /nope: no such folder/);
});

test('export: a real checkpoint with an SFT adapter and a GRPO adapter folds both in, in order', async () => {
  // The layout `course --model DIR` writes: sft/ holds a PEFT adapter for DIR; grpo checkpoints record both.
  const baseDir = path.join(TMP, 'qwen2-real');
  const m = await Qwen2ForCausalLM.fromPretrained(FIX);
  await m.savePretrained(baseDir);
  addLora(m, { r: 4, lora_alpha: 8 }, 1);
  randomizeB(m, 11);
  const sftDir = path.join(TMP, 'real-run', 'sft');
  await saveAdapter(m, sftDir, baseDir);
  m.dispose();
  const afterSft = await loadMergedModel({ phase: 'sft', base_model: baseDir, adapters: [sftDir], tokenizer_dir: baseDir });
  addLora(afterSft, { r: 2, lora_alpha: 4 }, 2);
  randomizeB(afterSft, 12);
  const grpoDir = path.join(TMP, 'real-run', 'grpo');
  await saveCheckpoint(grpoDir, {
    state: { global_step: 5, rng_state: 1, data_cursor: 0, extra: { phase: 'grpo', start: { base_model: baseDir, sft_adapter: sftDir } } },
    config: {},
    optimizer: { step: 0, names: [], shapes: [], exp_avg: [], exp_avg_sq: [] },
    writeWeights: (dir) => saveAdapter(afterSft, dir, baseDir),
  });
  const r = resolveRunModel(path.join(TMP, 'real-run'), 'grpo');
  assert.deepEqual(r.adapters, [sftDir, path.join(grpoDir, 'checkpoint-5')]);
  const out = path.join(TMP, 'hf-real');
  await exportModel(r, out);
  const back = await Qwen2ForCausalLM.fromPretrained(out);
  const want = await logits(afterSft, [[1, 2, 3, 4, 5, 6]]); // SFT merged, GRPO adapter on top (unmerged)
  assert.ok(maxAbsDiff(await logits(back, [[1, 2, 3, 4, 5, 6]]), want) < 1e-4);
  assert.deepEqual(resolveRunModel(path.join(TMP, 'real-run'), 'sft').adapters, [sftDir]);
  // No tokenizer in the fixture: generation_config.json comes from config.json's ids.
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'generation_config.json'), 'utf8')), { bos_token_id: 1, eos_token_id: 2, pad_token_id: null });
  for (const x of [afterSft, back]) x.dispose();
});

test("export: the qwen2-tiny fixture through an export (a no-op adapter merged) still gives its reference logits", async () => {
  const dir = path.join(TMP, 'fix-run');
  const m = await Qwen2ForCausalLM.fromPretrained(FIX);
  addLora(m, { r: 4 }, 5); // B = 0: merging changes nothing
  await saveAdapter(m, path.join(dir, 'sft'), FIX);
  m.dispose();
  const out = path.join(TMP, 'hf-fix');
  await exportModel(resolveRunModel(dir, 'sft'), out);
  const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'reference.json'), 'utf8')) as { input_ids: number[][]; logits: number[][][] };
  const back = await Qwen2ForCausalLM.fromPretrained(out);
  const got = await logits(back, ref.input_ids);
  const want = Float32Array.from(ref.logits.flat(2));
  const scale = want.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
  assert.ok(maxAbsDiff(got, want) / scale < 1e-4, `relative error ${maxAbsDiff(got, want) / scale}`);
  back.dispose();
});

test('export --data: TRL JSONL and verl parquet, read back by an independent reader, with labels the service accepts', async () => {
  course();
  const out = path.join(TMP, 'data-only');
  const res = run(['export', `--run=${RUN}`, `--out=${out}`, '--data', '--model=false']);
  assert.equal(res.status, 0, res.stderr + res.stdout);
  assert.ok(!fs.existsSync(path.join(out, 'model.safetensors')));
  const { readParquet } = await import('parquet-wasm/node');
  const arrow = await import('apache-arrow');
  for (const split of ['train', 'test', 'heldout_tools']) {
    const src = fs.readFileSync(path.join(RUN, 'data', `${split}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const trl = fs.readFileSync(path.join(out, 'data', 'trl', `${split}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(trl.length, src.length);
    trl.forEach((t, i) => {
      assert.deepEqual(Object.keys(t), ['prompt', 'label', 'id', 'behavior', 'tool']);
      assert.deepEqual(t.prompt, src[i].messages);
      assert.deepEqual(t.label, { gold_call: src[i].gold_call, expected_result: src[i].expected_result });
      assert.deepEqual(labelOf(t.label, i), { success: true, data: t.label });
    });
    const buf = fs.readFileSync(path.join(out, 'data', 'verl', `${split}.parquet`));
    const table = arrow.tableFromIPC(readParquet(new Uint8Array(buf)).intoIPCStream());
    assert.deepEqual(table.schema.fields.map((f) => `${f.name}: ${f.type}`), [
      'data_source: Utf8',
      'prompt: List<Struct<{role:Utf8, content:Utf8}>>',
      'ability: Utf8',
      'reward_model: Struct<{style:Utf8, ground_truth:Utf8}>',
      'extra_info: Struct<{split:Utf8, index:Int64, id:Utf8, behavior:Utf8, tool:Utf8, query:Utf8}>',
    ]);
    const rows = table.toArray().map((r) => JSON.parse(JSON.stringify(r.toJSON(), (_k, v) => (typeof v === 'bigint' ? Number(v) : v))));
    assert.equal(rows.length, src.length);
    rows.forEach((r, i) => {
      assert.equal(r.data_source, 'toolcall-grpo');
      assert.equal(r.ability, 'tool_call');
      assert.deepEqual(r.prompt, src[i].messages);
      assert.equal(r.reward_model.style, 'rule');
      assert.deepEqual(labelOf(r.reward_model.ground_truth, i), { success: true, data: { gold_call: src[i].gold_call, expected_result: src[i].expected_result } });
      assert.deepEqual(r.extra_info, { split, index: i, id: src[i].id, behavior: src[i].behavior, tool: src[i].tool, query: src[i].query });
    });
  }
});

test.after(() => fs.rmSync(TMP, { recursive: true, force: true }));
