/**
 * Fast paths for TensorFlow.js on wasm: a few kernels registered on the wasm backend, and the model's hot ops
 * (linear layer with LoRA, attention core, embedding, LM head + log-softmax) with hand-written gradients.
 *
 * Why (measured, see docs/tfjs-on-cpu.md): on wasm only plain 2-D non-transposed matmuls are fast (XNNPACK);
 * transposed or batched ones run a scalar loop ~15x slower, and autodiff of matMul produces exactly those. So each
 * op here is a `tf.customGrad` whose forward and backward use 2-D products only, with transposes done explicitly
 * (a memory pass, cheap next to a product) and frozen weights pre-transposed once.
 * wasm also lacks UnsortedSegmentSum (the gradient of gather) and its Unpack copies the whole input per output;
 * both are replaced below.
 *
 * What it is not: model code. Nothing here knows layer names or configs; qwen2.ts composes these ops.
 * The ops are backend-neutral (they only call tf.*); only the kernel registrations are wasm-specific.
 */
import * as tf from '@tensorflow/tfjs';
import { simdKernels, simdUsable, type WasmMemory } from './simd';

// ---------------------------------------------------------------------------------------------------------------
// Kernels registered on the wasm backend.
// ---------------------------------------------------------------------------------------------------------------

interface WasmBackendLike {
  dataIdMap: { get(id: object): { memoryOffset: number; shape: number[] } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  readSync(id: object): Float32Array | Int32Array;
  wasm: { HEAPF32: Float32Array; HEAP32: Int32Array };
}

let registered = false;
const SLICED_MATMUL = 'TcgSlicedMatMul';

/** Copy x[begin : begin + size] into a new heap tensor, one memmove per contiguous innermost run. */
function heapSlice(be: WasmBackendLike, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const out = be.makeOutput(size, x.dtype);
  const total = size.reduce((a, s) => a * s, 1);
  if (total === 0) return out;
  const heap = x.dtype === 'float32' ? be.wasm.HEAPF32 : be.wasm.HEAP32; // after makeOutput (heap may grow)
  if (x.dtype !== 'float32' && x.dtype !== 'int32') throw new Error(`Slice: dtype ${x.dtype} not supported here`);
  const rank = x.shape.length;
  const strides = new Array(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1] * x.shape[i + 1];
  // Merge trailing axes that are taken whole into the contiguous run.
  let k = rank - 1;
  let run = size[k];
  while (k > 0 && size[k] === x.shape[k] && begin[k] === 0) {
    k--;
    run *= size[k];
  }
  const xOff = be.dataIdMap.get(x.dataId).memoryOffset >>> 2;
  let oOff = be.dataIdMap.get(out.dataId).memoryOffset >>> 2;
  const idx = new Array(k).fill(0); // index over axes 0..k-1 of the output
  for (;;) {
    let src = xOff + begin[k] * strides[k];
    for (let a = 0; a < k; a++) src += (begin[a] + idx[a]) * strides[a];
    heap.copyWithin(oOff, src, src + run);
    oOff += run;
    let a = k - 1;
    while (a >= 0) {
      if (++idx[a] < size[a]) break;
      idx[a] = 0;
      a--;
    }
    if (a < 0) break;
  }
  return out;
}

/** Register our wasm kernels (idempotent). Called by initBackend after the wasm backend is ready. */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  // Unpack (tf.unstack): read the heap once and copy each contiguous output block (the stock kernel slices the
  // whole input per output).
  try {
    tf.unregisterKernel('Unpack', 'wasm');
  } catch {
    /* not registered */
  }
  tf.registerKernel({
    kernelName: 'Unpack',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const be = backend as unknown as WasmBackendLike;
      const x = inputs.value as tf.TensorInfo;
      const axis = (attrs as { axis: number }).axis < 0 ? (attrs as { axis: number }).axis + x.shape.length : (attrs as { axis: number }).axis;
      const outShape = x.shape.filter((_, i) => i !== axis);
      const n = x.shape[axis];
      const outer = x.shape.slice(0, axis).reduce((a, s) => a * s, 1);
      const inner = x.shape.slice(axis + 1).reduce((a, s) => a * s, 1);
      const outs: tf.TensorInfo[] = [];
      for (let i = 0; i < n; i++) outs.push(be.makeOutput(outShape, x.dtype));
      // Views after all allocations: makeOutput may grow (and so replace) the heap buffer.
      const heap = x.dtype === 'int32' ? be.wasm.HEAP32 : be.wasm.HEAPF32;
      const xOff = be.dataIdMap.get(x.dataId).memoryOffset >>> 2;
      for (let i = 0; i < n; i++) {
        const oOff = be.dataIdMap.get(outs[i].dataId).memoryOffset >>> 2;
        for (let o = 0; o < outer; o++) {
          const src = xOff + (o * n + i) * inner;
          heap.copyWithin(oOff + o * inner, src, src + inner);
        }
      }
      return outs;
    },
  });
  // Slice and SplitV (tf.slice, tf.split): copy only the selected rows straight on the heap. The stock kernels
  // first copy the WHOLE input out of the heap per call (readSync), which made splitting [N, q|k|v] columns
  // cost more than the projection itself.
  for (const name of ['Slice', 'SplitV']) {
    try {
      tf.unregisterKernel(name, 'wasm');
    } catch {
      /* not registered */
    }
  }
  tf.registerKernel({
    kernelName: 'Slice',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const be = backend as unknown as WasmBackendLike;
      const x = inputs.x as tf.TensorInfo;
      const { begin, size } = attrs as unknown as { begin: number[]; size: number[] };
      const [b, sz] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, begin, size);
      return heapSlice(be, x, b, sz);
    },
  });
  tf.registerKernel({
    kernelName: 'SplitV',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const be = backend as unknown as WasmBackendLike;
      const x = inputs.x as tf.TensorInfo;
      const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number[] | number; axis: number };
      const ax = axis < 0 ? axis + x.shape.length : axis;
      const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, ax);
      const begin = new Array(x.shape.length).fill(0);
      const outs: tf.TensorInfo[] = [];
      for (const s of sizes) {
        const sz = x.shape.slice();
        sz[ax] = s;
        outs.push(heapSlice(be, x, begin.slice(), sz));
        begin[ax] += s;
      }
      return outs;
    },
  });
  // SlicedMatMul: a [n, m, k] x b [n, k, p] (or b [1, k, p] shared) in one call of the SIMD `gemm` of
  // src/model/wasm/decode.wat, on the heap in place: 4 x 8 register blocks, no packing. Measured against the
  // previous form (n 2-D XNNPACK products on views, each creating and packing an operator) on the attention
  // shapes of training: 1.4-3x faster, bit-identical (docs/benchmarks.md).
  tf.registerKernel({
    kernelName: SLICED_MATMUL,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const be = backend as unknown as WasmBackendLike & { wasm: { asm: { memory: WasmMemory } } };
      const a = inputs.a as tf.TensorInfo;
      const b = inputs.b as tf.TensorInfo;
      const [n, m, k] = a.shape;
      const p = b.shape[2];
      const out = be.makeOutput([n, m, p], 'float32');
      const off = (t: tf.TensorInfo) => be.dataIdMap.get(t.dataId).memoryOffset;
      simdKernels(be.wasm.asm.memory).gemm(off(a), off(b), off(out), n, m, k, p, b.shape[0] === 1 ? 0 : k * p * 4);
      return out;
    },
  });
  // GatherV2 along axis 0 (embedding rows, RoPE table rows): one memmove per index. The stock kernel took
  // ~20 ms to gather 3k rows of 128. Other axes / batchDims go to the stock kernel.
  const stockGather = tf.getKernel('GatherV2', 'wasm');
  if (stockGather) {
    tf.unregisterKernel('GatherV2', 'wasm');
    tf.registerKernel({
      ...stockGather,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args;
        const be = backend as unknown as WasmBackendLike;
        const x = inputs.x as tf.TensorInfo;
        const ind = inputs.indices as tf.TensorInfo;
        const { axis, batchDims } = attrs as unknown as { axis: number; batchDims: number };
        if ((axis !== 0 && axis !== -x.shape.length) || batchDims !== 0 || ind.dtype !== 'int32' || (x.dtype !== 'float32' && x.dtype !== 'int32')) {
          return stockGather.kernelFunc(args);
        }
        const rows = x.shape[0];
        const inner = x.shape.slice(1).reduce((a, b) => a * b, 1);
        const idx = be.readSync(ind.dataId) as Int32Array; // a copy, small
        const out = be.makeOutput([...ind.shape, ...x.shape.slice(1)], x.dtype);
        const heap = x.dtype === 'float32' ? be.wasm.HEAPF32 : be.wasm.HEAP32;
        const xOff = be.dataIdMap.get(x.dataId).memoryOffset >>> 2;
        const oOff = be.dataIdMap.get(out.dataId).memoryOffset >>> 2;
        for (let i = 0; i < idx.length; i++) {
          const r = idx[i];
          if (r < 0 || r >= rows) throw new Error(`GatherV2: the index value ${r} is not in [0, ${rows - 1}]`);
          heap.copyWithin(oOff + i * inner, xOff + r * inner, xOff + (r + 1) * inner);
        }
        return out;
      },
    });
  }
  // Concat: the inverse of our SplitV (the gradient of split, and SwiGLU's backward), copied on the heap.
  const stockConcat = tf.getKernel('Concat', 'wasm');
  if (stockConcat) {
    tf.unregisterKernel('Concat', 'wasm');
    tf.registerKernel({
      ...stockConcat,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args;
        const be = backend as unknown as WasmBackendLike;
        const xs = (inputs as unknown as tf.TensorInfo[]).filter((t) => t.shape.reduce((a, b) => a * b, 1) > 0);
        const dtype = xs.length > 0 ? xs[0].dtype : 'float32';
        if (xs.length < 2 || (dtype !== 'float32' && dtype !== 'int32') || xs.some((t) => t.dtype !== dtype)) return stockConcat.kernelFunc(args);
        const rank = xs[0].shape.length;
        let ax = (attrs as unknown as { axis: number }).axis;
        if (ax < 0) ax += rank;
        const outShape = xs[0].shape.slice();
        outShape[ax] = xs.reduce((a, t) => a + t.shape[ax], 0);
        const outer = outShape.slice(0, ax).reduce((a, b) => a * b, 1);
        const inner = outShape.slice(ax + 1).reduce((a, b) => a * b, 1);
        const out = be.makeOutput(outShape, dtype);
        const heap = dtype === 'float32' ? be.wasm.HEAPF32 : be.wasm.HEAP32;
        const oOff = be.dataIdMap.get(out.dataId).memoryOffset >>> 2;
        const rowOut = outShape[ax] * inner;
        let col = 0;
        for (const t of xs) {
          const run = t.shape[ax] * inner;
          const tOff = be.dataIdMap.get(t.dataId).memoryOffset >>> 2;
          if (outer === 1) heap.copyWithin(oOff + col, tOff, tOff + run);
          else for (let o = 0; o < outer; o++) heap.copyWithin(oOff + o * rowOut + col, tOff + o * run, tOff + (o + 1) * run);
          col += run;
        }
        return out;
      },
    });
  }
  // Identity (tf.clone, and every tensor the gradient tape saves): share the buffer instead of copying it.
  // Safe because no wasm kernel writes into its inputs; Reshape already shares buffers the same way.
  try {
    tf.unregisterKernel('Identity', 'wasm');
  } catch {
    /* not registered */
  }
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo;
      (backend as unknown as { incRef(id: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
  // UnsortedSegmentSum (the gradient of tf.gather): plain JS scatter-add.
  try {
    tf.registerKernel({
      kernelName: 'UnsortedSegmentSum',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const be = backend as unknown as WasmBackendLike;
        const x = inputs.x as tf.TensorInfo;
        const seg = inputs.segmentIds as tf.TensorInfo;
        const numSegments = (attrs as { numSegments: number }).numSegments;
        const ids = be.readSync(seg.dataId) as Int32Array;
        const rows = ids.length;
        const inner = x.shape.slice(seg.shape.length).reduce((a, s) => a * s, 1);
        const xv = be.readSync(x.dataId) as Float32Array;
        const out = be.makeOutput([numSegments, ...x.shape.slice(seg.shape.length)], 'float32');
        const o = new Float32Array(be.wasm.HEAPF32.buffer, be.dataIdMap.get(out.dataId).memoryOffset, numSegments * inner);
        o.fill(0);
        for (let r = 0; r < rows; r++) {
          const s = ids[r];
          if (s < 0 || s >= numSegments) continue;
          const a = s * inner;
          const b = r * inner;
          for (let j = 0; j < inner; j++) o[a + j] += xv[b + j];
        }
        return out;
      },
    });
  } catch {
    /* already registered (a later tfjs may ship it) */
  }
}

/** tf.customGrad with loose typing of the forward's arguments (tfjs's own types do not export the func type). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function custom<T extends tf.Tensor>(f: (...args: any[]) => { value: T; gradFunc: (dy: any, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] }): (...inputs: tf.Tensor[]) => T {
  return tf.customGrad(f as never) as unknown as (...inputs: tf.Tensor[]) => T;
}

// ---------------------------------------------------------------------------------------------------------------
// Batched 2-D products.
// ---------------------------------------------------------------------------------------------------------------

/**
 * a [N, M, K] @ b [N, K, P] -> [N, M, P]. On wasm, one SIMD call over all slices (the SlicedMatMul kernel
 * above; tfjs's own batched matMul is a scalar loop there); a single big slice as one 2-D XNNPACK product.
 * No gradient: used inside the custom-gradient ops only.
 */
export function bmm(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const [n, m, k] = a.shape;
  const p = b.shape[2];
  if (n === 1 && m * k * p >= 16384) return tf.matMul(a.reshape([m, k]), b.reshape([k, p])).reshape([1, m, p]);
  if (!slicedMatMulHere()) return tf.matMul(a, b);
  return tf.engine().runKernel(SLICED_MATMUL, { a, b }, {}) as tf.Tensor3D;
}

/** a [N, M, K] @ b[N, P, K]^T -> [N, M, P]: b transposed (a memory pass), then bmm; batched matMul elsewhere. */
export function bmmT(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (!slicedMatMulHere()) return tf.matMul(a, b, false, true);
  return bmm(a, t3(b));
}

/** The SIMD SlicedMatMul runs here: wasm backend, single-threaded build (its memory is not shared). */
function slicedMatMulHere(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  return simdUsable((tf.backend() as unknown as { wasm?: { asm?: { memory?: unknown } } }).wasm?.asm?.memory);
}

/** Swap the last two axes of a rank-3 tensor. */
function t3(x: tf.Tensor3D): tf.Tensor3D {
  return tf.transpose(x, [0, 2, 1]);
}

// ---------------------------------------------------------------------------------------------------------------
// Linear layer: y = x W^T + b  (+ LoRA: scaling * dropout(x) A^T B^T). HF weight layout W [out, in].
// ---------------------------------------------------------------------------------------------------------------

export interface LinearParams {
  /** [out, in] */
  W: tf.Variable;
  /** W^T [in, out], cached by the caller; only used when W is frozen. */
  WT?: tf.Tensor2D;
  /** [out] */
  b?: tf.Variable;
  lora?: {
    /** [r, in] */
    A: tf.Variable;
    /** [out, r] */
    B: tf.Variable;
    scaling: number;
    /** Inverted-dropout multiplier on x for the LoRA path, [N, in] (values 0 or 1/(1-p)); absent = no dropout. */
    dropoutMask?: tf.Tensor2D;
  };
}

/**
 * Pre-concatenated frozen weights of a projection group (no trainable weight, no active adapter): [sumOut, in]
 * and its transpose. Kept by the model across calls, so sampling neither re-concatenates nor makes XNNPACK
 * re-pack the weights on every token.
 */
export interface FusedFrozen {
  W: tf.Tensor2D;
  WT: tf.Tensor2D;
  /** Concatenated biases (zeros for projections without one); absent when none has a bias. */
  b?: tf.Tensor1D;
}

/** x [N, in] -> [N, out], differentiable w.r.t. x and every trainable parameter, with 2-D products only. */
export function linear(x: tf.Tensor2D, p: LinearParams): tf.Tensor2D {
  return linearGroup(x, [p]);
}

/**
 * Several projections of the same input, as ONE product: x [N, in] -> [N, sum(out_i)] (columns in order).
 * q/k/v share x, as do gate/up; one [in, sum(out)] matmul beats three small ones, and backward needs x^T once.
 *
 * LoRA without dropout is folded into the weight for the forward (W_eff = W + s B A, a tiny [out, in] product),
 * so the adapter costs no [N, r] x [r, out] product (K = r is the slowest shape for XNNPACK). Backward:
 *   dx = dy W_eff (one product for the group), g = dy_i B_i [N, r], dA_i = s (x^T g)^T, dB_i = s dy_i^T (x A_i^T).
 * Orientation matters on wasm: [big, K] x [K, small] runs ~20x faster than [small, K] x [K, big], so dA is
 * computed as x^T g (then a tiny transpose), never g^T x.
 * With dropout the adapter path stays separate: y_i += s (mask*x) A_i^T B_i^T.
 */
export function linearGroup(x: tf.Tensor2D, ps: LinearParams[], fused?: FusedFrozen): tf.Tensor2D {
  const outs = ps.map((p) => p.W.shape[0]);
  const inputs: tf.Tensor[] = [x];
  const slots = ps.map((p) => {
    const slot = { W: -1, b: -1, A: -1, B: -1 };
    if (p.W.trainable) slot.W = inputs.push(p.W) - 1;
    if (p.b && p.b.trainable) slot.b = inputs.push(p.b) - 1;
    if (p.lora) {
      slot.A = inputs.push(p.lora.A) - 1;
      slot.B = inputs.push(p.lora.B) - 1;
    }
    return slot;
  });
  const anyBias = ps.some((p) => p.b);
  const anyDrop = ps.some((p) => p.lora?.dropoutMask);
  const op = custom(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const xin = args[0] as tf.Tensor2D;
    // Effective weights, [out, in] and [in, out].
    const Weff: tf.Tensor2D[] = [];
    const WeffT: tf.Tensor2D[] = [];
    if (!fused) for (const p of ps) {
      let W: tf.Tensor2D = p.W as tf.Tensor2D;
      let WT: tf.Tensor2D = !p.W.trainable && p.WT ? p.WT : (tf.transpose(p.W) as tf.Tensor2D);
      if (p.lora && !p.lora.dropoutMask) {
        const BA = tf.mul(tf.matMul(p.lora.B, p.lora.A), p.lora.scaling) as tf.Tensor2D; // [out, in], tiny
        W = tf.add(W, BA);
        WT = tf.add(WT, tf.transpose(BA));
      }
      Weff.push(W);
      WeffT.push(WT);
    }
    const Wcat = fused ? fused.W : ps.length === 1 ? Weff[0] : (tf.concat(Weff, 0) as tf.Tensor2D); // [sumOut, in]
    const WcatT = fused ? fused.WT : ps.length === 1 ? WeffT[0] : (tf.concat(WeffT, 1) as tf.Tensor2D); // [in, sumOut]
    let y: tf.Tensor2D = tf.matMul(xin, WcatT);
    if (anyBias) {
      if (fused?.b) y = tf.add(y, fused.b);
      else {
        const bs = ps.map((p, i) => (p.b ? p.b : tf.zeros([outs[i]])));
        y = tf.add(y, bs.length === 1 ? bs[0] : tf.concat(bs, 0));
      }
    }
    if (anyDrop) {
      const extra = ps.map((p, i) => {
        if (!p.lora?.dropoutMask) return tf.zeros([xin.shape[0], outs[i]]);
        const xd = tf.mul(xin, p.lora.dropoutMask) as tf.Tensor2D;
        const xa = tf.matMul(xd, tf.transpose(p.lora.A) as tf.Tensor2D);
        return tf.mul(tf.matMul(xa, tf.transpose(p.lora.B) as tf.Tensor2D), p.lora.scaling);
      });
      y = tf.add(y, extra.length === 1 ? extra[0] : tf.concat(extra, 1));
    }
    // Backward reads only what goes through save() (closure-captured tensors may be disposed by then).
    const masks = ps.map((p) => p.lora?.dropoutMask).filter((m): m is tf.Tensor2D => !!m);
    save([xin, Wcat, ...masks]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const xs = saved[0] as tf.Tensor2D;
        const W = saved[1] as tf.Tensor2D;
        const savedMasks = saved.slice(2) as tf.Tensor2D[];
        const grads: tf.Tensor[] = new Array(inputs.length);
        let dx: tf.Tensor2D = tf.matMul(dy, W); // [N, in]
        const needPer = ps.some((p) => p.W.trainable || (p.b && p.b.trainable) || p.lora);
        if (needPer) {
          const dys = ps.length === 1 ? [dy] : (tf.split(dy, outs, 1) as tf.Tensor2D[]); // [N, out_i]
          const needDyT = ps.some((p) => p.lora);
          const dyT = needDyT ? (tf.transpose(dy) as tf.Tensor2D) : undefined; // [sumOut, N]
          const dyTs = dyT ? (ps.length === 1 ? [dyT] : (tf.split(dyT, outs, 0) as tf.Tensor2D[])) : [];
          let xT: tf.Tensor2D | undefined;
          let mi = 0;
          ps.forEach((p, i) => {
            const sl = slots[i];
            if (sl.W >= 0 || (p.lora && !p.lora.dropoutMask)) xT = xT ?? (tf.transpose(xs) as tf.Tensor2D); // [in, N]
            if (sl.W >= 0) grads[sl.W] = tf.transpose(tf.matMul(xT!, dys[i])); // (x^T dy_i)^T = [out, in]
            if (sl.b >= 0) grads[sl.b] = tf.sum(dys[i], 0);
            if (p.lora) {
              const { A, B, scaling } = p.lora;
              const mask = p.lora.dropoutMask ? savedMasks[mi++] : undefined;
              const xdT = mask ? (tf.transpose(tf.mul(xs, mask)) as tf.Tensor2D) : xT!; // [in, N]
              const g = tf.mul(tf.matMul(dys[i], B), scaling) as tf.Tensor2D; // [N, r]
              grads[sl.A] = tf.transpose(tf.matMul(xdT, g)); // [r, in]
              const xa = tf.matMul(mask ? (tf.mul(xs, mask) as tf.Tensor2D) : xs, tf.transpose(A) as tf.Tensor2D); // [N, r]
              grads[sl.B] = tf.mul(tf.matMul(dyTs[i], xa), scaling); // [out, r]
              if (mask) dx = tf.add(dx, tf.mul(tf.matMul(g, A), mask)); // the adapter's own input gradient
            }
          });
        }
        grads[0] = dx;
        return grads;
      },
    };
  }));
  return op(...inputs);
}

// ---------------------------------------------------------------------------------------------------------------
// Attention core: softmax(q k^T * scale + mask) v, grouped by kv head.
// ---------------------------------------------------------------------------------------------------------------

/**
 * q [BK, G*T, hd] (the G query heads sharing one kv head, stacked along rows), k/v [BK, Tk, hd],
 * maskAdd broadcastable to [B, KV, G*T, Tk] given as [B or 1, 1, G*T, Tk] (0 keep, -1e9 drop); kvHeads = KV.
 * Returns ctx [BK, G*T, hd]. Backward uses per-slice 2-D products too.
 */
export function attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, maskAdd: tf.Tensor4D, kvHeads: number, scale: number): tf.Tensor3D {
  const [bk, gt] = q.shape;
  const tk = k.shape[1];
  const b = bk / kvHeads;
  const op = custom(((qi: tf.Tensor3D, ki: tf.Tensor3D, vi: tf.Tensor3D, save: tf.GradSaveFunc) => {
    const s = bmmT(qi, ki); // [BK, GT, Tk]
    const s4 = tf.add(tf.mul(s.reshape([b, kvHeads, gt, tk]), scale), maskAdd);
    const P = tf.softmax(s4).reshape([bk, gt, tk]) as tf.Tensor3D;
    const ctx = bmm(P, vi); // [BK, GT, hd]
    save([qi, ki, vi, P]);
    return {
      value: ctx,
      gradFunc: (dctx: tf.Tensor3D, saved: tf.Tensor[]) => {
        const [qs, ks, vs, Ps] = saved as tf.Tensor3D[];
        // dV = P^T dctx and dK = dS^T q, computed transposed (dV^T = dctx^T P) so that only the thin
        // [., ., hd] tensors get transposed, never the [BK, GT, Tk] score-sized ones.
        const dP = bmmT(dctx, vs); // [BK, GT, Tk]
        const dV = t3(bmm(t3(dctx), Ps)); // [BK, Tk, hd]
        const dS = tf.mul(tf.mul(Ps, tf.sub(dP, tf.sum(tf.mul(dP, Ps), -1, true))), scale) as tf.Tensor3D;
        const dQ = bmm(dS, ks); // [BK, GT, hd]
        const dK = t3(bmm(t3(qs), dS)); // [BK, Tk, hd]
        return [dQ, dK, dV];
      },
    };
  }));
  return op(q, k, v);
}

// ---------------------------------------------------------------------------------------------------------------
// RMSNorm and SwiGLU (fewer kernels than their autodiff).
// ---------------------------------------------------------------------------------------------------------------

/** x [N, d] * rsqrt(mean(x^2) + eps) * w. Differentiable w.r.t. x and (when trainable) w. */
export function rmsNorm(x: tf.Tensor2D, w: tf.Variable, eps: number): tf.Tensor2D {
  const trainW = w.trainable;
  const op = custom(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const xin = args[0] as tf.Tensor2D;
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(xin), -1, true), eps)); // [N, 1]
    const xhat = tf.mul(xin, r);
    save([xhat, r]);
    return {
      value: tf.mul(xhat, w) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [xh, rs] = saved;
        const g = tf.mul(dy, w); // d/d xhat
        const dx = tf.mul(rs, tf.sub(g, tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))));
        return trainW ? [dx, tf.sum(tf.mul(dy, xh), 0)] : [dx];
      },
    };
  }));
  return trainW ? op(x, w) : op(x);
}

/** gu [N, 2F] = [gate | up] -> silu(gate) * up [N, F]. */
export function swiglu(gu: tf.Tensor2D): tf.Tensor2D {
  const F = gu.shape[1] / 2;
  const op = custom(((x: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const [g, u] = tf.split(x, 2, 1) as tf.Tensor2D[];
    const sg = tf.sigmoid(g);
    const gs = tf.mul(g, sg);
    save([g, u, sg, gs]);
    return {
      value: tf.mul(gs, u) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [gg, uu, s, gsv] = saved;
        // d silu(g) = s * (1 + g * (1 - s)) = s + gs - gs * s
        const dsilu = tf.sub(tf.add(s, gsv), tf.mul(gsv, s));
        return [tf.concat([tf.mul(tf.mul(dy, uu), dsilu), tf.mul(dy, gsv)], 1)];
      },
    };
  }));
  void F;
  return op(gu);
}

// ---------------------------------------------------------------------------------------------------------------
// Rotary position embedding.
// ---------------------------------------------------------------------------------------------------------------

const rotCache = new Map<number, { R: tf.Tensor2D; RT: tf.Tensor2D }>();

/** rotate_half as a matrix: x @ R = cat(-x2, x1) for rows x of width hd. */
function rotateHalfMatrix(hd: number): { R: tf.Tensor2D; RT: tf.Tensor2D } {
  let e = rotCache.get(hd);
  if (!e) {
    const half = hd / 2;
    const r = new Float32Array(hd * hd);
    for (let i = 0; i < half; i++) {
      r[(i + half) * hd + i] = -1; // out[i] = -x[i + half]
      r[i * hd + i + half] = 1; // out[i + half] = x[i]
    }
    const R = tf.keep(tf.tensor2d(r, [hd, hd]));
    e = { R, RT: tf.keep(tf.transpose(R)) };
    rotCache.set(hd, e);
  }
  return e;
}

/**
 * HF's apply_rotary_pos_emb on one of q/k: x [B, T, h, hd], cos/sin [B, T, 1, hd] (emb = cat(freqs, freqs)) ->
 * x * cos + rotate_half(x) * sin. rotate_half is a [hd, hd] signed permutation applied as one 2-D product
 * (slicing/reversing the halves costs more on wasm than the tiny matmul).
 */
export function rope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const [b, t, h, hd] = x.shape;
  const { R, RT } = rotateHalfMatrix(hd);
  const op = custom(((xi: tf.Tensor4D, save: tf.GradSaveFunc) => {
    save([cos, sin]);
    const rot = tf.matMul(xi.reshape([b * t * h, hd]) as tf.Tensor2D, R).reshape([b, t, h, hd]);
    return {
      value: tf.add(tf.mul(xi, cos), tf.mul(rot, sin)) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [c, s] = saved;
        const ds = tf.mul(dy, s).reshape([b * t * h, hd]) as tf.Tensor2D;
        return [tf.add(tf.mul(dy, c), tf.matMul(ds, RT).reshape([b, t, h, hd]))];
      },
    };
  }));
  return op(x);
}

// ---------------------------------------------------------------------------------------------------------------
// Embedding lookup with a scatter-add gradient (no UnsortedSegmentSum needed).
// ---------------------------------------------------------------------------------------------------------------

/** E [V, d], ids [N] int32 -> [N, d]. Differentiable w.r.t. E when E is trainable. */
export function embedding(E: tf.Variable, ids: tf.Tensor1D): tf.Tensor2D {
  if (!E.trainable) return tf.gather(E, ids) as tf.Tensor2D;
  const op = custom(((Ein: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([ids]);
    return {
      value: tf.gather(Ein, ids) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [V, d] = E.shape;
        // GPU backends have UnsortedSegmentSum and cannot read back synchronously (webgpu in Node throws).
        if (tf.getBackend() !== 'wasm') return [tf.unsortedSegmentSum(dy, saved[0] as tf.Tensor1D, V)];
        const idv = saved[0].dataSync() as Int32Array; // sync point (small)
        const g = dy.dataSync() as Float32Array;
        const out = new Float32Array(V * d);
        for (let r = 0; r < idv.length; r++) {
          const a = idv[r] * d;
          const bb = r * d;
          for (let j = 0; j < d; j++) out[a + j] += g[bb + j];
        }
        return [tf.tensor2d(out, [V, d])];
      },
    };
  }));
  return op(E);
}

// ---------------------------------------------------------------------------------------------------------------
// LM head fused with log-softmax and the target gather.
// ---------------------------------------------------------------------------------------------------------------

/**
 * hn [N, d], head weight W [V, d] (WT [d, V] when frozen), targets [N] int32 ->
 * log p(target) [N]. Keeps only softmax [N, V] for backward; the logits never reach the tape.
 */
export function headLogprobs(hn: tf.Tensor2D, W: tf.Variable, WT: tf.Tensor2D | undefined, targets: tf.Tensor1D): tf.Tensor1D {
  const trainW = W.trainable;
  const V = W.shape[0];
  const inputs: tf.Tensor[] = trainW ? [hn, W] : [hn];
  const op = custom(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const h = args[0] as tf.Tensor2D;
    const wt = trainW || !WT ? (tf.transpose(W) as tf.Tensor2D) : WT;
    const logits = tf.matMul(h, wt); // [N, V]
    const n = h.shape[0];
    // Softmax is one vectorised XNNPACK kernel on wasm (elementwise Exp is scalar, ~10x slower). The
    // log-sum-exp follows from it without a second exp pass: lse = max(logits) - log(max(P)), and
    // max(P) >= 1/V never underflows.
    const P = tf.softmax(logits); // [N, V]
    const lse = tf.sub(tf.max(logits, -1), tf.log(tf.max(P, -1))); // [N]
    const flat = tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(V, 'int32')), targets) as tf.Tensor1D;
    const picked = tf.gather(logits.reshape([-1]), flat) as tf.Tensor1D;
    save([h, P, targets]);
    return {
      value: tf.sub(picked, lse) as tf.Tensor1D,
      gradFunc: (dy: tf.Tensor1D, saved: tf.Tensor[]) => {
        const [hs, Ps] = saved as tf.Tensor2D[];
        const tg = saved[2] as tf.Tensor1D;
        // d logp / d logits = onehot(target) - softmax; scaled by dy per row. (wasm's OneHot ignores dtype
        // 'float32' and writes int bits: cast instead.)
        const dlogits = tf.mul(tf.sub(tf.cast(tf.oneHot(tg, V), 'float32'), Ps), dy.reshape([n, 1])) as tf.Tensor2D; // [N, V]
        const grads: tf.Tensor[] = [tf.matMul(dlogits, W)]; // [N, d]
        if (trainW) grads.push(tf.matMul(tf.transpose(dlogits) as tf.Tensor2D, hs)); // [V, d]
        return grads;
      },
    };
  }));
  return op(...inputs);
}
