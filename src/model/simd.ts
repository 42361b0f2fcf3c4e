/**
 * The project's own SIMD kernels (src/model/wasm/decode.wat, bytes in decode_wasm.ts), instantiated once per
 * wasm backend memory: the module imports TensorFlow.js's WebAssembly.Memory, so its functions take byte
 * offsets of tfjs tensors on the heap and read and write them in place.
 *
 * Users: the fused decode step (decode.ts: attention, RMSNorm, SwiGLU, adds) and the batched products of the
 * attention core (kernels.ts: `gemm`). What it is not: a tfjs backend; callers own the tensors they point at.
 */
import { DECODE_WASM_BASE64 } from './decode_wasm';

/** The WebAssembly JS API, typed here: the project's lib (ES2022, no DOM) does not declare it. */
export interface WasmMemory {
  buffer: ArrayBuffer;
}
export const WA = (globalThis as unknown as {
  WebAssembly: {
    Memory: new (d: { initial: number }) => WasmMemory;
    Module: new (bytes: Uint8Array) => object;
    Instance: new (m: object, imports: object) => { exports: Record<string, unknown> };
  };
}).WebAssembly;

/** The module's exports (see decode.wat for each one's layout). All pointers are byte offsets. */
export interface SimdKernels {
  memory: WasmMemory;
  attn: (
    q: number, qstride: number, kT: number, v: number, out: number, ostride: number, scores: number, starts: number,
    rows: number, kvh: number, g: number, hd: number, cap: number, tk: number, scale: number,
  ) => void;
  rmsNorm: (x: number, w: number, y: number, rows: number, d: number, eps: number) => void;
  siluMul: (gu: number, out: number, rows: number, f: number) => void;
  addInto: (x: number, y: number, n: number) => void;
  /** c[i] = a[i] @ b[i], i < batch; a [m, k], b [k, p] (batch stride bstep bytes, 0 = shared), c [m, p]. */
  gemm: (a: number, b: number, c: number, batch: number, m: number, k: number, p: number, bstep: number) => void;
}

let cached: SimdKernels | undefined;

/** The kernels on `memory` (a non-shared WebAssembly.Memory: the single-threaded wasm build). */
export function simdKernels(memory: WasmMemory): SimdKernels {
  if (cached && cached.memory === memory) return cached;
  const bytes = Uint8Array.from(Buffer.from(DECODE_WASM_BASE64, 'base64'));
  const x = new WA.Instance(new WA.Module(bytes), { env: { memory } }).exports;
  cached = {
    memory,
    attn: x.attn_decode as SimdKernels['attn'],
    rmsNorm: x.rms_norm as SimdKernels['rmsNorm'],
    siluMul: x.silu_mul as SimdKernels['siluMul'],
    addInto: x.add_into as SimdKernels['addInto'],
    gemm: x.gemm as SimdKernels['gemm'],
  };
  return cached;
}

/** True when `memory` can host the kernels (not the threaded build's SharedArrayBuffer memory). */
export function simdUsable(memory: unknown): memory is WasmMemory {
  if (!memory || typeof memory !== 'object' || !('buffer' in memory)) return false;
  const buf = (memory as WasmMemory).buffer;
  return !(typeof SharedArrayBuffer !== 'undefined' && buf instanceof SharedArrayBuffer);
}
