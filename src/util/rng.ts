/**
 * Seeded pseudo-random numbers shared by data synthesis, sampling and training.
 *
 * One small generator (SplitMix32-style mixing over a 32-bit counter state) whose whole state is one
 * number, so a checkpoint can save it and a resumed run continues the exact same stream.
 * Not cryptographic; not the same stream as Python's `random` (nothing here needs that).
 */
export class Rng {
  /** The full state: save it with `state`, restore with `Rng.fromState`. */
  state: number;

  constructor(seed: number) {
    // Mix the seed once so that nearby seeds (0, 1, 2) give unrelated streams.
    this.state = mix32((seed >>> 0) ^ 0x9e3779b9) >>> 0;
  }

  static fromState(state: number): Rng {
    const r = new Rng(0);
    r.state = state >>> 0;
    return r;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return mix32(this.state) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n >= 1)) throw new RangeError(`Rng.int: n must be >= 1, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** One element of a non-empty array. */
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new RangeError('Rng.pick: empty array');
    return xs[this.int(xs.length)];
  }

  /** Fisher-Yates shuffle, in place; returns the same array. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }

  /** Standard normal (Box-Muller; one of the pair is discarded to keep the state a single number). */
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** An independent child stream (e.g. one per worker or per split), derived deterministically. */
  fork(salt: number): Rng {
    return new Rng((mix32(this.state ^ Math.imul(salt + 1, 0x85ebca6b)) ^ salt) >>> 0);
  }
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A 32-bit FNV-1a hash of a string: for stable ids and seed derivation. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** `n` independent streams seeded from `rng` (which advances by `n` draws): one per row for `generate`'s `rngs`. */
export function rowStreams(rng: Rng, n: number): Rng[] {
  return Array.from({ length: n }, () => new Rng(Math.floor(rng.next() * 4294967296)));
}
