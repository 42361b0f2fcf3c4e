/**
 * Command-line flags in the nanoGPT spirit: `--key value` or `--key=value`, typed by a spec, unknown keys and
 * wrong types rejected with a message that names the flag (and, for a mistyped name, the nearest known one).
 * `--help` is handled by the caller (see run.ts).
 *
 * What it is not: the training configs (src/train/config.ts builds its flags from its field tables and
 * resolves them there); this file only turns argv into typed values.
 */
export type FlagType = 'string' | 'int' | 'float' | 'bool' | 'list';

export interface FlagSpec {
  type: FlagType;
  /** One line for --help. */
  help: string;
  default?: string | number | boolean | string[];
  /** Allowed values (string flags only). */
  choices?: readonly string[];
}

export type FlagValue = string | number | boolean | string[];
export type FlagValues = Record<string, FlagValue | undefined>;

/** The value type a spec entry parses to (any flag value when the spec's type is not a literal). */
type ValueOf<S extends FlagSpec> = FlagType extends S['type'] ? FlagValue : S['type'] extends 'int' | 'float' ? number : S['type'] extends 'bool' ? boolean : S['type'] extends 'list' ? string[] : string;

/** Parsed values of a spec: flags with a default are always set, the others may be undefined. */
export type ParsedFlags<S extends Record<string, FlagSpec>> = {
  [K in keyof S]: S[K] extends { default: FlagValue } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined;
};

export class ArgError extends Error {}

/** Levenshtein distance (insert, delete, substitute; each costs 1). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur.push(Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The known name nearest to `name`, when it is near enough to be a typo (at most 2 edits, and at most a third of
 * the name's length for short names), else null. Ties go to the first in `known`.
 */
export function didYouMean(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best !== null && bestD <= Math.min(2, Math.max(1, Math.floor(name.length / 3))) ? best : null;
}

/** The error for a flag no spec knows: names the nearest known flag when there is one. */
export function unknownFlag(key: string, known: readonly string[]): ArgError {
  const near = didYouMean(key, known);
  return new ArgError(near ? `unknown flag --${key}; did you mean --${near}?` : `unknown flag --${key}`);
}

/** Parse argv against a spec. Throws ArgError (caught by run.ts, printed without a stack) on bad input. */
export function parseFlags<S extends Record<string, FlagSpec>>(argv: string[], spec: S): ParsedFlags<S> {
  return parseArgv(argv, spec, null);
}

/**
 * Like parseFlags, for commands that also take plain arguments (`predict "request" ...`): every argument that
 * is not a flag (or a flag's value) is a positional, in order, and everything after a lone `--` is one too
 * (so a positional may start with `--`). Flags and positionals may be interleaved.
 */
export function parseFlagsAndPositionals<S extends Record<string, FlagSpec>>(argv: string[], spec: S): { flags: ParsedFlags<S>; positionals: string[] } {
  const positionals: string[] = [];
  const flags = parseArgv(argv, spec, positionals);
  return { flags, positionals };
}

/** The parser of both: `positionals` null = plain arguments are an error. */
function parseArgv<S extends Record<string, FlagSpec>>(argv: string[], spec: S, positionals: string[] | null): ParsedFlags<S> {
  const out: FlagValues = {};
  for (const [k, s] of Object.entries(spec)) if (s.default !== undefined) out[k] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (positionals && a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--')) {
      if (positionals) {
        positionals.push(a);
        continue;
      }
      throw new ArgError(`unexpected argument '${a}' (flags look like --name value)`);
    }
    let key = a.slice(2);
    let raw: string | undefined;
    const eq = key.indexOf('=');
    if (eq >= 0) {
      raw = key.slice(eq + 1);
      key = key.slice(0, eq);
    }
    const s: FlagSpec | undefined = spec[key];
    if (!s) throw unknownFlag(key, Object.keys(spec));
    if (s.type === 'bool') {
      if (raw === undefined) out[key] = true;
      else if (raw === 'true' || raw === '1') out[key] = true;
      else if (raw === 'false' || raw === '0') out[key] = false;
      else throw new ArgError(`--${key} expects true or false, got '${raw}'`);
      continue;
    }
    if (raw === undefined) {
      if (i + 1 >= argv.length) throw new ArgError(`--${key} needs a value`);
      raw = argv[++i];
    }
    out[key] = convert(key, raw, s);
  }
  return out as ParsedFlags<S>;
}

function convert(key: string, raw: string, s: FlagSpec): string | number | string[] {
  switch (s.type) {
    case 'int': {
      if (!/^-?\d+$/.test(raw)) throw new ArgError(`--${key} expects an integer, got '${raw}'`);
      return Number(raw);
    }
    case 'float': {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new ArgError(`--${key} expects a number, got '${raw}'`);
      return v;
    }
    case 'list':
      return raw.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
    default:
      if (s.choices && !s.choices.includes(raw)) {
        throw new ArgError(`--${key} must be one of ${s.choices.join(' | ')}, got '${raw}'`);
      }
      return raw;
  }
}

/** Render a spec as the body of a --help text. */
export function flagsHelp(spec: Record<string, FlagSpec>): string {
  const rows = Object.entries(spec).map(([k, s]) => {
    const def = s.default === undefined ? '' : ` (default: ${Array.isArray(s.default) ? s.default.join(',') : s.default})`;
    const ch = s.choices ? ` [${s.choices.join('|')}]` : '';
    return `  --${k.padEnd(22)} ${s.help}${ch}${def}`;
  });
  return rows.join('\n');
}
