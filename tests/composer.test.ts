/**
 * The phrasing composer (src/env/composer.ts): how many distinct phrasings each tool and behaviour gets, that
 * composing never touches a slot, and that train phrasings borrow no word that only test or held-out
 * templates use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compose, countPhrasings, reorder, addTypo, lowerFirst, COMPOSE_CLEAN, COMPOSE_DEFAULTS, type ComposeOptions } from '../src/env/composer';
import { TEMPLATES, phrasingCounts } from '../src/env/synth';
import { TOOLS, SYNTHETIC_TOOLS } from '../src/env/tools';
import { Rng } from '../src/util/rng';

const slots = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort();

test('at least 100 distinct phrasings (before slot filling) per tool and behaviour, in train and in test, without case or typo variants', () => {
  const rows = phrasingCounts(3000);
  const counts = Object.fromEntries(rows.map((r) => [`${r.kind}/${r.templates_of}`, r.phrasings]));
  for (const r of rows) assert.ok(r.phrasings >= 100, `${r.kind} (${r.templates_of} templates): only ${r.phrasings} distinct phrasings`);
  // Every tool and behaviour is there: real tools on both sides, held-out tools, each synthetic tool, and the
  // three control actions on both sides.
  for (const t of TOOLS.filter((x) => !x.heldout)) for (const side of ['train', 'test']) assert.ok(`${t.name}/${side}` in counts, `${t.name}/${side}`);
  for (const t of TOOLS.filter((x) => x.heldout)) assert.ok(`${t.name}/heldout_tools` in counts, t.name);
  for (const t of SYNTHETIC_TOOLS) assert.ok(`${t.name}/train` in counts, t.name);
  for (const b of ['ask_user', 'refuse', 'no_call']) for (const side of ['train', 'test']) assert.ok(`${b}/${side}` in counts, `${b}/${side}`);
  assert.equal(rows.length, (TOOLS.length - 2) * 2 + 2 + SYNTHETIC_TOOLS.length + 3 * 2);
  // With case and typos the count only grows.
  const cores = TEMPLATES.filter((t) => t.tool === 'get_revenue' && t.split === 'train');
  assert.equal(countPhrasings(cores, new Rng(7), 3000, COMPOSE_CLEAN), counts['get_revenue/train']);
  assert.ok(countPhrasings(cores, new Rng(7), 3000, COMPOSE_DEFAULTS) > counts['get_revenue/train']);
});

test('composing keeps every slot and never writes inside one; the same state gives the same phrasing', () => {
  const rng = new Rng(3);
  const noisy: ComposeOptions = { synonyms: 1, start: 1, order: 1, opener: 1, closer: 1, lowercase: 0.5, typo: 1 };
  for (const t of TEMPLATES) {
    for (let i = 0; i < 5; i++) {
      const state = rng.state;
      const p = compose(t, rng, i % 2 ? noisy : COMPOSE_DEFAULTS);
      const want = slots(t.text).filter((s) => s !== '{metric}');
      assert.deepEqual(slots(p.text), want, `${t.id}: "${t.text}" -> "${p.text}"`);
      assert.deepEqual(compose(t, new Rng(0), i % 2 ? noisy : COMPOSE_DEFAULTS), compose(t, new Rng(0), i % 2 ? noisy : COMPOSE_DEFAULTS));
      assert.deepEqual(compose(t, Rng.fromState(state), i % 2 ? noisy : COMPOSE_DEFAULTS), p);
      if (!p.lower) assert.doesNotMatch(p.text, /^[a-z]/, `${t.id}: "${p.text}" starts lower case`);
    }
  }
});

test('the steps: synonyms within a topic, word order, openers, closers, lower case and typos outside slots', () => {
  const rng = new Rng(11);
  const rev = TEMPLATES.find((t) => t.id === 'get_revenue.01')!; // "What was {co_pos} revenue in {fy}?"
  const seen = new Set<string>();
  for (let i = 0; i < 400; i++) seen.add(compose(rev, rng).text);
  for (const w of ['turnover', 'sales', 'top line']) assert.ok([...seen].some((s) => s.includes(w)), `no "${w}" among ${seen.size}`);
  assert.ok([...seen].some((s) => s.startsWith('In {fy}, what was {co_pos}')), 'a fronted time phrase');
  assert.ok([...seen].some((s) => /^(Hey|Hi|So|Okay), what/.test(s)), 'an opener');
  assert.ok([...seen].some((s) => /\?( Thanks[.!]| Cheers\.)$/.test(s)), 'a closer');
  assert.ok([...seen].some((s) => s.startsWith('what was {co_pos}')), 'lower case');
  assert.ok(![...seen].some((s) => /net income|profit|cash flow/.test(s)), "revenue's synonyms never name another tool's figure");
  assert.equal(reorder('What was {co_pos} revenue in {fy}?'), 'In {fy}, what was {co_pos} revenue?');
  assert.equal(reorder('On {date}, what was {stock_pos} close?'), 'What was {stock_pos} close on {date}?');
  assert.equal(reorder('{co} revenue {fy}'), '{co} revenue {fy}');
  assert.equal(lowerFirst('What'), 'what');
  assert.equal(lowerFirst("I'd like"), "I'd like");
  assert.equal(lowerFirst('EOD price'), 'EOD price');
  assert.equal(lowerFirst('{stock} close'), '{stock} close');
  for (let i = 0; i < 200; i++) {
    const t = addTypo('Convert {money} into {to}, please.', rng);
    assert.ok(t.includes('{money}') && t.includes('{to}'), t);
    assert.notEqual(t, 'Convert {money} into {to}, please.');
  }
  assert.equal(addTypo('{co} {fy}', rng), '{co} {fy}', 'no word of 4+ letters outside the slots: unchanged');
  const syn = TEMPLATES.find((t) => t.tool === 'get_opening_price')!;
  const p = compose(syn, new Rng(1), COMPOSE_CLEAN).text;
  assert.ok(!p.includes('{metric}') && /open/i.test(p), p);
});

test('train and validation phrasings use no word that only test or held-out templates use', () => {
  const words = (s: string) => s.replace(/\{\w+\}/g, ' ').toLowerCase().match(/[a-z]+/g) ?? [];
  const trainSide = TEMPLATES.filter((t) => t.split === 'train');
  const trainVocab = new Set(trainSide.flatMap((t) => words(t.text)));
  const heldOnly = new Map<string, string>();
  for (const t of TEMPLATES.filter((x) => x.split !== 'train')) for (const w of words(t.text)) if (!trainVocab.has(w)) heldOnly.set(w, t.id);
  assert.ok(heldOnly.size > 30, `${heldOnly.size} words only test / held-out templates use`);
  const rng = new Rng(5);
  const leaks: string[] = [];
  for (const t of trainSide) {
    for (let i = 0; i < 40; i++) {
      const p = compose(t, rng, COMPOSE_CLEAN).text; // typos could make any string: they are not borrowed words
      for (const w of words(p)) if (heldOnly.has(w)) leaks.push(`"${w}" (${heldOnly.get(w)}) in ${t.id}: ${p}`);
    }
  }
  assert.deepEqual(leaks.slice(0, 5), []);
});
