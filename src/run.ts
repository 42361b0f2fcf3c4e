/**
 * toolcall-grpo: the headless entry point. `npx tsx src/run.ts <command> [--flags]`.
 *
 * Each command lives in src/cli/<command>.ts and exports `help` (its --help text) and
 * `main(argv): Promise<number>` (the exit code). Commands are imported lazily so that, e.g., `verify` never
 * loads TensorFlow.js. The notebooks call the same library functions these commands call.
 */
import { ArgError } from './util/args';

interface Command {
  summary: string;
  load: () => Promise<{ help: string; main: (argv: string[]) => Promise<number> }>;
}

// One line per command. Keep `summary` true: it is what `run.ts --help` prints.
const COMMANDS: Record<string, Command> = {
  synth: { summary: 'synthesize the train / test / heldout_tools JSONL splits (seeded)', load: () => import('./cli/synth') },
  verify: { summary: 'score completions against gold calls (reward + components + reason per row)', load: () => import('./cli/verify') },
  eval: { summary: 'four metrics, per behaviour/tool breakdown and name confusion matrix of predictions', load: () => import('./cli/eval') },
  pretrain: { summary: 'build and pretrain the tiny base model on the synthetic financial corpus (models/tiny-base)', load: () => import('./cli/pretrain') },
  tiny: { summary: 'write a random tiny model, not pretrained (BPE tokenizer on the synthetic corpus + random Qwen2; what course --from_scratch uses) and print token-length stats', load: () => import('./cli/tiny') },
  logits: { summary: 'print a checkpoint\'s logits (and a greedy KV-cache continuation) for given ids, as JSON', load: () => import('./cli/logits') },
  train: { summary: 'one training phase (SFT or GRPO) on JSONL data; checkpoints, metrics.jsonl, --resume', load: () => import('./cli/train') },
  bench: { summary: 'speed: verifier throughput, GRPO step ms and KV-cache tokens/s per preset, vs the PyTorch peer (JSON)', load: () => import('./bench') },
  serve: { summary: 'the verifier as an HTTP reward service (OpenRLHF /get_reward; TRL and verl glue in examples/distributed/)', load: () => import('./cli/serve') },
  export: { summary: "a run's model with its adapter merged, as a Hugging Face checkpoint folder; --data: the splits for TRL (JSONL) and verl (parquet)", load: () => import('./cli/export') },
  predict: { summary: "ask a run's model (or any checkpoint): greedy calls for requests (JSONL, arguments or stdin), each run in the sandbox; gold rows scored with the four metrics", load: () => import('./cli/predict') },
  course: { summary: 'the whole course: data -> tiny base (models/tiny-base) -> SFT -> eval -> GRPO -> eval -> report (outputs/<run>/)', load: () => import('./cli/course') },
};

/** What runs when no command is given. */
const DEFAULT_COMMAND = 'course';

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(10)} ${c.summary}`);
  return [
    'usage: npx tsx src/run.ts [command] [--flags]     (npm start = the default command)',
    '',
    'commands:',
    ...rows,
    '',
    DEFAULT_COMMAND ? `With no command, runs '${DEFAULT_COMMAND}'.` : '',
    "`npx tsx src/run.ts <command> --help` lists a command's flags.",
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  let [cmd, ...rest] = argv;
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return 0;
  }
  if (cmd === undefined || cmd.startsWith('--')) {
    if (!DEFAULT_COMMAND) {
      console.log(usage());
      return cmd === undefined ? 0 : 2;
    }
    rest = cmd === undefined ? [] : argv;
    cmd = DEFAULT_COMMAND;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    console.error(`error: unknown command '${cmd}'\n\n${usage()}`);
    return 2;
  }
  const mod = await c.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(mod.help);
    return 0;
  }
  return mod.main(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof ArgError) {
      console.error(`error: ${err.message}\n(see --help)`);
      process.exit(2);
    }
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
