import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, hash32 } from '../src/util/rng';
import { parseFlags, parseFlagsAndPositionals, ArgError, didYouMean, editDistance } from '../src/util/args';

test('Rng: same seed, same stream; state round-trips', () => {
  const a = new Rng(42), b = new Rng(42);
  const xs = Array.from({ length: 5 }, () => a.next());
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b.next()));
  const saved = a.state;
  const next = a.next();
  assert.equal(Rng.fromState(saved).next(), next);
  assert.notEqual(new Rng(1).next(), new Rng(2).next());
  for (const x of xs) assert.ok(x >= 0 && x < 1);
});

test('Rng.int stays in range and covers it', () => {
  const r = new Rng(7);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const v = r.int(5);
    assert.ok(Number.isInteger(v) && v >= 0 && v < 5);
    seen.add(v);
  }
  assert.equal(seen.size, 5);
  assert.equal(hash32('abc'), hash32('abc'));
});

test('parseFlags: types, defaults, unknown flags and bad values', () => {
  const spec = {
    seed: { type: 'int' as const, help: 's', default: 0 },
    lr: { type: 'float' as const, help: 'l' },
    mode: { type: 'string' as const, help: 'm', choices: ['a', 'b'] },
    fast: { type: 'bool' as const, help: 'f' },
  };
  assert.deepEqual(parseFlags(['--seed', '3', '--lr=1e-3', '--mode', 'b', '--fast'], spec), {
    seed: 3, lr: 1e-3, mode: 'b', fast: true,
  });
  assert.deepEqual(parseFlags([], spec), { seed: 0 });
  assert.throws(() => parseFlags(['--nope', '1'], spec), ArgError);
  assert.throws(() => parseFlags(['--seed', '1.5'], spec), /integer/);
  assert.throws(() => parseFlags(['--mode', 'c'], spec), /one of a \| b/);
  assert.throws(() => parseFlags(['--lr'], spec), /needs a value/);
});

test('a mistyped flag gets the nearest known one, not the whole list', () => {
  assert.equal(editDistance('learnin_rate', 'learning_rate'), 1);
  assert.equal(editDistance('kitten', 'sitting'), 3);
  const spec = { 'grpo.learning_rate': { type: 'float' as const, help: '' }, 'grpo.max_steps': { type: 'int' as const, help: '' }, seed: { type: 'int' as const, help: '' } };
  assert.throws(() => parseFlags(['--grpo.learnig_rate=1'], spec), (e: Error) => e.message === 'unknown flag --grpo.learnig_rate; did you mean --grpo.learning_rate?');
  assert.throws(() => parseFlags(['--sed=1'], spec), /did you mean --seed\?/);
  assert.throws(() => parseFlags(['--temperature=1'], spec), (e: Error) => e.message === 'unknown flag --temperature'); // nothing near: no guess, no list
  assert.equal(didYouMean('xy', ['seed']), null);
});

test('parseFlagsAndPositionals: plain arguments in order, interleaved with flags; `--` ends the flags', () => {
  const spec = {
    run: { type: 'string' as const, help: 'r' },
    lenient: { type: 'bool' as const, help: 'l', default: false },
    n: { type: 'int' as const, help: 'n', default: 1 },
  };
  assert.deepEqual(parseFlagsAndPositionals(['a b', '--run', 'DIR', 'c', '--lenient', 'd', '--n=3'], spec), {
    flags: { run: 'DIR', lenient: true, n: 3 },
    positionals: ['a b', 'c', 'd'],
  });
  // A bool flag takes no value, so the next argument is a positional; a string flag takes the next one whatever it is.
  assert.deepEqual(parseFlagsAndPositionals(['--lenient', 'x', '--run', '--odd'], spec).positionals, ['x']);
  assert.deepEqual(parseFlagsAndPositionals(['--n', '2', '--', '--run', 'y'], spec), { flags: { lenient: false, n: 2 }, positionals: ['--run', 'y'] });
  assert.deepEqual(parseFlagsAndPositionals([], spec), { flags: { lenient: false, n: 1 }, positionals: [] });
  // Flags are checked as parseFlags checks them; parseFlags itself still refuses plain arguments.
  assert.throws(() => parseFlagsAndPositionals(['q', '--rn=x'], spec), /unknown flag --rn; did you mean --run\?/);
  assert.throws(() => parseFlagsAndPositionals(['--n', 'two'], spec), /integer/);
  assert.throws(() => parseFlags(['q'], spec), /unexpected argument 'q'/);
});
