/**
 * Verifier throughput: completions scored per second in each reward mode, over a fixed seeded mix of
 * completions (about 40% exact gold calls, 30% structurally wrong calls, 20% character-level corruptions,
 * 10% prose or garbage) against gold calls from a small synthesized dataset. `src/bench.ts` reports it.
 *
 * What it measures: parse + checks + mock execution, single-threaded, after one warm-up pass (ajv compiles
 * each tool's schema once, on first use). Not a correctness test (tests/verify*.test.ts are).
 */
import { synthesize } from '../env/synth';
import { TOOLS } from '../env/tools';
import { Rng } from '../util/rng';
import { parseCall } from './parse';
import { REWARD_MODES, scoreAllModes, scoreCompletion } from './reward';

/** The benchmark's fixed mix: `n` (completion, gold_call, expected_result) triples, same for a given seed. */
export function benchMix(n = 2000, seed = 1234): { completion: string; gold_call: string; expected_result: string }[] {
  const rows = synthesize({ seed, n: 200, nValidation: 0, nTest: 0, nHeldout: 0 }).train;
  const rng = new Rng(seed);
  const out: { completion: string; gold_call: string; expected_result: string }[] = [];
  for (let i = 0; i < n; i++) {
    const row = rng.pick(rows);
    const gold = JSON.parse(row.gold_call) as { name: string; arguments: Record<string, unknown> };
    const u = rng.next();
    let completion: string;
    if (u < 0.4) completion = row.gold_call;
    else if (u < 0.7) {
      const args: Record<string, unknown> = { ...gold.arguments };
      const keys = Object.keys(args);
      const call: Record<string, unknown> = { name: gold.name, arguments: args };
      const k = rng.int(5);
      if (k === 0) call.name = rng.pick(TOOLS).name;
      else if (k === 1 && keys.length) delete args[rng.pick(keys)];
      else if (k === 2 && keys.length) args[rng.pick(keys)] = 'Jan 3';
      else if (k === 3) args.note = 'extra';
      else call.name = gold.name.replace('e', '\u0435');
      completion = JSON.stringify(call);
    } else if (u < 0.9) {
      const s = row.gold_call;
      const i = rng.int(s.length);
      completion = s.slice(0, i) + rng.pick(['', '"', '}', ',', 'x']) + s.slice(i + 1);
    } else completion = rng.pick(['I cannot help with that.', '```json\n' + row.gold_call + '\n```', '[]', '']);
    out.push({ completion, gold_call: row.gold_call, expected_result: row.expected_result });
  }
  return out;
}

function rate(mix: ReturnType<typeof benchMix>, fn: (x: ReturnType<typeof benchMix>[number]) => unknown, minMs: number): number {
  for (const x of mix) fn(x); // warm-up
  let done = 0;
  const t0 = process.hrtime.bigint();
  let ms = 0;
  while (ms < minMs) {
    for (const x of mix) fn(x);
    done += mix.length;
    ms = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  return Math.round((done / ms) * 1000);
}

/**
 * Completions per second for each reward mode (`seed`, `tiered`, `strict`), for all three modes from one parse
 * (`all_modes`), and for parsing alone (`parse_only`); `mix_size` is the number of distinct completions.
 * Each number is measured over at least `minMs` milliseconds (default 400).
 */
export function benchVerifier(minMs = 400): Record<string, number> {
  const mix = benchMix();
  const out: Record<string, number> = { mix_size: mix.length };
  for (const mode of REWARD_MODES) out[mode] = rate(mix, (x) => scoreCompletion(x.completion, x.gold_call, x.expected_result, mode), minMs);
  out.all_modes = rate(mix, (x) => scoreAllModes(x.completion, x.gold_call, x.expected_result), minMs);
  out.parse_only = rate(mix, (x) => parseCall(x.completion), minMs);
  return out;
}
