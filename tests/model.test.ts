// Model core: parity with the float64 reference, KV cache, left padding, safetensors reader/writer, config
// errors, save -> load round trip. Run: node --import tsx --test tests/model.test.ts
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend';
import { Qwen2ForCausalLM, disposeCache, KVCache } from '../src/model/qwen2';
import { readSafetensors, writeSafetensors, readCheckpointWeights } from '../src/model/safetensors';
import { loadConfig, validateConfig } from '../src/model/config';
import { greedyDecode } from '../src/cli/logits';

const FIX = path.join('tests', 'fixtures', 'qwen2-tiny');
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'reference.json'), 'utf8')) as {
  input_ids: number[][];
  logits: number[][][];
  greedy: { prompt: number[]; new_ids: number[] };
};
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'model-test-'));

before(async () => {
  await initBackend(process.env.TFJS_BACKEND ?? 'wasm');
});

function maxRelErr(got: number[][][], want: number[][][]): number {
  let maxAbs = 0;
  let maxRef = 0;
  for (let b = 0; b < want.length; b++)
    for (let t = 0; t < want[b].length; t++)
      for (let v = 0; v < want[b][t].length; v++) {
        maxAbs = Math.max(maxAbs, Math.abs(got[b][t][v] - want[b][t][v]));
        maxRef = Math.max(maxRef, Math.abs(want[b][t][v]));
      }
  return maxAbs / maxRef;
}

test('parity: logits match the float64 reference to 1e-4 relative error', async () => {
  const m = await Qwen2ForCausalLM.fromPretrained(FIX);
  const ids = tf.tensor2d(ref.input_ids, undefined, 'int32');
  const { logits, past_key_values } = m.forward(ids);
  assert.deepEqual(logits.shape, [2, 11, 96]);
  const err = maxRelErr((await logits.array()) as number[][][], ref.logits);
  assert.ok(err < 1e-4, `relative error ${err}`);
  tf.dispose([ids, logits]);
  disposeCache(past_key_values);
  m.dispose();
});

test('parity: greedy continuation through the KV cache is identical to the reference', async () => {
  const m = await Qwen2ForCausalLM.fromPretrained(FIX);
  const got = await greedyDecode(m, ref.greedy.prompt, ref.greedy.new_ids.length);
  assert.deepEqual(got, ref.greedy.new_ids);
  m.dispose();
});

test('KV cache: token-by-token logits equal the full forward', async () => {
  const m = await Qwen2ForCausalLM.fromPretrained(FIX);
  const ids = tf.tensor2d(ref.input_ids, undefined, 'int32');
  const full = (await m.forward(ids, { use_cache: false }).logits.array()) as number[][][];
  let cache: KVCache | undefined;
  // prompt of 5, then 6 single steps
  const steps: number[][][][] = [];
  for (const [s, e] of [[0, 5], [5, 6], [6, 7], [7, 8], [8, 9], [9, 10], [10, 11]]) {
    const chunk = tf.tensor2d(ref.input_ids.map((r) => r.slice(s, e)), undefined, 'int32');
    const out = m.forward(chunk, { past_key_values: cache });
    disposeCache(cache);
    cache = out.past_key_values;
    steps.push((await out.logits.array()) as number[][][]);
    tf.dispose([chunk, out.logits]);
  }
  disposeCache(cache);
  const stitched = [0, 1].map((b) => steps.flatMap((st) => st[b]));
  assert.ok(maxRelErr(stitched, full) < 1e-5);
  m.dispose();
});

test('left padding with attention_mask gives the unpadded logits', async () => {
  const m = await Qwen2ForCausalLM.fromPretrained(FIX);
  const row = ref.input_ids[1].slice(0, 7);
  const single = (await m.forward(tf.tensor2d([row], undefined, 'int32'), { use_cache: false }).logits.array()) as number[][][];
  const pad = 3;
  const batch = tf.tensor2d([[0, 0, 0, ...row], ref.input_ids[0].slice(0, 10)], undefined, 'int32');
  const mask = tf.tensor2d([[0, 0, 0, 1, 1, 1, 1, 1, 1, 1], new Array(10).fill(1)], undefined, 'int32');
  const out = (await m.forward(batch, { attention_mask: mask, use_cache: false }).logits.array()) as number[][][];
  assert.ok(maxRelErr([out[0].slice(pad)], single) < 1e-5);
  assert.ok(maxRelErr([out[1]], [ref.logits[0].slice(0, 10)]) < 1e-4);
  // and incremental decoding of the padded batch continues consistently
  const first = m.forward(batch, { attention_mask: mask });
  const next = tf.tensor2d([[row.length > 0 ? 5 : 0], [5]], undefined, 'int32');
  const mask2 = tf.concat([mask, tf.ones([2, 1], 'int32')], 1) as tf.Tensor2D;
  const step = (await m.forward(next, { attention_mask: mask2, past_key_values: first.past_key_values }).logits.array()) as number[][][];
  const direct = (await m.forward(tf.tensor2d([[...row, 5]], undefined, 'int32'), { use_cache: false }).logits.array()) as number[][][];
  assert.ok(maxRelErr([step[0]], [direct[0].slice(-1)]) < 1e-5);
  disposeCache(first.past_key_values);
  m.dispose();
});

test('random(config, seed) is deterministic and save -> load round trip is exact', async () => {
  const cfg = loadConfig(FIX);
  const a = Qwen2ForCausalLM.random({ ...cfg, tie_word_embeddings: false }, 7);
  const b = Qwen2ForCausalLM.random({ ...cfg, tie_word_embeddings: false }, 7);
  const c = Qwen2ForCausalLM.random({ ...cfg, tie_word_embeddings: false }, 8);
  const q = 'model.layers.1.self_attn.q_proj.weight';
  assert.deepEqual(await a.params.get(q)!.data(), await b.params.get(q)!.data());
  assert.notDeepEqual(await a.params.get(q)!.data(), await c.params.get(q)!.data());
  const dir = tmp();
  await a.savePretrained(dir);
  assert.ok(readSafetensors(path.join(dir, 'model.safetensors')).has('lm_head.weight'));
  const back = await Qwen2ForCausalLM.fromPretrained(dir);
  assert.equal(back.params.size, a.params.size);
  for (const [name, v] of a.params) assert.deepEqual(await back.params.get(name)!.data(), await v.data(), name);
  assert.equal(loadConfig(dir).tie_word_embeddings, false);
  for (const m of [a, b, c, back]) m.dispose();
});

test('safetensors: F16 and BF16 decode to float32', () => {
  const dir = tmp();
  const file = path.join(dir, 'h.safetensors');
  // 1.0, -2.0, 0.5, 65504 in f16; 1.0, -2.0, 3.140625 in bf16
  const f16 = Buffer.from(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff]).buffer);
  const bf16 = Buffer.from(new Uint16Array([0x3f80, 0xc000, 0x4049]).buffer);
  const header = JSON.stringify({ h: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 8] }, b: { dtype: 'BF16', shape: [3], data_offsets: [8, 14] } });
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(header), f16, bf16]));
  const t = readSafetensors(file);
  assert.deepEqual([...t.get('h')!.data], [1, -2, 0.5, 65504]);
  assert.deepEqual(t.get('h')!.shape, [2, 2]);
  assert.deepEqual([...t.get('b')!.data], [1, -2, 3.140625]);
});

test('safetensors: sharded checkpoint (model.safetensors.index.json) loads with the same logits', async () => {
  const dir = tmp();
  fs.copyFileSync(path.join(FIX, 'config.json'), path.join(dir, 'config.json'));
  const all = readSafetensors(path.join(FIX, 'model.safetensors'));
  const names = [...all.keys()].sort();
  const shards = [names.slice(0, 10), names.slice(10)];
  const weight_map: Record<string, string> = {};
  shards.forEach((ns, i) => {
    const f = `model-0000${i + 1}-of-00002.safetensors`;
    writeSafetensors(path.join(dir, f), new Map(ns.map((n) => [n, all.get(n)!])));
    for (const n of ns) weight_map[n] = f;
  });
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map }));
  assert.equal(readCheckpointWeights(dir).size, names.length);
  const m = await Qwen2ForCausalLM.fromPretrained(dir);
  const out = m.forward(tf.tensor2d(ref.input_ids, undefined, 'int32'), { use_cache: false });
  assert.ok(maxRelErr((await out.logits.array()) as number[][][], ref.logits) < 1e-4);
  m.dispose();
});

test('safetensors: errors name the file', async () => {
  const dir = tmp();
  const good = fs.readFileSync(path.join(FIX, 'model.safetensors'));
  const hlen = Number(good.readBigUInt64LE(0));
  const cases: [string, Buffer, RegExp][] = [
    ['short.safetensors', good.subarray(0, 5), /truncated/],
    ['pastEOF.safetensors', good.subarray(0, 8 + hlen - 10), /runs past the end/],
    ['corrupt.safetensors', Buffer.concat([good.subarray(0, 8), Buffer.from('{not json'.padEnd(hlen, ' ')), good.subarray(8 + hlen)]), /corrupt header/],
    ['datatrunc.safetensors', good.subarray(0, good.length - 100), /out of range/],
  ];
  for (const [name, bytes, re] of cases) {
    const f = path.join(dir, name);
    fs.writeFileSync(f, bytes);
    assert.throws(() => readSafetensors(f), (e: Error) => re.test(e.message) && e.message.includes(f), name);
  }
  assert.throws(() => readSafetensors(path.join(dir, 'nope.safetensors')), /nope\.safetensors: file not found/);
  // missing / misshapen tensor in a model dir
  const mdir = tmp();
  fs.copyFileSync(path.join(FIX, 'config.json'), path.join(mdir, 'config.json'));
  const all = readSafetensors(path.join(FIX, 'model.safetensors'));
  all.delete('model.norm.weight');
  writeSafetensors(path.join(mdir, 'model.safetensors'), all);
  await assert.rejects(Qwen2ForCausalLM.fromPretrained(mdir), /model\.safetensors: missing tensor 'model\.norm\.weight'/);
  all.set('model.norm.weight', { dtype: 'F32', shape: [31], data: new Float32Array(31) });
  writeSafetensors(path.join(mdir, 'model.safetensors'), all);
  await assert.rejects(Qwen2ForCausalLM.fromPretrained(mdir), /model\.safetensors: tensor 'model\.norm\.weight' has shape \[31\], expected \[32\]/);
  fs.rmSync(path.join(mdir, 'model.safetensors'));
  await assert.rejects(Qwen2ForCausalLM.fromPretrained(mdir), /model\.safetensors: file not found/);
});

test('config: unsupported settings are refused with the file name', () => {
  const cfg = loadConfig(FIX) as unknown as Record<string, unknown>;
  assert.throws(() => validateConfig({ ...cfg, model_type: 'llama' }, 'x/config.json'), /x\/config\.json: model_type/);
  assert.throws(() => validateConfig({ ...cfg, hidden_act: 'gelu' }, 'x/config.json'), /hidden_act/);
  assert.throws(() => validateConfig({ ...cfg, num_key_value_heads: 3 }, 'x/config.json'), /divisible/);
  assert.throws(() => validateConfig({ ...cfg, use_sliding_window: true }, 'x/config.json'), /sliding/);
  assert.throws(() => loadConfig(tmp()), /config\.json: file not found/);
});

test('wasm kernels: Slice/SplitV/Unpack/Identity replacements and the sliced matmul agree with plain JS', async () => {
  const { bmm } = await import('../src/model/kernels');
  const shape = [3, 5, 4, 6];
  const n = shape.reduce((a, s) => a * s, 1);
  const data = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 7);
  const x = tf.tensor(data, shape);
  const at = (i: number, j: number, k: number, l: number) => data[((i * 5 + j) * 4 + k) * 6 + l];
  const sl = tf.slice(x, [1, 2, 0, 3], [2, 3, 4, 2]);
  const got = (await sl.array()) as number[][][][];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) for (let l = 0; l < 2; l++)
    assert.equal(got[i][j][k][l], at(1 + i, 2 + j, k, 3 + l));
  const parts = tf.split(x, [1, 3, 2], 3);
  assert.deepEqual(parts.map((p) => p.shape), [[3, 5, 4, 1], [3, 5, 4, 3], [3, 5, 4, 2]]);
  assert.equal(((await parts[2].array()) as number[][][][])[2][4][3][1], at(2, 4, 3, 5));
  const rows = tf.unstack(x, 1);
  assert.equal(((await rows[3].array()) as number[][][])[2][1][5], at(2, 3, 1, 5));
  const c = tf.clone(x);
  x.dispose();
  assert.equal((await c.data())[n - 1], data[n - 1]); // the clone outlives its source
  // sliced matmul (the per-slice XNNPACK path is taken for slices this big)
  const a = tf.randomNormal([6, 40, 16], 0, 1, 'float32', 1) as tf.Tensor3D;
  const b = tf.randomNormal([6, 16, 24], 0, 1, 'float32', 2) as tf.Tensor3D;
  const want = (await tf.matMul(a, b).array()) as number[][][];
  const mine = (await bmm(a, b).array()) as number[][][];
  let err = 0;
  for (let i = 0; i < 6; i++) for (let r = 0; r < 40; r++) for (let q = 0; q < 24; q++) err = Math.max(err, Math.abs(want[i][r][q] - mine[i][r][q]));
  assert.ok(err < 1e-4, `bmm error ${err}`);
  tf.dispose([sl, c, a, b, ...parts, ...rows]);
});

test('attention core: per-slice forward and backward match plain autodiff (slices big enough for the fast path)', async () => {
  const { attention } = await import('../src/model/kernels');
  const B = 2, KV = 2, GT = 40, Tk = 20, hd = 16;
  const q = tf.randomNormal([B * KV, GT, hd], 0, 1, 'float32', 3) as tf.Tensor3D;
  const k = tf.randomNormal([B * KV, Tk, hd], 0, 1, 'float32', 4) as tf.Tensor3D;
  const v = tf.randomNormal([B * KV, Tk, hd], 0, 1, 'float32', 5) as tf.Tensor3D;
  const mask = tf.tensor4d(Array.from({ length: B * GT * Tk }, (_, i) => ((i * 7) % 5 === 0 ? -1e9 : 0)), [B, 1, GT, Tk]);
  const w = tf.randomNormal([B * KV, GT, hd], 0, 1, 'float32', 6);
  const scale = 0.25;
  const naive = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => {
    const s = tf.add(tf.mul(tf.matMul(a, b, false, true).reshape([B, KV, GT, Tk]), scale), mask);
    return tf.matMul(tf.softmax(s).reshape([B * KV, GT, Tk]), c);
  };
  const f1 = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(attention(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, mask, KV, scale), w));
  const f2 = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(naive(a, b, c), w));
  const g1 = tf.grads(f1)([q, k, v]);
  const g2 = tf.grads(f2)([q, k, v]);
  for (let i = 0; i < 3; i++) {
    const d = tf.max(tf.abs(tf.sub(g1[i], g2[i]))).dataSync()[0];
    const r = tf.max(tf.abs(g2[i])).dataSync()[0];
    assert.ok(d / r < 1e-4, `grad ${i}: ${d / r}`);
  }
  const y1 = attention(q, k, v, mask, KV, scale);
  assert.ok(tf.max(tf.abs(tf.sub(y1, naive(q, k, v)))).dataSync()[0] < 1e-4);
  const cat = tf.concat([tf.ones([3, 2, 2]), tf.zeros([3, 1, 2]), tf.fill([3, 2, 2], 2)], 1);
  assert.deepEqual((await cat.array() as number[][][])[1], [[1, 1], [1, 1], [0, 0], [2, 2], [2, 2]]);
  const emb = tf.gather(tf.tensor2d([[1, 2], [3, 4], [5, 6]]), tf.tensor1d([2, 0, 2], 'int32'));
  assert.deepEqual(await emb.array(), [[5, 6], [1, 2], [5, 6]]);
});

test('logits CLI: the backend comes from TFJS_BACKEND when --backend is not given, and the flag wins over it', async () => {
  const { spawnSync } = await import('node:child_process');
  const cli = (args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import', 'tsx', path.join('src', 'run.ts'), 'logits', '--model', FIX, '--ids', '3,17', ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
  const fromEnv = cli([], { TFJS_BACKEND: 'cpu' });
  assert.equal(fromEnv.status, 0, fromEnv.stderr);
  assert.match(fromEnv.stderr, /^\[backend\] cpu$/m);
  assert.equal((JSON.parse(fromEnv.stdout) as { logits: number[][] }).logits.length, 2);
  const flagWins = cli(['--backend', 'wasm'], { TFJS_BACKEND: 'cpu' });
  assert.equal(flagWins.status, 0, flagWins.stderr);
  assert.match(flagWins.stderr, /^\[backend\] wasm, 1 thread\(s\)$/m);
});
