/**
 * Deterministic mutations of a gold tool call: the mistakes a small model makes (wrong or confusable tool,
 * missing argument, wrong type or value, date in another format, broken JSON, prose around the JSON, ...) and
 * some adversarial ones (look-alike name, two calls, non-object JSON). The course's verifier chapter scores
 * them to show what each reward mode pays for each mistake.
 *
 * Not a fuzzer for the verifier's property tests and not a model simulator: each mutation is one named,
 * readable edit of the gold call's JSON text. Seeded through util/rng (same seed, same strings).
 */
import { Rng } from '../util/rng';

/** A parsed gold call. */
export interface Call {
  name: string;
  arguments: Record<string, unknown>;
}

/** Names of the mutations, in the order the chapter shows them. */
export const MUTATIONS = [
  'exact',
  'wrong_name',
  'confusable_tool',
  'missing_arg',
  'wrong_type',
  'wrong_value',
  'extra_arg',
  'date_format',
  'broken_json',
  'prose_around',
  'json_fence',
  'lookalike_name',
  'two_calls',
  'not_an_object',
] as const;
export type Mutation = (typeof MUTATIONS)[number];

/** Tools a model mixes up (same or overlapping arguments, different figure). */
const CONFUSABLE: Record<string, readonly string[]> = {
  get_revenue: ['get_profit', 'get_cash_flow'],
  get_profit: ['get_revenue', 'get_cash_flow'],
  get_cash_flow: ['get_revenue', 'get_profit'],
  convert_currency: ['get_exchange_rate'],
  get_exchange_rate: ['convert_currency'],
  get_stock_price: ['get_market_cap'],
  get_market_cap: ['get_stock_price'],
  ask_user: ['no_call'],
  refuse: ['no_call'],
  no_call: ['refuse'],
};

const UNRELATED = ['get_stock_price', 'get_revenue', 'convert_currency', 'place_order', 'no_call'];
const OTHER_TICKERS = ['AAPL', 'MSFT', 'TSLA', 'NVDA', 'AMZN'];

const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** A different value of the same JSON type, chosen by argument name where it matters. */
function otherValue(key: string, v: unknown, rng: Rng): unknown {
  if (key === 'ticker' && typeof v === 'string') return rng.pick(OTHER_TICKERS.filter((t) => t !== v));
  if (key === 'date' && typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const day = Number(v.slice(8, 10));
    return v.slice(0, 8) + String(day === 2 ? 3 : 2).padStart(2, '0');
  }
  if (typeof v === 'number') return Number.isInteger(v) ? v + 1 + rng.int(3) : v * 2;
  if (typeof v === 'string') return v.length > 0 ? v.split('').reverse().join('') + 'x' : 'x';
  if (Array.isArray(v)) return v.length > 0 ? [] : ['date'];
  return null;
}

/** The same value with the wrong JSON type (number <-> string, array -> string). */
function otherType(v: unknown): unknown {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return /^\d+(\.\d+)?$/.test(v) ? Number(v) : [v];
  if (Array.isArray(v)) return v.join(',');
  return String(v);
}

/** "2025-01-03" -> "01/03/2025" (US style). */
function usDate(v: string): string {
  return `${v.slice(5, 7)}/${v.slice(8, 10)}/${v.slice(0, 4)}`;
}

/**
 * Apply one mutation to a gold call and return the completion text. A mutation that does not apply to this
 * call (no argument to drop, no date to reformat) falls back to the nearest one that does and says so in
 * `applied`.
 */
export function mutateCall(gold: Call, mutation: Mutation, rng: Rng): { text: string; applied: Mutation } {
  const args = { ...gold.arguments };
  const keys = Object.keys(args);
  const call = (name: string, a: Record<string, unknown>) => JSON.stringify({ name, arguments: a });
  switch (mutation) {
    case 'exact':
      return { text: call(gold.name, args), applied: 'exact' };
    case 'wrong_name':
      return { text: call(rng.pick(UNRELATED.filter((n) => n !== gold.name && !(CONFUSABLE[gold.name] ?? []).includes(n))), args), applied: 'wrong_name' };
    case 'confusable_tool': {
      const near = CONFUSABLE[gold.name];
      if (!near) return mutateCall(gold, 'wrong_name', rng);
      return { text: call(rng.pick(near), args), applied: 'confusable_tool' };
    }
    case 'missing_arg': {
      if (keys.length === 0) return mutateCall(gold, 'extra_arg', rng);
      delete args[rng.pick(keys)];
      return { text: call(gold.name, args), applied: 'missing_arg' };
    }
    case 'wrong_type': {
      if (keys.length === 0) return mutateCall(gold, 'extra_arg', rng);
      const k = rng.pick(keys);
      args[k] = otherType(args[k]);
      return { text: call(gold.name, args), applied: 'wrong_type' };
    }
    case 'wrong_value': {
      if (keys.length === 0) return mutateCall(gold, 'extra_arg', rng);
      const k = rng.pick(keys);
      args[k] = otherValue(k, args[k], rng);
      return { text: call(gold.name, args), applied: 'wrong_value' };
    }
    case 'extra_arg':
      args[has(args, 'note') ? 'note2' : 'note'] = 'as requested';
      return { text: call(gold.name, args), applied: 'extra_arg' };
    case 'date_format': {
      if (typeof args.date !== 'string') return mutateCall(gold, 'wrong_value', rng);
      args.date = usDate(args.date);
      return { text: call(gold.name, args), applied: 'date_format' };
    }
    case 'broken_json': {
      const s = call(gold.name, args);
      return { text: s.slice(0, Math.max(1, s.length - 1 - rng.int(Math.min(8, s.length - 1)))), applied: 'broken_json' };
    }
    case 'prose_around':
      return { text: `Sure! Here is the call: ${call(gold.name, args)}`, applied: 'prose_around' };
    case 'json_fence':
      return { text: '```json\n' + call(gold.name, args) + '\n```', applied: 'json_fence' };
    case 'lookalike_name':
      // Latin 'e' -> Cyrillic 'е' (U+0435): renders the same, is a different name.
      return { text: call(gold.name.includes('e') ? gold.name.replace('e', '\u0435') : gold.name + '\u200b', args), applied: 'lookalike_name' };
    case 'two_calls':
      return { text: call(gold.name, args) + call(gold.name, args), applied: 'two_calls' };
    case 'not_an_object':
      return { text: JSON.stringify([{ name: gold.name, arguments: args }]), applied: 'not_an_object' };
  }
}

/**
 * Every mutation of every gold call, `perCall` seeded draws each: rows {mutation, completion, index of the gold}.
 * `mutation` is the one actually applied (see `mutateCall`'s fallbacks), so counts per mutation can differ.
 */
export function mutateAll(
  golds: readonly Call[],
  seed: number,
  perCall = 1,
  mutations: readonly Mutation[] = MUTATIONS,
): { mutation: Mutation; completion: string; gold_index: number }[] {
  const rng = new Rng(seed);
  const out: { mutation: Mutation; completion: string; gold_index: number }[] = [];
  golds.forEach((g, gi) => {
    for (const m of mutations) {
      for (let k = 0; k < perCall; k++) {
        const r = mutateCall(g, m, rng);
        out.push({ mutation: r.applied, completion: r.text, gold_index: gi });
      }
    }
  });
  return out;
}
