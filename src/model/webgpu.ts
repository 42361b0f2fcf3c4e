/**
 * WebGPU in Node through Dawn (the `webgpu` npm package), as a TensorFlow.js backend.
 *
 * This is the one place that knows the set-up order, which matters:
 *   1. `webgpu`'s `globals` (GPUBufferUsage, ...) go onto globalThis, and `navigator.gpu` is created,
 *   2. only THEN is `@tensorflow/tfjs-backend-webgpu` imported (it reads navigator.gpu when it registers),
 *   3. `tf.setBackend('webgpu')`.
 * And the one rule the rest of the code must keep: on webgpu `dataSync()`/`arraySync()` throw in Node
 * (tfjs's synchronous read-back needs OffscreenCanvas). Read tensors with `await t.data()` — see `readback`
 * in backend.ts, which every module uses.
 *
 * One kernel is patched: tfjs-webgpu's AddN binds every input as a storage buffer in one shader, and WebGPU
 * allows `maxStorageBuffersPerShaderStage` (8 by default) per stage, so `tf.addN` of 28 gradients (LoRA's global
 * norm, say) fails validation and silently yields zeros. `chunkAddN` sums in rounds of at most limit-1 inputs
 * (tfjs-webgpu's Concat already splits this way).
 *
 * What it is not: a GPU abstraction. Dawn picks a Vulkan adapter; on a machine without a GPU that is Mesa's
 * software rasteriser (lavapipe, adapter 'llvmpipe'), which is correct but slow. A run that asked for a GPU
 * never silently lands on it: software adapters are refused unless `allowSoftware` is set (tests and CI set it
 * through TFJS_WEBGPU_ALLOW_SOFTWARE=1, to check that every op works, not to be fast).
 */

/** What Dawn reports about the adapter it chose. */
export interface WebGPUAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software rasterisers (llvmpipe/lavapipe, SwiftShader) and fallback adapters. */
  software: boolean;
}

export interface WebGPUOptions {
  /** Accept a software adapter (lavapipe). Default: env TFJS_WEBGPU_ALLOW_SOFTWARE === '1'. */
  allowSoftware?: boolean;
  /** Dawn toggles/options, e.g. ['adapter=NVIDIA', 'backend=vulkan']. Default: env TFJS_WEBGPU_DAWN_OPTIONS (comma list). */
  dawnOptions?: string[];
}

/** Raised when no usable adapter exists; the message says what to install. */
export class WebGPUUnavailable extends Error {}

let cachedInfo: WebGPUAdapterInfo | undefined;

function isSoftware(info: { vendor?: string; architecture?: string; device?: string; description?: string }, fallback: boolean): boolean {
  const s = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`.toLowerCase();
  return fallback || /llvmpipe|lavapipe|swiftshader|software/.test(s);
}

/**
 * Create navigator.gpu with Dawn and ask it for an adapter, without touching TensorFlow.js.
 * Throws WebGPUUnavailable with an actionable message when the package, Vulkan or an adapter is missing.
 */
export async function probeWebGPU(opts: WebGPUOptions = {}): Promise<WebGPUAdapterInfo> {
  if (cachedInfo) return cachedInfo;
  const dawnOptions = opts.dawnOptions ?? (process.env.TFJS_WEBGPU_DAWN_OPTIONS ?? '').split(',').filter((s) => s.length > 0);
  let mod: { create: (o: string[]) => unknown; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (e) {
    throw new WebGPUUnavailable(
      `the 'webgpu' package (Dawn for Node) could not be loaded: ${(e as Error).message}. ` +
        `It is an optionalDependency: run 'npm install' on linux-x64/arm64, macOS or Windows with glibc >= 2.34.`,
    );
  }
  Object.assign(globalThis, mod.globals);
  let gpu: { requestAdapter: () => Promise<unknown> };
  try {
    gpu = mod.create(dawnOptions) as typeof gpu;
  } catch (e) {
    throw new WebGPUUnavailable(
      `Dawn could not start (${(e as Error).message}). It needs libvulkan.so.1 and a Vulkan driver: ` +
        `a GPU driver, or Mesa's lavapipe (on Debian 12: scripts/setup-vulkan.sh).`,
    );
  }
  // Node 21+ defines a read-only navigator; define ours either way.
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  const adapter = (await gpu.requestAdapter()) as
    | { info?: Record<string, string>; isFallbackAdapter?: boolean }
    | null;
  if (!adapter) {
    throw new WebGPUUnavailable(
      'Dawn found no WebGPU adapter. Install a Vulkan driver: the GPU vendor\'s, or Mesa >= 25 lavapipe for a ' +
        'software adapter (Debian 12: scripts/setup-vulkan.sh; Mesa 22 is rejected by Dawn).',
    );
  }
  const raw = adapter.info ?? {};
  cachedInfo = {
    vendor: raw.vendor ?? '',
    architecture: raw.architecture ?? '',
    device: raw.device ?? '',
    description: raw.description ?? '',
    software: isSoftware(raw, adapter.isFallbackAdapter === true),
  };
  return cachedInfo;
}

/**
 * Make 'webgpu' the active TensorFlow.js backend. Returns the adapter it runs on.
 * Refuses a software adapter unless allowed (see the file comment).
 */
export async function setupWebGPU(
  tf: { setBackend: (n: string) => Promise<boolean>; ready: () => Promise<void>; getBackend: () => string },
  opts: WebGPUOptions = {},
): Promise<WebGPUAdapterInfo> {
  const allowSoftware = opts.allowSoftware ?? process.env.TFJS_WEBGPU_ALLOW_SOFTWARE === '1';
  const info = await probeWebGPU(opts);
  if (info.software && !allowSoftware) {
    throw new WebGPUUnavailable(
      `the only WebGPU adapter is a software one (${info.description || info.device}); a run that asked for a GPU ` +
        `does not fall back to it. Set TFJS_WEBGPU_ALLOW_SOFTWARE=1 to use it anyway (correct, but slow).`,
    );
  }
  await import('@tensorflow/tfjs-backend-webgpu'); // registers the backend; must come after navigator.gpu exists
  const ok = await tf.setBackend('webgpu');
  await tf.ready();
  if (!ok || tf.getBackend() !== 'webgpu') {
    throw new WebGPUUnavailable(`tf.setBackend('webgpu') failed on adapter ${info.description || info.device}`);
  }
  chunkAddN(tf as unknown as KernelRegistry);
  return info;
}

interface TensorInfoLike {
  dataId: object;
}
interface KernelArgs {
  inputs: unknown;
  backend: { device: { limits: { maxStorageBuffersPerShaderStage: number } }; disposeData(id: object): void };
  attrs?: unknown;
}
interface KernelRegistry {
  getKernel(name: string, backend: string): { kernelFunc: (a: KernelArgs) => TensorInfoLike } | undefined;
  unregisterKernel(name: string, backend: string): void;
  registerKernel(k: { kernelName: string; backendName: string; kernelFunc: (a: KernelArgs) => TensorInfoLike }): void;
}

let addNPatched = false;

/** Replace webgpu's AddN with one that sums at most (storage-buffer limit - 1) inputs per shader. */
function chunkAddN(tf: KernelRegistry): void {
  if (addNPatched) return;
  const stock = tf.getKernel('AddN', 'webgpu');
  if (!stock) return;
  tf.unregisterKernel('AddN', 'webgpu');
  tf.registerKernel({
    kernelName: 'AddN',
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const per = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
      let xs = inputs as TensorInfoLike[];
      const temps: TensorInfoLike[] = [];
      while (xs.length > per) {
        const next: TensorInfoLike[] = [];
        for (let i = 0; i < xs.length; i += per) {
          const chunk = xs.slice(i, i + per);
          if (chunk.length === 1) next.push(chunk[0]);
          else {
            const partial = stock.kernelFunc({ inputs: chunk, backend, attrs });
            temps.push(partial);
            next.push(partial);
          }
        }
        xs = next;
      }
      const out = stock.kernelFunc({ inputs: xs, backend, attrs });
      for (const t of temps) backend.disposeData(t.dataId); // intermediate sums: not tensors the engine tracks
      return out;
    },
  });
  addNPatched = true;
}
