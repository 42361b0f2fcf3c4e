/**
 * The phrasing composer: one core template (templates.ts) in, one phrasing out - still with its value slots
 * ({stock}, {date}, ...), which synth.ts fills afterwards. Seeded: the same Rng state gives the same phrasing.
 *
 * Steps, each taken with a small share (COMPOSE_DEFAULTS), in this order:
 *   metric      a synthetic tool's {metric} slot gets one of its wordings (always; SYNTHETIC_PHRASES)
 *   synonyms    metric and action words of the template's topic swap for one another (SYNONYMS: "revenue" ->
 *               "turnover", "net income" -> "after-tax profit"), never across tools
 *   start       an opening verb swaps within its group (START_SYNONYMS: "Get" -> "Fetch", "Can you" -> "Could you")
 *   order       a trailing "in {fy}" / "on {date}" moves to the front ("In {fy}, what was ...?"), or back
 *   opener      "Hey, " / "Quick question: " ... before the request
 *   closer      " Thanks." / ", please" ... after it
 *   lowercase   every letter outside the slots lowered (and sometimes the final mark dropped)
 *   typo        one word of 4+ letters outside the slots gets a swapped, dropped or doubled letter
 * Slot values are never touched, so gold values stay canonical.
 *
 * What this is not: a paraphrase model. It adds no information to a request (no closer names a date or an
 * amount), so an ask_user template stays an ask_user request and a no_call one stays no_call.
 */
import type { Rng } from '../util/rng';
import { CLOSERS, OPENERS, START_SYNONYMS, SYNONYMS, SYNTHETIC_PHRASES } from './templates';

/** The share of phrasings each step touches (synonyms: per matching group). */
export interface ComposeOptions {
  synonyms: number;
  start: number;
  order: number;
  opener: number;
  closer: number;
  lowercase: number;
  typo: number;
}

export const COMPOSE_DEFAULTS: Readonly<ComposeOptions> = Object.freeze({
  synonyms: 0.5,
  start: 0.4,
  order: 0.25,
  opener: 0.3,
  closer: 0.25,
  lowercase: 0.1,
  typo: 0.08,
});

/** Composition without its surface noise (no lowercase, no typos): for counting phrasings honestly. */
export const COMPOSE_CLEAN: Readonly<ComposeOptions> = Object.freeze({ ...COMPOSE_DEFAULTS, lowercase: 0, typo: 0 });

/** What the composer needs to know about a core template. */
export interface CoreTemplate {
  text: string;
  /** The synonym topic: a tool's name ('ask_user' templates: their target tool), 'refuse' or 'no_call'. */
  topic: string;
  /** The gold tool, for a synthetic tool's {metric} wordings (SYNTHETIC_PHRASES) when `metrics` is not given. */
  tool: string;
  /** The wordings of the {metric} slot, when the template has one. */
  metrics?: readonly string[];
}

/** A composed phrasing: slots still unfilled. `lower`: the request is all lower case (do not capitalise it). */
export interface Phrasing {
  text: string;
  lower: boolean;
}

const SLOT = /(\{\w+\})/;

/** Apply `f` to the text outside slots only. */
function outsideSlots(text: string, f: (s: string) => string): string {
  return text.split(SLOT).map((part, i) => (i % 2 === 1 ? part : f(part))).join('');
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const isUpper = (c: string) => c !== c.toLowerCase() && c === c.toUpperCase();
const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** Lower a request's first letter when it goes after an opener or a fronted phrase ("What" -> "what"; "I", "EOD", a slot stay). */
export function lowerFirst(s: string): string {
  if (/^(I\b|I'|\{|[A-Z]{2})/.test(s)) return s;
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** Replace one occurrence of a group member (outside slots) by another member, keeping the first letter's case. */
function swapSynonym(text: string, group: readonly string[], rng: Rng, atStart: boolean): string {
  const members = [...group].sort((a, b) => b.length - a.length);
  const re = new RegExp(`${atStart ? '^' : '\\b'}(${members.map(escape).join('|')})\\b`, 'i');
  let done = false;
  const parts = text.split(SLOT);
  for (let i = 0; i < parts.length && !done; i += 2) {
    if (atStart && i > 0) break;
    const m = re.exec(parts[i]);
    if (!m) continue;
    const found = m[1];
    const others = group.filter((w) => w.toLowerCase() !== found.toLowerCase());
    if (others.length === 0) break;
    let repl = rng.pick(others);
    if (isUpper(found.charAt(0))) repl = capitalise(repl);
    parts[i] = parts[i].slice(0, m.index + m[0].length - found.length) + repl + parts[i].slice(m.index + m[0].length);
    done = true;
  }
  return parts.join('');
}

const TAIL = /^(.*\S) (in|on|for|during|as of) (\{date\}|\{fy\})([?.!]*)$/;
const HEAD = /^(In|On|For|During|As of) (\{date\}|\{fy\}), (.+?)([?.!]*)$/;

/** Move a trailing time phrase to the front, or a leading one to the back. Unchanged when neither pattern fits. */
export function reorder(text: string): string {
  const t = TAIL.exec(text);
  if (t && !/[,:;]/.test(t[1])) return `${capitalise(t[2])} ${t[3]}, ${lowerFirst(t[1])}${t[4]}`;
  const h = HEAD.exec(text);
  if (h) return `${capitalise(h[3])} ${h[1].toLowerCase()} ${h[2]}${h[4]}`;
  return text;
}

const NO_OPENER = /^(Hi|Hey|Hello|Good morning|Thanks|Morning)\b|^[A-Z][\w'-]*( [\w'-]+)?: /;

function addOpener(text: string, rng: Rng): string {
  if (NO_OPENER.test(text)) return text;
  return rng.pick(OPENERS) + lowerFirst(text);
}

function addCloser(text: string, rng: Rng): string {
  const c = rng.pick(CLOSERS);
  const end = /[.?!]$/.test(text);
  if (c === ', please') {
    if (/please/i.test(text)) return text;
    return end ? text.slice(0, -1) + ', please' + text.slice(-1) : text + ', please';
  }
  return end ? text + c : text + c.replace(/[.!]$/, '').toLowerCase();
}

/** One typo in one word of 4+ letters outside the slots: two letters swapped, one dropped, or one doubled. */
export function addTypo(text: string, rng: Rng): string {
  const parts = text.split(SLOT);
  const words: { part: number; start: number; word: string }[] = [];
  for (let i = 0; i < parts.length; i += 2) {
    for (const m of parts[i].matchAll(/[A-Za-z]{4,}/g)) words.push({ part: i, start: m.index!, word: m[0] });
  }
  if (words.length === 0) return text;
  const w = rng.pick(words);
  const s = w.word;
  const k = 1 + rng.int(s.length - 2); // an interior letter: the first and last stay
  let typo: string;
  switch (rng.int(3)) {
    case 0: typo = s.slice(0, k) + s[k + 1] + s[k] + s.slice(k + 2); break;
    case 1: typo = s.slice(0, k) + s.slice(k + 1); break;
    default: typo = s.slice(0, k) + s[k] + s.slice(k); break;
  }
  if (typo === s) typo = s.slice(0, k) + s.slice(k + 1);
  const p = parts[w.part];
  parts[w.part] = p.slice(0, w.start) + typo + p.slice(w.start + s.length);
  return parts.join('');
}

/** Compose one phrasing of a core template (see the file comment). Deterministic given `rng`'s state. */
export function compose(core: CoreTemplate, rng: Rng, o: Readonly<ComposeOptions> = COMPOSE_DEFAULTS): Phrasing {
  let text = core.text;
  if (text.includes('{metric}')) {
    const phrases = core.metrics ?? SYNTHETIC_PHRASES[core.tool];
    if (!phrases) throw new Error(`composer: template "${text}" has {metric} but ${core.tool} has no SYNTHETIC_PHRASES`);
    const phrase = rng.pick(phrases);
    text = text.replace('{metric}', text.startsWith('{metric}') ? capitalise(phrase) : phrase);
  }
  for (const group of SYNONYMS[core.topic] ?? []) {
    if (rng.next() < o.synonyms) text = swapSynonym(text, group, rng, false);
  }
  if (rng.next() < o.start) {
    const g = START_SYNONYMS.filter((grp) => grp.some((w) => new RegExp(`^${escape(w)}\\b`).test(text)));
    if (g.length) text = swapSynonym(text, rng.pick(g), rng, true);
  }
  if (rng.next() < o.order) text = reorder(text);
  if (rng.next() < o.opener) text = addOpener(text, rng);
  if (rng.next() < o.closer) text = addCloser(text, rng);
  let lower = false;
  if (rng.next() < o.lowercase) {
    text = outsideSlots(text, (s) => s.toLowerCase());
    if (rng.next() < 0.5) text = text.replace(/[.?!]$/, '');
    lower = true;
  }
  if (rng.next() < o.typo) text = addTypo(text, rng);
  if (!lower && /^[a-z]/.test(text)) text = capitalise(text);
  return { text, lower };
}

/**
 * Distinct phrasings among `draws` compositions of `cores` (a core picked uniformly each time): a lower bound
 * on how many different phrasings, before slot filling, the composer makes of them.
 */
export function countPhrasings(cores: readonly CoreTemplate[], rng: Rng, draws: number, o: Readonly<ComposeOptions> = COMPOSE_DEFAULTS): number {
  const seen = new Set<string>();
  for (let i = 0; i < draws; i++) seen.add(compose(rng.pick(cores), rng, o).text);
  return seen.size;
}
