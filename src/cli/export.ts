/**
 * `npx tsx src/run.ts export --run DIR [--phase sft|grpo] --out DIR [--data]`
 *
 * A run's model with its adapter(s) merged (PEFT's merge_and_unload), as a Hugging Face checkpoint folder that
 * transformers loads with `AutoModelForCausalLM.from_pretrained(DIR)` / `AutoTokenizer.from_pretrained(DIR)`:
 *   config.json             the model's config (Qwen2ForCausalLM), torch_dtype "float32" (the weights' dtype)
 *   model.safetensors       every weight in F32 under transformers' names, metadata {"format": "pt"}
 *                           (no lm_head.weight when tie_word_embeddings, as transformers writes it)
 *   tokenizer.json, tokenizer_config.json (with the chat template), special_tokens_map.json, ...
 *   generation_config.json  the base model's, or one written from the tokenizer's stop and pad ids
 * With `--data`, also the run's splits (DIR/data/*.jsonl, as `course` writes them) for the distributed engines
 * (src/serve/datasets.ts): `OUT/data/trl/<split>.jsonl` (TRL / OpenRLHF, conversational `prompt` + `label`) and
 * `OUT/data/verl/<split>.parquet` (verl's columns), each parquet file read back and compared before it is kept.
 *
 * Which model (`--run` is what `course` writes, `outputs/<run>/`, or one phase folder of it):
 *   --phase grpo (default)  the newest `grpo/checkpoint-<step>`: its start (trainer_state.json extra.start: the
 *                           base model, plus the SFT adapter for a real checkpoint) with the GRPO adapter folded in
 *   --phase sft             `sft/`: a full model (tiny) as it is, or base + the SFT adapter (a real checkpoint)
 *   --phase control         `control/`: the same, for the course's control run (src/train/runs.ts)
 * The export is checked by loading it back with this project's loader.
 *
 * What it is not: a converter to other dtypes (bf16) or a Hub uploader.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, flagsHelp, parseFlags } from '../util/args';
import type { FlagSpec } from '../util/args';
import { resolveUserPath } from '../util/paths';
import { initBackend } from '../model/backend';
import { Qwen2ForCausalLM } from '../model/qwen2';
import { ChatTokenizer } from '../model/tokenizer';
// The one import of the training phases' helpers (merge_and_unload is the adapter's own: model.adapter, lora.ts).
import { copyTokenizerFiles } from '../train/phases';
import { has, loadMergedModel, readJson, resolveRunModel, type RunModel, type RunPhase, RUN_PHASES } from '../train/runs';
import { readSplit, toTrl, toVerl, writeTrlJsonl, writeVerlParquet } from '../serve/datasets';

const FLAGS: Record<string, FlagSpec> = {
  run: { type: 'string', help: 'a course run folder (outputs/<run>, or what `course --out` wrote), or its sft/ or grpo/ folder (required)' },
  phase: { type: 'string', help: 'which model: the GRPO policy (SFT + the last GRPO adapter), the SFT model, or the control (SFT continued on the pool\'s gold calls)', choices: [...RUN_PHASES], default: 'grpo' },
  out: { type: 'string', help: 'the Hugging Face folder to write (required; must not hold a model already unless --overwrite)' },
  data: { type: 'bool', help: 'also write the splits as TRL JSONL and verl parquet under OUT/data/', default: false },
  data_dir: { type: 'string', help: 'where the splits are (default: RUN/data)' },
  model: { type: 'bool', help: 'write the model (--model=false with --data: only the data)', default: true },
  overwrite: { type: 'bool', help: 'replace the model files of an existing OUT', default: false },
  backend: { type: 'string', help: 'auto | wasm | cpu | tensorflow | webgpu (default: $TFJS_BACKEND, else auto)' },
};

export const help = `Export a run's model (adapter merged) as a Hugging Face checkpoint folder, and with --data its splits for TRL / OpenRLHF (JSONL) and verl (parquet).

usage: npx tsx src/run.ts export --run DIR [--phase grpo|sft|control] --out DIR [--data]

${flagsHelp(FLAGS)}`;

const MODEL_FILES = ['config.json', 'model.safetensors', 'model.safetensors.index.json', 'generation_config.json'];

/** Write the merged model of `r` into `out` (see the file comment); returns the files written. */
export async function exportModel(r: RunModel, out: string): Promise<string[]> {
  const model = await loadMergedModel(r);
  try {
    fs.mkdirSync(out, { recursive: true });
    for (const f of MODEL_FILES) fs.rmSync(path.join(out, f), { force: true });
    await model.savePretrained(out);
  } finally {
    model.dispose();
  }
  // savePretrained writes F32 weights: say so (a Qwen2.5 config says bfloat16, and transformers would cast).
  const cfgFile = path.join(out, 'config.json');
  const cfg = readJson(cfgFile);
  cfg.torch_dtype = 'float32';
  fs.writeFileSync(cfgFile, JSON.stringify(cfg, null, 2) + '\n');
  copyTokenizerFiles(r.tokenizer_dir, out);
  if (!has(out, 'generation_config.json')) {
    // transformers' GenerationConfig.from_model_config takes bos/eos/pad from config.json; the tokenizer's stop
    // ids (ChatML's <|im_end|> and <|endoftext|>) are what generation here stops on, so they go in too.
    const tok = has(out, 'tokenizer.json') && has(out, 'tokenizer_config.json') ? await ChatTokenizer.fromPretrained(out) : null;
    const eos = tok ? tok.stop_token_ids : cfg.eos_token_id ?? null;
    const gen = {
      bos_token_id: typeof cfg.bos_token_id === 'number' ? cfg.bos_token_id : null,
      eos_token_id: Array.isArray(eos) && eos.length === 1 ? eos[0] : eos,
      pad_token_id: tok ? tok.pad_token_id : null,
    };
    fs.writeFileSync(path.join(out, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
  }
  return fs.readdirSync(out).filter((f) => fs.statSync(path.join(out, f)).isFile()).sort();
}

/** Write the splits found in `dataDir` as TRL JSONL and verl parquet under `out/data/`. */
export async function exportData(dataDir: string, out: string): Promise<{ split: string; rows: number; trl: string; verl: string; parquet_bytes: number }[]> {
  const splits = ['train', 'test', 'heldout_tools'].filter((s) => fs.existsSync(path.join(dataDir, `${s}.jsonl`)));
  if (splits.length === 0) throw new Error(`${dataDir}: no train.jsonl, test.jsonl or heldout_tools.jsonl`);
  const done = [];
  for (const split of splits) {
    const rows = readSplit(path.join(dataDir, `${split}.jsonl`));
    const trl = path.join(out, 'data', 'trl', `${split}.jsonl`);
    const verl = path.join(out, 'data', 'verl', `${split}.parquet`);
    writeTrlJsonl(trl, rows.map(toTrl));
    const bytes = await writeVerlParquet(verl, rows.map((r, i) => toVerl(r, split, i)));
    done.push({ split, rows: rows.length, trl, verl, parquet_bytes: bytes });
  }
  return done;
}

export async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS);
  if (typeof f.run !== 'string') throw new ArgError('--run DIR is required (a course run folder)');
  if (typeof f.out !== 'string') throw new ArgError('--out DIR is required (the Hugging Face folder to write)');
  if (!f.model && !f.data) throw new ArgError('--model=false leaves nothing to do without --data');
  const run = resolveUserPath(f.run);
  const out = resolveUserPath(f.out);
  if (f.model && has(out, 'model.safetensors') && !f.overwrite) throw new ArgError(`--out ${out} already holds a model (pass --overwrite to replace it)`);

  if (f.model) {
    const r = resolveRunModel(run, f.phase as RunPhase);
    console.log(`export: ${r.phase} model = ${r.base_model}${r.adapters.map((a) => ` + ${a}`).join('')} (merged)`);
    await initBackend(f.backend as string);
    const files = await exportModel(r, out);
    // Load it back: the folder must stand on its own.
    const back = await Qwen2ForCausalLM.fromPretrained(out);
    const n = [...back.params.values()].reduce((a, v) => a + v.size, 0);
    back.dispose();
    if (!has(out, 'tokenizer.json')) throw new Error(`${r.tokenizer_dir}: no tokenizer.json to copy; the export in ${out} has no tokenizer`);
    await ChatTokenizer.fromPretrained(out);
    console.log(`export: wrote ${out} (${files.join(', ')}); reloads: ${n} parameters`);
  }
  if (f.data) {
    const dataDir = typeof f.data_dir === 'string' ? resolveUserPath(f.data_dir) : path.join(run, 'data');
    for (const d of await exportData(dataDir, out)) {
      console.log(`export: ${d.split}: ${d.rows} rows -> ${d.trl}, ${d.verl} (${d.parquet_bytes} bytes, read back)`);
    }
  }
  return 0;
}
