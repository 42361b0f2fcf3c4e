/**
 * `npx tsx src/run.ts synth`: write the train / test / heldout_tools JSONL splits and print their counts.
 * The library function is `synthesize` in src/env/synth.ts; this file only parses flags and prints.
 */
import * as path from 'node:path';
import { parseFlags, flagsHelp, ArgError, type FlagSpec } from '../util/args';
import { DATA_DIR, resolveUserPath } from '../util/paths';
import { BEHAVIORS, DEFAULT_MIX, splitStats, synthesize, writeSplits, type Behavior, type Mix } from '../env/synth';

const SPEC: Record<string, FlagSpec> = {
  seed: { type: 'int', help: 'random seed (same seed => same bytes)', default: 0 },
  n: { type: 'int', help: 'number of train rows', default: 2000 },
  'n-test': { type: 'int', help: 'number of test rows', default: 300 },
  'n-heldout': { type: 'int', help: 'number of heldout_tools rows', default: 150 },
  mix: {
    type: 'list',
    help: 'behaviour mix for train/test, e.g. execute=0.6,ask_user=0.2,refuse=0.1,no_call=0.1',
    default: BEHAVIORS.map((b) => `${b}=${DEFAULT_MIX[b]}`),
  },
  out: { type: 'string', help: 'output folder', default: path.relative(process.cwd(), DATA_DIR) || '.' },
};

export const help = `usage: npx tsx src/run.ts synth [flags]

Synthesize the tool-calling dataset: data/train.jsonl, data/test.jsonl, data/heldout_tools.jsonl.

${flagsHelp(SPEC)}`;

function parseMix(items: string[]): Mix {
  const mix: Partial<Mix> = {};
  for (const it of items) {
    const [k, v] = it.split('=');
    if (!BEHAVIORS.includes(k as Behavior)) throw new ArgError(`--mix: unknown behaviour '${k}' (know ${BEHAVIORS.join(', ')})`);
    const x = Number(v);
    if (v === undefined || v.trim() === '' || !Number.isFinite(x) || x < 0) throw new ArgError(`--mix: '${it}' needs a number >= 0`);
    mix[k as Behavior] = x;
  }
  return Object.fromEntries(BEHAVIORS.map((b) => [b, mix[b] ?? 0])) as Mix;
}

export async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv, SPEC);
  const mix = parseMix(f.mix as string[]);
  const opts = { seed: f.seed as number, n: f.n as number, nTest: f['n-test'] as number, nHeldout: f['n-heldout'] as number, mix };
  console.log('synth config:', JSON.stringify({ ...opts, out: f.out }));
  const splits = synthesize(opts);
  const files = writeSplits(splits, resolveUserPath(f.out as string));
  const stats = splitStats(splits);
  for (const [split, s] of Object.entries(stats)) {
    console.log(`\n${split}: ${s.rows} rows`);
    console.log('  behavior: ' + Object.entries(s.behavior).sort().map(([k, v]) => `${k}=${v}`).join('  '));
    console.log('  tool:     ' + Object.entries(s.tool).sort().map(([k, v]) => `${k}=${v}`).join('  '));
  }
  console.log('\nwrote ' + files.join(', '));
  return 0;
}
