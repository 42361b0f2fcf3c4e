/**
 * Fast paths for TensorFlow.js on wasm: a few kernels registered on the wasm backend, and the model's hot ops
 * (linear layer with LoRA, attention core, embedding, LM head + log-softmax) with hand-written gradients.
 *
 * Why (measured, see ../shared/STACK.md): on wasm only plain 2-D non-transposed matmuls are fast (XNNPACK);
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
      const xOff = be.dataIdMap.get(x.dataId).memoryOffset >> 2;
      for (let i = 0; i < n; i++) {
        const oOff = be.dataIdMap.get(outs[i].dataId).memoryOffset >> 2;
        for (let o = 0; o < outer; o++) {
          const src = xOff + (o * n + i) * inner;
          heap.copyWithin(oOff + o * inner, src, src + inner);
        }
      }
      return outs;
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
 * a [N, M, K] @ b [N, K, P] -> [N, M, P] as N plain 2-D products (fast on wasm) when the slices are big enough,
 * else one batched matMul (small slices: per-op overhead would dominate).
 */
export function bmm(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const [n, m, k] = a.shape;
  const p = b.shape[2];
  if (n === 1) return tf.matMul(a.reshape([m, k]), b.reshape([k, p])).reshape([1, m, p]);
  if (m * k * p < 4096 || tf.getBackend() !== 'wasm') return tf.matMul(a, b);
  const as = tf.unstack(a) as tf.Tensor2D[];
  const bs = tf.unstack(b) as tf.Tensor2D[];
  const outs = as.map((ai, i) => tf.matMul(ai, bs[i]));
  return tf.stack(outs) as tf.Tensor3D;
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

/** x [N, in] -> [N, out], differentiable w.r.t. x and every trainable parameter, with 2-D products only. */
export function linear(x: tf.Tensor2D, p: LinearParams): tf.Tensor2D {
  const trainW = p.W.trainable;
  const trainB = !!p.b && p.b.trainable;
  const lora = p.lora;
  const inputs: tf.Tensor[] = [x];
  if (trainW) inputs.push(p.W);
  if (trainB) inputs.push(p.b!);
  if (lora) inputs.push(lora.A, lora.B);
  const op = custom(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const xin = args[0] as tf.Tensor2D;
    const W = p.W;
    const WT = trainW || !p.WT ? (tf.transpose(W) as tf.Tensor2D) : p.WT;
    let y: tf.Tensor2D = p.b ? tf.add(tf.matMul(xin, WT), p.b) : tf.matMul(xin, WT);
    let xd: tf.Tensor2D | undefined;
    let xa: tf.Tensor2D | undefined;
    if (lora) {
      const xdrop: tf.Tensor2D = lora.dropoutMask ? tf.mul(xin, lora.dropoutMask) : xin;
      const xlow: tf.Tensor2D = tf.matMul(xdrop, tf.transpose(lora.A) as tf.Tensor2D); // [N, r]
      y = tf.add(y, tf.mul(tf.matMul(xlow, tf.transpose(lora.B) as tf.Tensor2D), lora.scaling));
      xd = xdrop;
      xa = xlow;
    }
    // Everything backward reads goes through save(): tensors captured by the closure may be disposed by then
    // (callers run the forward inside tf.tidy).
    save(lora ? (lora.dropoutMask ? [xin, xd!, xa!, lora.dropoutMask] : [xin, xd!, xa!]) : [xin]);
    return {
      value: y as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const xs = saved[0] as tf.Tensor2D;
        const grads: tf.Tensor[] = [];
        let dx = tf.matMul(dy, W); // [N, in]
        let dyT: tf.Tensor2D | undefined;
        if (trainW || lora) dyT = tf.transpose(dy) as tf.Tensor2D; // [out, N]
        let gA: tf.Tensor | undefined;
        let gB: tf.Tensor | undefined;
        if (lora) {
          const xdS = saved[1] as tf.Tensor2D;
          const xaS = saved[2] as tf.Tensor2D;
          const g = tf.mul(tf.matMul(dy, lora.B), lora.scaling) as tf.Tensor2D; // [N, r]
          gA = tf.matMul(tf.transpose(g) as tf.Tensor2D, xdS); // [r, in]
          gB = tf.mul(tf.matMul(dyT!, xaS), lora.scaling); // [out, r]
          let dxl = tf.matMul(g, lora.A) as tf.Tensor2D; // [N, in]
          if (lora.dropoutMask) dxl = tf.mul(dxl, saved[3]);
          dx = tf.add(dx, dxl);
        }
        grads.push(dx);
        if (trainW) grads.push(tf.matMul(dyT!, xs)); // [out, in]
        if (trainB) grads.push(tf.sum(dy, 0));
        if (lora) grads.push(gA!, gB!);
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
    const s = bmm(qi, t3(ki)); // [BK, GT, Tk]
    const s4 = tf.add(tf.mul(s.reshape([b, kvHeads, gt, tk]), scale), maskAdd);
    const P = tf.softmax(s4).reshape([bk, gt, tk]) as tf.Tensor3D;
    const ctx = bmm(P, vi); // [BK, GT, hd]
    save([qi, ki, vi, P]);
    return {
      value: ctx,
      gradFunc: (dctx: tf.Tensor3D, saved: tf.Tensor[]) => {
        const [qs, ks, vs, Ps] = saved as tf.Tensor3D[];
        const dP = bmm(dctx, t3(vs)); // [BK, GT, Tk]
        const dV = bmm(t3(Ps), dctx); // [BK, Tk, hd]
        const dS = tf.mul(tf.mul(Ps, tf.sub(dP, tf.sum(tf.mul(dP, Ps), -1, true))), scale) as tf.Tensor3D;
        const dQ = bmm(dS, ks); // [BK, GT, hd]
        const dK = bmm(t3(dS), qs); // [BK, Tk, hd]
        return [dQ, dK, dV];
      },
    };
  }));
  return op(q, k, v);
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
    const lse = tf.logSumExp(logits, -1); // [N]
    const n = h.shape[0];
    const flat = tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(V, 'int32')), targets) as tf.Tensor1D;
    const picked = tf.gather(logits.reshape([-1]), flat) as tf.Tensor1D;
    const P = tf.exp(tf.sub(logits, lse.reshape([n, 1])));
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
