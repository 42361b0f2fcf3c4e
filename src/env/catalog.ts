/**
 * Per-row tool catalogs (issue 12): which tools a row's prompt lists, and in which order.
 *
 * A model that always sees the same list in the same order learns a fixed menu and never reads it; a tool
 * added tomorrow is then invisible to it. So each row lists a seeded SAMPLE of its split's tools, shuffled:
 *   - the tool the request is about (`about`: the gold tool of an execute row, the target of an ask_user row),
 *     unless the row is an unlisted row, where it is left out on purpose and the gold becomes no_call;
 *   - its confusable neighbours often: tools with the same arguments (get_revenue's are get_profit,
 *     get_cash_flow and the synthetic company + fiscal year tools), real ones first, each with `neighbour`
 *     probability, up to half the list;
 *   - the rest drawn from the split's pool, a real tool with probability `real` per slot (so train catalogs,
 *     which can also hold synthetic tools, look like test catalogs, which hold only real ones).
 * And in a share `full` of rows about a real tool (or about none): every real tool of the pool, shuffled (the
 * needed one left out in an unlisted row), so that a prompt listing the whole real menu - what a request without a catalog gets, e.g. from
 * `buildMessages(query)` - is a prompt the model has trained on.
 * Control actions (no_call, ask_user, refuse) are always available and are not part of a catalog.
 *
 * What this is not: the prompt (prompt.ts renders a catalog) or the choice of the gold (synth.ts).
 */
import type { Rng } from '../util/rng';
import { argShapeKey, type ToolSpec } from './tools';
import { signature } from './prompt';

export interface CatalogOptions {
  /** Fewest and most tools listed (inclusive; capped by the pool). */
  min: number;
  max: number;
  /** Probability that each confusable neighbour is listed (until half the list is neighbours). */
  neighbour: number;
  /** Probability that a filler slot takes a real tool (when the pool has real and synthetic ones). */
  real: number;
  /** Probability that the catalog is every real tool of the pool (no size or length limit). */
  full: number;
  /**
   * Most characters of tool lines (prompt.ts `signature`, plus a newline each) a catalog may take; the `about`
   * tool is always listed. Keeps prompt + call within the tiny model's 192-token SFT window: synthetic names
   * cost about twice the tokens of the real ones, whose names its tokenizer learned.
   */
  maxChars: number;
}

export const CATALOG_DEFAULTS: Readonly<CatalogOptions> = Object.freeze({ min: 2, max: 5, neighbour: 0.5, real: 0.5, full: 0.1, maxChars: 200 });

/**
 * Sample one row's catalog from `pool`. `about`: the tool the request concerns (null for no_call / refuse
 * requests); `listAbout`: false for an unlisted row (the tool is then never listed). Returns tools in prompt
 * order. Deterministic given `rng`'s state.
 */
export function sampleCatalog(
  rng: Rng,
  pool: readonly ToolSpec[],
  about: ToolSpec | null,
  listAbout: boolean,
  o: Readonly<CatalogOptions> = CATALOG_DEFAULTS,
): ToolSpec[] {
  const others = pool.filter((t) => t !== about);
  if (!about?.synthetic && rng.next() < o.full) return rng.shuffle(pool.filter((t) => !t.synthetic && (listAbout || t !== about)));
  const k = Math.min(o.min + rng.int(o.max - o.min + 1), others.length + (about && listAbout ? 1 : 0));
  const out: ToolSpec[] = [];
  let chars = 0;
  const add = (t: ToolSpec, always = false): void => {
    const len = signature(t).length + 1;
    if (always || chars + len <= o.maxChars) {
      out.push(t);
      chars += len;
    }
  };
  if (about && listAbout) add(about, true);
  if (about) {
    const key = argShapeKey(about);
    const near = rng.shuffle(others.filter((t) => argShapeKey(t) === key));
    near.sort((a, b) => Number(!!a.synthetic) - Number(!!b.synthetic)); // real neighbours first (stable)
    const cap = Math.ceil(k / 2);
    for (const t of near) {
      if (out.length >= cap) break;
      if (rng.next() < o.neighbour) add(t);
    }
  }
  const rest = others.filter((t) => !out.includes(t));
  const real = rest.filter((t) => !t.synthetic);
  const synth = rest.filter((t) => t.synthetic);
  for (let tries = 0; out.length < k && real.length + synth.length > 0 && tries < 2 * k; tries++) {
    const from = synth.length === 0 || (real.length > 0 && rng.next() < o.real) ? real : synth;
    add(from.splice(rng.int(from.length), 1)[0]);
  }
  return rng.shuffle(out);
}
