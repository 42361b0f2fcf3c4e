/**
 * The course's splits in the distributed engines' data formats (written by `export --data`):
 *
 *   TRL / OpenRLHF JSONL (conversational)  {"prompt": [{"role", "content"}, ...], "label": {"gold_call",
 *       "expected_result"}, "id", "behavior", "tool"}
 *       TRL: `load_dataset("json", data_files=...)`; every column reaches the reward function, so `label`
 *       arrives as `label=[...]` (examples/distributed/trl_reward.py). OpenRLHF: `--data.input_key prompt
 *       --data.apply_chat_template --data.label_key label` (older: `--input_key`, `--apply_chat_template`,
 *       `--label_key`); its remote client then sends `labels[i]` = this object.
 *   verl parquet  {"data_source": "toolcall-grpo", "prompt": [{"role", "content"}, ...], "ability": "tool_call",
 *       "reward_model": {"style": "rule", "ground_truth": "<the label as JSON text>"}, "extra_info": {"split",
 *       "index", "id", "behavior", "tool", "query"}}: the columns of verl's own examples
 *       (examples/data_preprocess/gsm8k.py); `ground_truth` is JSON text so it reaches compute_score unchanged
 *       whatever pandas / numpy do to nested columns, and the service accepts a label as JSON text.
 *
 * Parquet through hyparquet-writer (pure JavaScript, no native code, one dependency: hyparquet, the reader from
 * the same maintainers, used here to read every file back). It writes nested columns (a LIST of STRUCTs for
 * `prompt`, STRUCTs for `reward_model` and `extra_info`) with their logical types, so Arrow readers see
 * `list<struct<role, content>>`; tests/export.test.ts also reads the files with a second, independent reader
 * (parquet-wasm, Apache Arrow's Rust implementation). Alternatives looked at: parquetjs and its forks
 * (@dsnp/parquetjs: ~70 packages, an AWS SDK among them), parquet-wasm as the writer (needs Arrow tables built
 * first, 15 MB of wasm).
 *
 * What it is not: a dataset builder (src/env/synth.ts makes the rows) or a general parquet library.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The columns of a course split row this needs (src/env/synth.ts's Row has them). */
export interface SplitRow {
  id?: string;
  messages: { role: string; content: string }[];
  query?: string;
  gold_call: string;
  expected_result: string;
  behavior?: string;
  tool?: string;
}

/** The gold as the reward service reads it (`labels[i]`). */
export interface Label {
  gold_call: string;
  expected_result: string;
}

export interface TrlRow {
  prompt: { role: string; content: string }[];
  label: Label;
  id: string | null;
  behavior: string | null;
  tool: string | null;
}

export interface VerlRow {
  data_source: string;
  prompt: { role: string; content: string }[];
  ability: string;
  reward_model: { style: 'rule'; ground_truth: string };
  extra_info: { split: string; index: number; id: string | null; behavior: string | null; tool: string | null; query: string | null };
}

export const DATA_SOURCE = 'toolcall-grpo';
export const ABILITY = 'tool_call';

/** Read a split file, checking the columns the formats need; errors name FILE:LINE. */
export function readSplit(file: string): SplitRow[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: SplitRow[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const at = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new Error(`${at}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    const r = v as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Error(`${at}: expected a JSON object`);
    const msgs = r.messages;
    if (!Array.isArray(msgs) || msgs.length === 0 || !msgs.every((m) => m && typeof m.role === 'string' && typeof m.content === 'string')) {
      throw new Error(`${at}: "messages" must be a non-empty list of {"role", "content"} strings (the chat form of the prompt)`);
    }
    for (const k of ['gold_call', 'expected_result']) if (typeof r[k] !== 'string') throw new Error(`${at}: "${k}" must be a string`);
    for (const k of ['id', 'query', 'behavior', 'tool']) if (r[k] !== undefined && typeof r[k] !== 'string') throw new Error(`${at}: "${k}" must be a string when present`);
    out.push(r as unknown as SplitRow);
  });
  return out;
}

const opt = (s: string | undefined) => (typeof s === 'string' ? s : null);
const messagesOf = (r: SplitRow) => r.messages.map((m) => ({ role: m.role, content: m.content }));

export function toTrl(r: SplitRow): TrlRow {
  return { prompt: messagesOf(r), label: { gold_call: r.gold_call, expected_result: r.expected_result }, id: opt(r.id), behavior: opt(r.behavior), tool: opt(r.tool) };
}

export function toVerl(r: SplitRow, split: string, index: number): VerlRow {
  return {
    data_source: DATA_SOURCE,
    prompt: messagesOf(r),
    ability: ABILITY,
    reward_model: { style: 'rule', ground_truth: JSON.stringify({ gold_call: r.gold_call, expected_result: r.expected_result }) },
    extra_info: { split, index, id: opt(r.id), behavior: opt(r.behavior), tool: opt(r.tool), query: opt(r.query) },
  };
}

function writeAtomicFile(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** Write TRL rows as JSONL. */
export function writeTrlJsonl(file: string, rows: readonly TrlRow[]): void {
  writeAtomicFile(file, rows.map((r) => JSON.stringify(r) + '\n').join(''));
}

// The parquet schema of VerlRow (depth-first, as parquet's thrift schema lists it). Strings are UTF8 byte
// arrays; `prompt` is the standard 3-level LIST (prompt / list / element) of a struct.
const str = (name: string, repetition_type: 'REQUIRED' | 'OPTIONAL' = 'REQUIRED') => ({ name, type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type });
const VERL_SCHEMA = [
  { name: 'schema', num_children: 5 },
  str('data_source'),
  { name: 'prompt', repetition_type: 'REQUIRED' as const, converted_type: 'LIST' as const, num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED' as const, num_children: 1 },
  { name: 'element', repetition_type: 'REQUIRED' as const, num_children: 2 },
  str('role'),
  str('content'),
  str('ability'),
  { name: 'reward_model', repetition_type: 'REQUIRED' as const, num_children: 2 },
  str('style'),
  str('ground_truth'),
  { name: 'extra_info', repetition_type: 'REQUIRED' as const, num_children: 6 },
  str('split'),
  { name: 'index', type: 'INT64' as const, repetition_type: 'REQUIRED' as const },
  str('id', 'OPTIONAL'),
  str('behavior', 'OPTIONAL'),
  str('tool', 'OPTIONAL'),
  str('query', 'OPTIONAL'),
];
const VERL_COLUMNS = ['data_source', 'prompt', 'ability', 'reward_model', 'extra_info'] as const;

/** The JSON form of a parquet row as hyparquet reads it back (INT64 comes back as BigInt). */
function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x)));
}

/**
 * Write verl rows as parquet, then read the file back with hyparquet and check that every row comes back equal.
 * Returns the file size in bytes.
 */
export async function writeVerlParquet(file: string, rows: readonly VerlRow[]): Promise<number> {
  // ESM-only packages, imported here so that loading this module (e.g. from a CommonJS notebook) needs neither.
  const { parquetWriteBuffer } = await import('hyparquet-writer');
  const { parquetReadObjects } = await import('hyparquet');
  const columnData = VERL_COLUMNS.map((name) => ({
    name,
    data: rows.map((r) => (name === 'extra_info' ? { ...r.extra_info, index: BigInt(r.extra_info.index) } : r[name])),
  }));
  const buf = parquetWriteBuffer({ columnData, schema: VERL_SCHEMA });
  const back = (await parquetReadObjects({ file: buf })) as unknown[];
  if (back.length !== rows.length) throw new Error(`${file}: wrote ${rows.length} rows but read back ${back.length}`);
  for (let i = 0; i < rows.length; i++) {
    const a = JSON.stringify(plain(back[i]));
    const b = JSON.stringify(plain(rows[i]));
    if (a !== b) throw new Error(`${file}: row ${i} reads back as ${a.slice(0, 200)}, wrote ${b.slice(0, 200)}`);
  }
  writeAtomicFile(file, new Uint8Array(buf));
  return buf.byteLength;
}
