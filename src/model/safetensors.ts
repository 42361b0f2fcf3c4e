/**
 * safetensors files: read (F32, F16, BF16 -> Float32Array; one file or a sharded set with
 * `model.safetensors.index.json`) and write (F32).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}}`
 * (offsets relative to the end of the header), then the raw little-endian data. `__metadata__` is a string map.
 * What it is not: a tensor library. It returns plain typed arrays and shapes; src/model/qwen2.ts makes tensors.
 * Every error names the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One decoded tensor: float32 data in row-major order and its shape. */
export interface RawTensor {
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  data: Float32Array;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

/** Raised for anything wrong with a safetensors file or index; the message names the file. */
export class SafetensorsError extends Error {}

/** Parse and check the header of one file without reading the data. */
export function readHeader(file: string): { header: Record<string, HeaderEntry>; metadata: Record<string, string>; dataStart: number; fileSize: number } {
  if (!fs.existsSync(file)) throw new SafetensorsError(`${file}: file not found`);
  const fileSize = fs.statSync(file).size;
  if (fileSize < 8) throw new SafetensorsError(`${file}: truncated (${fileSize} bytes; a safetensors file starts with an 8-byte header length)`);
  const fd = fs.openSync(file, 'r');
  try {
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    if (n > fileSize - 8) throw new SafetensorsError(`${file}: header length ${n} runs past the end of the file (${fileSize} bytes): truncated or not a safetensors file`);
    const hbuf = Buffer.alloc(n);
    fs.readSync(fd, hbuf, 0, n, 8);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(hbuf.toString('utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new SafetensorsError(`${file}: corrupt header (not JSON: ${(e as Error).message})`);
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new SafetensorsError(`${file}: corrupt header (not a JSON object)`);
    const dataStart = 8 + n;
    const dataLen = fileSize - dataStart;
    const header: Record<string, HeaderEntry> = {};
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(json)) {
      if (name === '__metadata__') {
        metadata = (v ?? {}) as Record<string, string>;
        continue;
      }
      const e = v as HeaderEntry;
      if (!e || typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets) || e.data_offsets.length !== 2) {
        throw new SafetensorsError(`${file}: corrupt header entry for '${name}' (needs dtype, shape, data_offsets)`);
      }
      const [b, end] = e.data_offsets;
      const count = e.shape.reduce((a, s) => a * s, 1);
      if (!Number.isInteger(b) || !Number.isInteger(end) || b < 0 || end < b || end > dataLen) {
        throw new SafetensorsError(`${file}: tensor '${name}' data_offsets [${b}, ${end}] out of range (data section is ${dataLen} bytes)`);
      }
      if (BYTES[e.dtype] !== undefined && end - b !== count * BYTES[e.dtype]) {
        throw new SafetensorsError(`${file}: tensor '${name}' has ${end - b} bytes but shape [${e.shape}] of ${e.dtype} needs ${count * BYTES[e.dtype]}`);
      }
      header[name] = e;
    }
    return { header, metadata, dataStart, fileSize };
  } finally {
    fs.closeSync(fd);
  }
}

/** float16 bits -> float32. */
function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function decode(file: string, name: string, e: HeaderEntry, bytes: Buffer): Float32Array {
  const count = e.shape.reduce((a, s) => a * s, 1);
  const out = new Float32Array(count);
  if (e.dtype === 'F32') {
    // Copy through a fresh aligned buffer (the file data may start at any byte offset).
    new Uint8Array(out.buffer).set(bytes);
  } else if (e.dtype === 'F16') {
    for (let i = 0; i < count; i++) out[i] = f16ToF32(bytes.readUInt16LE(2 * i));
  } else if (e.dtype === 'BF16') {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) u[i] = bytes.readUInt16LE(2 * i) << 16;
  } else {
    throw new SafetensorsError(`${file}: tensor '${name}' has dtype ${e.dtype}; only F32, F16 and BF16 are supported`);
  }
  return out;
}

/** Read every tensor of one safetensors file. */
export function readSafetensors(file: string): Map<string, RawTensor> {
  const { header, dataStart } = readHeader(file);
  const buf = fs.readFileSync(file);
  const out = new Map<string, RawTensor>();
  for (const [name, e] of Object.entries(header)) {
    const [b, end] = e.data_offsets;
    const data = decode(file, name, e, buf.subarray(dataStart + b, dataStart + end));
    out.set(name, { dtype: e.dtype as RawTensor['dtype'], shape: e.shape.slice(), data });
  }
  return out;
}

/**
 * Read a checkpoint directory's weights: `model.safetensors`, or the shards listed in
 * `model.safetensors.index.json` (`{"weight_map": {name: shard_file}}`).
 */
export function readCheckpointWeights(dir: string): Map<string, RawTensor> {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(single)) return readSafetensors(single);
  if (!fs.existsSync(index)) throw new SafetensorsError(`${single}: file not found (nor a sharded ${path.basename(index)})`);
  let weightMap: Record<string, string>;
  try {
    weightMap = (JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
  } catch (e) {
    throw new SafetensorsError(`${index}: not valid JSON (${(e as Error).message})`);
  }
  if (!weightMap || typeof weightMap !== 'object') throw new SafetensorsError(`${index}: no "weight_map" object`);
  const out = new Map<string, RawTensor>();
  for (const shard of [...new Set(Object.values(weightMap))].sort()) {
    const shardPath = path.join(dir, shard);
    const tensors = readSafetensors(shardPath);
    for (const [name, t] of tensors) out.set(name, t);
  }
  for (const name of Object.keys(weightMap)) {
    if (!out.has(name)) throw new SafetensorsError(`${index}: tensor '${name}' is listed for ${path.join(dir, weightMap[name])} but not in that file`);
  }
  return out;
}

/** Fetch a tensor and check its shape; errors name the file the tensors came from. */
export function takeTensor(tensors: Map<string, RawTensor>, name: string, shape: number[], file: string): RawTensor {
  const t = tensors.get(name);
  if (!t) throw new SafetensorsError(`${file}: missing tensor '${name}'`);
  if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
    throw new SafetensorsError(`${file}: tensor '${name}' has shape [${t.shape}], expected [${shape}]`);
  }
  return t;
}

/** Write tensors as F32 safetensors (names sorted, like the Python writer). */
export function writeSafetensors(file: string, tensors: Map<string, { shape: number[]; data: Float32Array }>, metadata: Record<string, string> = { format: 'pt' }): void {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const count = t.shape.reduce((a, s) => a * s, 1);
    if (count !== t.data.length) throw new SafetensorsError(`${file}: tensor '${name}' has ${t.data.length} values for shape [${t.shape}]`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + 4 * count] };
    off += 4 * count;
  }
  let h = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (h.length % 8)) % 8; // align the data section to 8 bytes, as the reference writer does
  if (pad) h = Buffer.concat([h, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const parts: Buffer[] = [len, h];
  for (const name of names) {
    const d = tensors.get(name)!.data;
    parts.push(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
  }
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  // Write a sibling and rename: a reader (or a run killed mid-save) sees the old file or the new one, never half.
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, Buffer.concat(parts));
  fs.renameSync(tmp, file);
}
