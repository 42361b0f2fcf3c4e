/**
 * Command-line flags in the nanoGPT spirit: `--key value` or `--key=value`, typed by a spec, unknown keys and
 * wrong types rejected with a message that names the flag. `--help` is handled by the caller (see run.ts).
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

export type FlagValues = Record<string, string | number | boolean | string[] | undefined>;

export class ArgError extends Error {}

/** Parse argv against a spec. Throws ArgError (caught by run.ts, printed without a stack) on bad input. */
export function parseFlags(argv: string[], spec: Record<string, FlagSpec>): FlagValues {
  const out: FlagValues = {};
  for (const [k, s] of Object.entries(spec)) if (s.default !== undefined) out[k] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new ArgError(`unexpected argument '${a}' (flags look like --name value)`);
    let key = a.slice(2);
    let raw: string | undefined;
    const eq = key.indexOf('=');
    if (eq >= 0) {
      raw = key.slice(eq + 1);
      key = key.slice(0, eq);
    }
    const s = spec[key];
    if (!s) {
      const known = Object.keys(spec).map((k) => '--' + k).join(', ');
      throw new ArgError(`unknown flag --${key}; known flags: ${known || '(none)'}`);
    }
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
  return out;
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
