// Why kernels.ts exists, measured: on tfjs-wasm a plain 2-D matMul is fast (XNNPACK), a transposed or batched
// one is not. Prints ms and GFLOP/s for three products of the same size (docs/tfjs-on-cpu.md quotes a run).
// Run: npx tsx scripts/matmul-wasm.ts
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend';

await initBackend('wasm', { quiet: true });
const M = 256, K = 256, N = 256;
const a = tf.randomNormal([M, K]), b = tf.randomNormal([K, N]), bt = tf.randomNormal([N, K]);
const a3 = tf.randomNormal([8, 128, K]), b3 = tf.randomNormal([8, K, 128]); // the same FLOPs as one 256^3 product
function time(label: string, f: () => tf.Tensor, flops: number): void {
  for (let i = 0; i < 3; i++) tf.dispose(f());
  const reps = 20;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    const y = f();
    y.dataSync(); // wait for the result
    y.dispose();
  }
  const ms = (performance.now() - t0) / reps;
  console.log(`${label.padEnd(44)} ${ms.toFixed(2).padStart(8)} ms  ${(flops / ms / 1e6).toFixed(2).padStart(6)} GFLOP/s`);
}
time('matMul(a, b)          [256,256] x [256,256]', () => tf.matMul(a, b), 2 * M * K * N);
time('matMul(a, bT, false, true) transposed b', () => tf.matMul(a, bt, false, true), 2 * M * K * N);
time('matMul batched [8,128,256] x [8,256,128]', () => tf.matMul(a3, b3), 2 * 8 * 128 * K * 128);
