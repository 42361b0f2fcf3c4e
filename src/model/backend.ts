/**
 * Choosing the TensorFlow.js backend, once per process, and reading tensors back in a backend-neutral way.
 *
 * Order for 'auto': tfjs-node-gpu (CUDA) if it can be loaded, then webgpu (Dawn, see webgpu.ts) when a HARDWARE
 * adapter is present, then the REAL tfjs-node (native TensorFlow), then wasm. `cpu` (pure JS, ~40x slower than
 * wasm for training) only when asked by name. 'auto' never lands on a software WebGPU adapter (lavapipe): that
 * only happens when 'webgpu' is asked for by name with TFJS_WEBGPU_ALLOW_SOFTWARE=1 (tests).
 * Our node_modules/@tensorflow/tfjs-node is a local shim that re-exports the pure-JS tfjs (for danfojs-node,
 * see shims/); it is detected and skipped, since "using" it would silently mean cpu.
 *
 * What it is not: a device manager. One backend per process; the first call decides and later calls return it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { BackendWasm, getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
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

/**
 * Opt-in (env TFJS_WASM_THREADS=n, n > 1): load tfjs's multi-threaded SIMD wasm build in Node, which tfjs itself
 * only enables in browsers. Its Emscripten glue supports Node's worker_threads; what tfjs's loader lacks is a
 * worker script on disk (it makes a Blob URL) and a main-script path, and the C++ side sizes its XNNPACK
 * thread pool from os.cpus().length / 2 at start-up (so we report 2n cores while it initialises).
 * Matmuls then use n threads; everything else stays single-threaded. On a loaded machine the pool's
 * spin-waits make it slower, which is why it is not the default. A process using it must exit explicitly
 * (the pool thread keeps Node alive); run.ts does.
 */
async function registerThreadedWasm(threads: number): Promise<void> {
  const os = requireHere('os') as { cpus: () => unknown[]; tmpdir: () => string };
  const outDir = path.join(NODE_MODULES, '@tensorflow', 'tfjs-backend-wasm', 'wasm-out');
  const distDir = path.join(NODE_MODULES, '@tensorflow', 'tfjs-backend-wasm', 'dist');
  const mainScript = path.join(outDir, 'tfjs-backend-wasm-threaded-simd.js');
  const factory = requireHere(mainScript) as (cfg: Record<string, unknown>) => Promise<Record<string, unknown>>;
  const { wasmWorkerContents } = requireHere(path.join(outDir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  const workerPath = path.join(os.tmpdir(), `tfjs-wasm-threaded-simd-${process.pid}.worker.cjs`);
  fs.writeFileSync(workerPath, wasmWorkerContents.replace(/\n/g, '\\n')); // as tfjs does before making its Blob
  const realCpus = os.cpus;
  os.cpus = () => new Array(2 * threads).fill(realCpus()[0]);
  let mod: Record<string, unknown> & { cwrap: (n: string, r: string | null, a: string[]) => unknown };
  try {
    mod = (await factory({
      locateFile: (p: string, prefix: string) =>
        p.endsWith('.worker.js') ? workerPath : p.endsWith('.wasm') ? path.join(distDir, 'tfjs-backend-wasm-threaded-simd.wasm') : prefix + p,
      mainScriptUrlOrBlob: mainScript,
    })) as typeof mod;
  } finally {
    os.cpus = realCpus;
  }
  mod.tfjs = {
    init: mod.cwrap('init', null, []),
    initWithThreadsCount: mod.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: mod.cwrap('get_threads_count', 'number', []),
    registerTensor: mod.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: mod.cwrap('dispose_data', null, ['number']),
    dispose: mod.cwrap('dispose', null, []),
  };
  setThreadsCount(threads);
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', () => new BackendWasm(mod as unknown as ConstructorParameters<typeof BackendWasm>[0]), 2);
}

async function useWasm(): Promise<boolean> {
  const threads = Number(process.env.TFJS_WASM_THREADS ?? '1');
  if (threads > 1) {
    try {
      await registerThreadedWasm(Math.min(4, Math.floor(threads)));
    } catch (e) {
      console.error(`[backend] multi-threaded wasm failed to load (${(e as Error).message}); using single-threaded wasm`);
    }
  }
  setWasmPaths(path.join(NODE_MODULES, '@tensorflow', 'tfjs-backend-wasm', 'dist') + path.sep);
  const ok = await tf.setBackend('wasm');
  if (ok) registerWasmKernels();
  return ok;
}

/** A GPU device node exists (Linux: NVIDIA or a DRM render node; macOS/Windows: assume so). Cheap, no Dawn. */
function gpuDevicePresent(): boolean {
  if (process.platform !== 'linux') return true;
  if (fs.existsSync('/dev/nvidia0')) return true;
  try {
    return fs.readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  } catch {
    return false;
  }
}

/** For 'auto': webgpu only on a hardware adapter; the probe starts Dawn, so it runs only when a GPU is likely. */
async function tryHardwareWebGPU(): Promise<boolean> {
  if (!gpuDevicePresent() || process.env.TFJS_WEBGPU_ALLOW_SOFTWARE === '1') return false;
  try {
    const { probeWebGPU, setupWebGPU } = await import('./webgpu');
    const info = await probeWebGPU();
    if (info.software) return false;
    await setupWebGPU(tf, { allowSoftware: false });
    console.error(`[backend] webgpu adapter: ${info.vendor} ${info.device} ${info.description}`.trim());
    return true;
  } catch {
    return false; // no package, no Vulkan, no adapter: fall through to the CPU backends
  }
}

/**
 * Select and initialise the backend. `name` defaults to env TFJS_BACKEND, else 'auto'.
 * Prints the choice once (stderr, so JSON on stdout stays clean; not with `quiet`, which data-parallel
 * replicas use) and returns the active backend's name.
 */
export async function initBackend(name?: BackendName | string, opts: { quiet?: boolean } = {}): Promise<string> {
  if (chosen) return chosen;
  const want = (name ?? process.env.TFJS_BACKEND ?? 'auto') as BackendName;
  let ok = false;
  switch (want) {
    case 'auto':
      ok =
        (await tryNative('@tensorflow/tfjs-node-gpu')) ||
        (await tryHardwareWebGPU()) ||
        (await tryNative('@tensorflow/tfjs-node')) ||
        (await useWasm());
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
  const threads = chosen === 'wasm' ? `, ${getThreadsCount()} thread(s)` : '';
  if (!opts.quiet) console.error(`[backend] ${chosen}${want === 'auto' ? ' (auto)' : ''}${threads}`);
  return chosen;
}

/**
 * Read a tensor's values. Use this instead of dataSync() in library code: on webgpu synchronous read-back
 * throws in Node.
 */
export async function readback(t: tf.Tensor): Promise<Float32Array | Int32Array | Uint8Array> {
  return (await t.data()) as Float32Array | Int32Array | Uint8Array;
}
