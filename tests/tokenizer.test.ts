// Tokenizer tests: BPE training (size, base bytes, specials, determinism), the JS loader against the Rust
// tokenizer, exact round trips, the ChatML template, stop ids, and a Qwen2.5-style directory as it comes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tokenizer as RustTokenizer } from 'tokenizers';
import { byteLevelAlphabet, chatTokenizerConfig, jsonText, trainByteLevelBpe, writeTokenizerFiles } from '../src/model/bpe';
import { CHATML_TEMPLATE } from '../src/model/chat_template';
import { ChatTokenizer, type ChatMessage } from '../src/model/tokenizer';
import { Rng } from '../src/util/rng';
import { synthesize } from '../src/env/synth';
import { chatCorpus } from '../src/model/tiny';

// A stand-in corpus shaped like the synthetic rows: compact system prompt, a query, a gold call.
const SYSTEM = [
  'Reply with one JSON call {"name":..,"arguments":{..}}',
  'get_stock_price(ticker,date:YYYY-MM-DD) close',
  'get_revenue(company,fiscal_year)',
  'convert_currency(amount,from_currency,to_currency)',
  'no_call() no tool needed',
].join('\n');
function standInRows(n: number, seed = 1): { messages: ChatMessage[]; completion: string }[] {
  const rng = new Rng(seed);
  const rows: { messages: ChatMessage[]; completion: string }[] = [];
  for (let i = 0; i < n; i++) {
    const k = rng.int(3);
    const tick = rng.pick(['AAPL', 'MSFT', 'NVDA', 'TSLA', 'AMZN']);
    const date = `2025-01-${String(1 + rng.int(28)).padStart(2, '0')}`;
    const co = rng.pick(['Apple', 'Tesla', 'Microsoft', 'Nvidia']);
    const year = 2019 + rng.int(6);
    const amt = 10 * (1 + rng.int(500));
    const [q, call] =
      k === 0
        ? [`What was ${tick}'s closing price on ${date}?`, { name: 'get_stock_price', arguments: { ticker: tick, date } }]
        : k === 1
          ? [`How much revenue did ${co} report in fiscal year ${year}?`, { name: 'get_revenue', arguments: { company: co, fiscal_year: year } }]
          : [`Convert ${amt} USD to EUR.`, { name: 'convert_currency', arguments: { amount: amt, from_currency: 'USD', to_currency: 'EUR' } }];
    rows.push({ messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: q }], completion: JSON.stringify(call).replace(/":/g, '": ').replace(/,"/g, ', "') });
  }
  return rows;
}
const ROWS = standInRows(300);
const CORPUS = ROWS.map((r) => chatml([...r.messages, { role: 'assistant', content: r.completion }], false));

function chatml(messages: ChatMessage[], genPrompt: boolean): string {
  return messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + (genPrompt ? '<|im_start|>assistant\n' : '');
}

const VOCAB = 400; // below the ~480 ids at which this stand-in corpus runs out of merges
const trained = trainByteLevelBpe(CORPUS, { vocab_size: VOCAB });
const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-test-'));
writeTokenizerFiles(tmpDir, trained.tokenizer, chatTokenizerConfig(trained.tokenizer));
const tokP = ChatTokenizer.fromPretrained(tmpDir);

const STRINGS = [
  '',
  ' ',
  '\n\n',
  'hello world',
  '  leading and trailing  ',
  'Tabs\tand\r\nCRLF\n',
  '{"name": "get_stock_price", "arguments": {"ticker": "AAPL", "date": "2025-01-03"}}',
  '{"name":"convert_currency","arguments":{"amount":1234.5,"from_currency":"USD","to_currency":"JPY"}}',
  'Ünïcödé façade — naïve café: 東京 株価 📈🎉 ∑∫ e\u0301 (combining accent, not NFC)',
  '\u0000\u0001 control \u007f bytes',
  'I\'ll say it\'s 3.14159, 100%!? <not|special> <|im_start',
  '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
  '<|endoftext|><|endoftext|>x<|im_end|>',
  ...ROWS.slice(0, 20).map((r) => chatml([...r.messages, { role: 'assistant', content: r.completion }], false)),
];

test('BPE: vocab cut to size, 256 byte-level base tokens first, ChatML specials last and special', () => {
  const tj = trained.tokenizer as any;
  assert.equal(trained.vocab_size, VOCAB);
  const vocab = tj.model.vocab as Record<string, number>;
  assert.equal(Object.keys(vocab).length, VOCAB - 3);
  const alphabet = byteLevelAlphabet();
  assert.equal(new Set(alphabet).size, 256);
  alphabet.forEach((ch, i) => assert.equal(vocab[ch], i));
  assert.deepEqual(
    tj.added_tokens.map((t: any) => [t.id, t.content, t.special]),
    [[VOCAB - 3, '<|endoftext|>', true], [VOCAB - 2, '<|im_start|>', true], [VOCAB - 1, '<|im_end|>', true]],
  );
  // Every merge joins two known tokens into one known token.
  for (const [a, b] of tj.model.merges as [string, string][]) assert.ok(a in vocab && b in vocab && a + b in vocab);
  assert.ok(trained.merges_learned >= trained.merges_kept);
});

test('BPE: the corpus is learned (tool names and JSON punctuation become few tokens)', async () => {
  const tok = await tokP;
  const call = ROWS[0].completion;
  assert.ok(tok.encode(call).length < call.length / 2, `${tok.encode(call).length} tokens for ${call.length} chars`);
  assert.ok(tok.encode('get_stock_price').length <= 3);
  // No merge was spent on special-token pieces.
  assert.equal(tok.tokenToId('<|'), undefined);
  assert.equal(tok.tokenToId('im'), undefined);
});

test('BPE: same texts => same tokenizer.json bytes, across separate processes', () => {
  const corpusFile = path.join(tmpDir, 'corpus.json');
  fs.writeFileSync(corpusFile, JSON.stringify(CORPUS));
  const child = path.join('tests', 'fixtures', 'bpe_train_child.ts');
  const hashes = [0, 1].map(() => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', child, corpusFile, String(VOCAB)], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return /sha256=(\w+)/.exec(r.stdout)![1];
  });
  const here = crypto.createHash('sha256').update(jsonText(trained.tokenizer)).digest('hex');
  assert.equal(hashes[0], hashes[1]);
  assert.equal(hashes[0], here);
});

test('BPE: bad sizes and empty corpora are refused', () => {
  assert.throws(() => trainByteLevelBpe(CORPUS, { vocab_size: 200 }), /vocab_size/);
  assert.throws(() => trainByteLevelBpe([], { vocab_size: 512 }), /empty corpus/);
});

test('round trip: decode(encode(s)) === s, special tokens and unseen unicode included', async () => {
  const tok = await tokP;
  for (const s of STRINGS) assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
});

test('the JS loader and the Rust tokenizer give identical ids', async () => {
  const tok = await tokP;
  const rust = RustTokenizer.fromString(jsonText(trained.tokenizer));
  for (const s of STRINGS) {
    const enc = await rust.encode(s, null, { addSpecialTokens: false });
    assert.deepEqual(tok.encode(s), enc.getIds(), JSON.stringify(s));
  }
});

test('special tokens: one id each, skipped on request, eos/stop/pad ids', async () => {
  const tok = await tokP;
  const [eot, ims, ime] = [VOCAB - 3, VOCAB - 2, VOCAB - 1];
  assert.deepEqual(tok.encode('<|im_start|><|im_end|><|endoftext|>'), [ims, ime, eot]);
  assert.equal(tok.eos_token_id, ime);
  assert.deepEqual(tok.stop_token_ids, [ime, eot]);
  assert.equal(tok.pad_token_id, eot);
  assert.equal(tok.vocab_size, VOCAB);
  assert.ok(tok.isSpecial(ime) && !tok.isSpecial(0));
  const ids = tok.encode('<|im_start|>assistant\n{"a": 1}<|im_end|>');
  assert.equal(tok.decode(ids, { skip_special_tokens: true }), 'assistant\n{"a": 1}');
  // Unknown ids (a model's padded vocabulary) are dropped, never thrown on.
  assert.equal(tok.decode([...tok.encode('ok'), VOCAB + 5, -1, 1.5]), 'ok');
});

test('chat template: ChatML with and without add_generation_prompt; prompt + completion ids concatenate', async () => {
  const tok = await tokP;
  const msgs: ChatMessage[] = [{ role: 'system', content: 'S' }, { role: 'user', content: 'Q?' }];
  assert.equal(tok.applyChatTemplate(msgs), '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n');
  assert.equal(
    tok.applyChatTemplate(msgs, { add_generation_prompt: true }),
    '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.equal(tok.applyChatTemplate(msgs, { add_generation_prompt: true, tools: undefined }), chatml(msgs, true));
  assert.equal(tok.chatTemplate(), CHATML_TEMPLATE);
  for (const r of ROWS.slice(0, 50)) {
    const prompt = tok.encodeChat(r.messages);
    const completion = [...tok.encode(r.completion), tok.eos_token_id];
    assert.deepEqual([...prompt, ...completion], tok.encode(chatml(r.messages, true) + r.completion + '<|im_end|>'));
  }
});

test('Qwen2.5-style directory: its own chat template, generation_config eos list, tool_call tokens', async () => {
  const dir = path.join('tests', 'fixtures', 'qwen2.5-tokenizer');
  const tok = await ChatTokenizer.fromPretrained(dir);
  const gen = JSON.parse(fs.readFileSync(path.join(dir, 'generation_config.json'), 'utf8'));
  const imEnd = tok.tokenToId('<|im_end|>')!;
  const eot = tok.tokenToId('<|endoftext|>')!;
  assert.deepEqual(gen.eos_token_id, [imEnd, eot]);
  assert.equal(tok.eos_token_id, imEnd);
  assert.deepEqual(tok.stop_token_ids, [imEnd, eot]);
  assert.equal(tok.pad_token_id, eot);
  const user: ChatMessage = { role: 'user', content: 'Price of AAPL?' };
  // With a system message and tools=undefined: plain ChatML, like our own template.
  assert.equal(
    tok.applyChatTemplate([{ role: 'system', content: 'SYS' }, user], { add_generation_prompt: true, tools: undefined }),
    '<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nPrice of AAPL?<|im_end|>\n<|im_start|>assistant\n',
  );
  // Without one: Qwen's default system prompt.
  assert.equal(
    tok.applyChatTemplate([user]),
    '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nPrice of AAPL?<|im_end|>\n',
  );
  // With tools: the <tools> section, each tool as compact JSON.
  const tool = { type: 'function', function: { name: 'get_stock_price', parameters: { type: 'object', properties: { ticker: { type: 'string' } } } } };
  const withTools = tok.applyChatTemplate([user], { add_generation_prompt: true, tools: [tool] });
  assert.ok(withTools.includes('<tools>\n{"type": "function", "function": {"name": "get_stock_price", "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}}}}}\n</tools>'));
  assert.ok(withTools.endsWith('<|im_start|>user\nPrice of AAPL?<|im_end|>\n<|im_start|>assistant\n'));
  // An assistant tool call and a tool response.
  const convo = tok.applyChatTemplate([
    user,
    { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'get_stock_price', arguments: { ticker: 'AAPL' } } }] },
    { role: 'tool', content: '243.36' },
  ]);
  assert.ok(convo.endsWith('<|im_start|>assistant\n<tool_call>\n{"name": "get_stock_price", "arguments": {"ticker": "AAPL"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n243.36\n</tool_response><|im_end|>\n'));
  // <tool_call> is one token but not special: skip_special_tokens keeps it.
  const ids = tok.encode('<tool_call>\n{}\n</tool_call><|im_end|>');
  assert.equal(ids[0], tok.tokenToId('<tool_call>'));
  assert.equal(tok.decode(ids, { skip_special_tokens: true }), '<tool_call>\n{}\n</tool_call>');
  for (const s of STRINGS) assert.equal(tok.decode(tok.encode(s)), s);
});

test('chat template precedence: chat_template.jinja over tokenizer_config.json; .json list with names', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-tpl-'));
  writeTokenizerFiles(dir, trained.tokenizer, chatTokenizerConfig(trained.tokenizer));
  fs.writeFileSync(path.join(dir, 'chat_template.json'), JSON.stringify({ chat_template: [{ name: 'default', template: 'D{{ messages|length }}' }, { name: 'tool_use', template: 'T{{ tools|length }}' }] }));
  let tok = await ChatTokenizer.fromPretrained(dir);
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'x' }]), 'D1');
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'x' }], { tools: [{}, {}] }), 'T2');
  fs.writeFileSync(path.join(dir, 'chat_template.jinja'), 'J{{ eos_token }}');
  tok = await ChatTokenizer.fromPretrained(dir);
  assert.equal(tok.applyChatTemplate([]), 'J<|im_end|>');
  assert.equal(tok.sources.chat_template, path.join(dir, 'chat_template.jinja'));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('errors name the missing or corrupt file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-err-'));
  await assert.rejects(ChatTokenizer.fromPretrained(path.join(dir, 'nope')), /nope: not a directory/);
  await assert.rejects(ChatTokenizer.fromPretrained(dir), (e: Error) => e.message.includes(path.join(dir, 'tokenizer.json')) && /not found/.test(e.message));
  writeTokenizerFiles(dir, trained.tokenizer, chatTokenizerConfig(trained.tokenizer));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), '{"eos_token": "<|im_e');
  await assert.rejects(ChatTokenizer.fromPretrained(dir), (e: Error) => e.message.includes(path.join(dir, 'tokenizer_config.json')) && /corrupt JSON/.test(e.message));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), '{}');
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"version": "1.0"}');
  await assert.rejects(ChatTokenizer.fromPretrained(dir), (e: Error) => e.message.includes(path.join(dir, 'tokenizer.json')));
  // A loadable tokenizer without any chat template fails only when a template is needed, naming the config.
  writeTokenizerFiles(dir, trained.tokenizer, { eos_token: '<|im_end|>' });
  const tok = await ChatTokenizer.fromPretrained(dir);
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: 'x' }]), /tokenizer_config\.json: no chat_template/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('synthetic rows: trained on train, exact round trips and Rust == JS ids on every split, prompt + completion concatenate', async () => {
  const splits = synthesize({ seed: 0, n: 300, nTest: 60, nHeldout: 30 });
  const r = trainByteLevelBpe(chatCorpus(splits.train), { vocab_size: 1024 });
  const tok = ChatTokenizer.fromObjects(r.tokenizer, chatTokenizerConfig(r.tokenizer));
  const rust = RustTokenizer.fromString(jsonText(r.tokenizer));
  for (const row of [...splits.train, ...splits.test, ...splits.heldout_tools]) {
    const prompt = tok.applyChatTemplate(row.messages, { add_generation_prompt: true });
    const full = prompt + row.gold_call + '<|im_end|>';
    const ids = tok.encode(full);
    assert.equal(tok.decode(ids), full);
    assert.deepEqual(ids, (await rust.encode(full, null, { addSpecialTokens: false })).getIds());
    assert.deepEqual(ids, [...tok.encodeChat(row.messages), ...tok.encode(row.gold_call), tok.eos_token_id]);
    assert.equal(tok.decode(tok.encode(row.gold_call)), row.gold_call);
  }
});

test.after(() => fs.rmSync(tmpDir, { recursive: true, force: true }));
