/**
 * `npx tsx src/run.ts synth`: write the train / validation / test / heldout_tools JSONL splits and print their
 * counts. The library function is `synthesize` in src/env/synth.ts (its header explains the splits); this file
 * only parses flags and prints.
 */
import * as path from 'node:path';
import { parseFlags, flagsHelp, ArgError, type FlagSpec } from '../util/args';
import { DATA_DIR, resolveUserPath } from '../util/paths';
import { getTool } from '../env/tools';
import { BEHAVIORS, DEFAULT_MIX, SYNTH_DEFAULTS, splitStats, synthesize, writeSplits, type Behavior, type Mix } from '../env/synth';

const SPEC: Record<string, FlagSpec> = {
  seed: { type: 'int', help: 'random seed (same seed => same bytes)', default: 0 },
  n: { type: 'int', help: 'number of train rows', default: 2000 },
  'n-validation': { type: 'int', help: 'number of validation rows (non-demonstration train templates)', default: SYNTH_DEFAULTS.nValidation },
  'n-test': { type: 'int', help: 'number of test rows', default: SYNTH_DEFAULTS.nTest },
  'n-heldout': { type: 'int', help: 'number of heldout_tools rows', default: SYNTH_DEFAULTS.nHeldout },
  mix: {
    type: 'list',
    help: 'behaviour mix of the requests in train/validation/test, e.g. execute=0.6,ask_user=0.2,refuse=0.1,no_call=0.1',
    default: BEHAVIORS.map((b) => `${b}=${DEFAULT_MIX[b]}`),
  },
  'demo-fraction': { type: 'float', help: "share of each group's train templates that are demonstration templates (SFT's)", default: SYNTH_DEFAULTS.demoFraction },
  'unlisted-share': { type: 'float', help: 'share of execute requests whose tool the catalog leaves out (gold no_call)', default: SYNTH_DEFAULTS.unlistedShare },
  'synthetic-share': { type: 'float', help: 'share of train/validation execute requests for a synthetic tool', default: SYNTH_DEFAULTS.syntheticShare },
  'generated-share': { type: 'float', help: 'share of those synthetic requests for a generated tool (hundreds of rare qualifier x metric names)', default: SYNTH_DEFAULTS.generatedShare },
  out: { type: 'string', help: 'output folder', default: path.relative(process.cwd(), DATA_DIR) || '.' },
};

export const help = `usage: npx tsx src/run.ts synth [flags]

Synthesize the tool-calling dataset: data/train.jsonl, data/validation.jsonl, data/test.jsonl,
data/heldout_tools.jsonl (the splits are explained in src/env/synth.ts and data/README.md).

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

function share(f: Record<string, unknown>, k: string): number {
  const v = f[k] as number;
  if (!(v >= 0 && v <= 1)) throw new ArgError(`--${k}: must be a number in [0, 1], got ${v}`);
  return v;
}

export async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv, SPEC);
  const mix = parseMix(f.mix as string[]);
  const opts = {
    seed: f.seed as number,
    n: f.n as number,
    nValidation: f['n-validation'] as number,
    nTest: f['n-test'] as number,
    nHeldout: f['n-heldout'] as number,
    mix,
    demoFraction: share(f, 'demo-fraction'),
    unlistedShare: share(f, 'unlisted-share'),
    syntheticShare: share(f, 'synthetic-share'),
    generatedShare: share(f, 'generated-share'),
  };
  console.log('synth config:', JSON.stringify({ ...opts, out: f.out }));
  const splits = synthesize(opts);
  const files = writeSplits(splits, resolveUserPath(f.out as string));
  const stats = splitStats(splits);
  for (const [split, s] of Object.entries(stats)) {
    console.log(`\n${split}: ${s.rows} rows (${s.demonstration} demonstration, ${s.unlisted} unlisted -> no_call, ${s.synthetic} synthetic-tool golds)`);
    console.log('  behavior: ' + Object.entries(s.behavior).sort().map(([k, v]) => `${k}=${v}`).join('  '));
    const real = Object.entries(s.tool).filter(([k]) => !getTool(k)?.synthetic);
    console.log('  tool:     ' + real.sort().map(([k, v]) => `${k}=${v}`).join('  ') + (s.synthetic ? `  (+${s.synthetic} rows over synthetic tools)` : ''));
  }
  console.log('\nwrote ' + files.join(', '));
  return 0;
}
