/**
 * Choosing the TensorFlow.js backend, once per process, and reading tensors back in a backend-neutral way.
 *
 * Order for 'auto': tfjs-node-gpu (CUDA) if it can be loaded, then the REAL tfjs-node (native TensorFlow), then
 * wasm. `cpu` (pure JS, ~40x slower than wasm for training) only when asked by name. 'webgpu' (Dawn, see
 * webgpu.ts) only when asked by name, never by 'auto' (issue 5 decides when it should be).
 * Our node_modules/@tensorflow/tfjs-node is a local shim that re-exports the pure-JS tfjs (for danfojs-node,
 * see shims/); it is detected and skipped, since "using" it would silently mean cpu.
 *
 * What it is not: a device manager. One backend per process; the first call decides and later calls return it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { NODE_MODULES, ROOT } from '../util/paths';
import { registerWasmKernels } from './kernels';

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'webgpu';

const requireHere = createRequire(path.join(ROOT, 'package.json'));
let chosen: string | undefined;

/** True when `pkg` resolves to the real native package (not absent, not our re-export shim). */
function isRealNativePackage(pkg: string): boolean {
  let pj: string;
  try {
    pj = requireHere.resolve(`${pkg}/package.json`);
  } catch {
    return false;
  }
  try {
    const meta = JSON.parse(fs.readFileSync(pj, 'utf8')) as { binary?: unknown; description?: string };
    // The real packages declare a native `binary` (node-pre-gyp); the shim does not and says so.
    return meta.binary !== undefined && !/shim/i.test(meta.description ?? '');
  } catch {
    return false;
  }
}

async function tryNative(pkg: string): Promise<boolean> {
  if (!isRealNativePackage(pkg)) return false;
  try {
    requireHere(pkg); // registers the 'tensorflow' backend on the shared tfjs-core
    return await tf.setBackend('tensorflow');
  } catch (e) {
    console.error(`[backend] ${pkg} is installed but failed to load: ${(e as Error).message}`);
    return false;
  }
}

async function useWasm(): Promise<boolean> {
  setWasmPaths(path.join(NODE_MODULES, '@tensorflow', 'tfjs-backend-wasm', 'dist') + path.sep);
  const ok = await tf.setBackend('wasm');
  if (ok) registerWasmKernels();
  return ok;
}

/**
 * Select and initialise the backend. `name` defaults to env TFJS_BACKEND, else 'auto'.
 * Prints the choice once (stderr, so JSON on stdout stays clean) and returns the active backend's name.
 */
export async function initBackend(name?: BackendName | string): Promise<string> {
  if (chosen) return chosen;
  const want = (name ?? process.env.TFJS_BACKEND ?? 'auto') as BackendName;
  let ok = false;
  switch (want) {
    case 'auto':
      ok = (await tryNative('@tensorflow/tfjs-node-gpu')) || (await tryNative('@tensorflow/tfjs-node')) || (await useWasm());
      break;
    case 'tensorflow':
      ok = (await tryNative('@tensorflow/tfjs-node-gpu')) || (await tryNative('@tensorflow/tfjs-node'));
      if (!ok) throw new Error("backend 'tensorflow' asked for, but neither @tensorflow/tfjs-node-gpu nor the real @tensorflow/tfjs-node is installed");
      break;
    case 'wasm':
      ok = await useWasm();
      break;
    case 'cpu':
      ok = await tf.setBackend('cpu');
      break;
    case 'webgpu': {
      // The GPU path (issue 5): Dawn set-up order lives in webgpu.ts.
      const { setupWebGPU } = await import('./webgpu');
      const info = await setupWebGPU(tf);
      ok = true;
      console.error(`[backend] webgpu adapter: ${info.vendor} ${info.device} ${info.description}`.trim());
      break;
    }
    default:
      throw new Error(`unknown backend '${want}' (auto | wasm | cpu | tensorflow | webgpu)`);
  }
  await tf.ready();
  if (!ok) throw new Error(`could not initialise backend '${want}'`);
  chosen = tf.getBackend();
  console.error(`[backend] ${chosen}${want === 'auto' ? ' (auto)' : ''}`);
  return chosen;
}

/**
 * Read a tensor's values. Use this instead of dataSync() in library code: on webgpu synchronous read-back
 * throws in Node.
 */
export async function readback(t: tf.Tensor): Promise<Float32Array | Int32Array | Uint8Array> {
  return (await t.data()) as Float32Array | Int32Array | Uint8Array;
}
