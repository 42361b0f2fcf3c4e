/**
 * Prompt formats for the tool-calling task.
 *
 * - `buildPrompt`: the course's single-string prompt (instructions with the output shape, the tool list as
 *   pretty JSON, "User request: ..."), extended to describe ask_user, refuse and an unlisted tool. It is the
 *   `prompt` column.
 * - `buildMessages` / `compactSystemPrompt`: the chat form our small model trains on. The system prompt is
 *   one short line per tool instead of the JSON Schema list, because the model is tiny: its context is short,
 *   every prompt token costs compute in every SFT and GRPO step, and the schema's prose adds nothing the
 *   model can use that the signature and a few words of gloss do not already say.
 * Both list exactly the tools they are given, in the order given: a row's catalog (synth.ts), which varies
 * from row to row so that the model has to read it. The defaults (every train tool) are for requests that
 * come without a catalog.
 *
 * What this is not: a chat template (the tokenizer renders messages to tokens).
 */
import { TRAIN_TOOLS, type ToolSpec } from './tools';

/** The tool list as the course prints it: name, description, JSON Schema parameters (no internal fields). */
export function toolListJson(tools: readonly ToolSpec[] = TRAIN_TOOLS): string {
  const visible = tools.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters }));
  return JSON.stringify(visible, null, 2);
}

/** The course's prompt: instructions, available tools (pretty JSON), and the user request. */
export function buildPrompt(query: string, tools: readonly ToolSpec[] = TRAIN_TOOLS): string {
  return (
    'You are a financial assistant. Choose exactly one tool call if a tool is needed. ' +
    'Return only JSON with this shape: {"name": "...", "arguments": {...}}. ' +
    'If no tool is needed, return {"name": "no_call", "arguments": {}}. ' +
    'If a required argument is missing, return ' +
    '{"name": "ask_user", "arguments": {"missing": ["<argument name>", ...], "question": "..."}}. ' +
    'If the request is harmful or out of scope, return {"name": "refuse", "arguments": {"reason": "..."}}. ' +
    'If no listed tool serves the request, return no_call.\n\n' +
    `Available tools:\n${toolListJson(tools)}\n\n` +
    `User request: ${query}\n`
  );
}

/**
 * `name(arg,date:YYYY-MM-DD,side:buy|sell) gloss`. Only formats and enums are spelled out; plain types are
 * left to the examples the model trains on (numbers unquoted, years as integers). The gloss (tools.ts) says
 * what the figure is, so two tools with the same arguments can be told apart from the prompt alone.
 */
export function signature(t: ToolSpec): string {
  const args = Object.entries(t.parameters.properties).map(([k, s]) => {
    const ty = s.format === 'date' ? 'YYYY-MM-DD' : s.enum ? s.enum.join('|') : '';
    return ty ? `${k}:${ty}` : k;
  });
  return `${t.name}(${args.join(',')}) ${t.gloss}`;
}

/**
 * The system prompt the small model sees: the output shape, the three control actions, then one line per
 * listed tool (in the given order). The fixed lines come first so that rows with different catalogs still
 * share a prompt prefix (the trainers compute a batch's common prefix once: src/train/logps.ts). Kept
 * compact on purpose (see the file comment); with every train tool it is under 480 characters (measured by
 * tests/env.test.ts).
 */
export function compactSystemPrompt(tools: readonly ToolSpec[] = TRAIN_TOOLS): string {
  return [
    'Reply with one JSON call {"name":..,"arguments":{..}}',
    'no_call() nothing fits',
    'ask_user(missing,question) args missing',
    'refuse(reason) harmful',
    ...tools.map(signature),
  ].join('\n');
}

/** Chat messages for one query: the compact system prompt, then the user's request verbatim. */
export function buildMessages(
  query: string,
  tools: readonly ToolSpec[] = TRAIN_TOOLS,
): { role: 'system' | 'user'; content: string }[] {
  return [
    { role: 'system', content: compactSystemPrompt(tools) },
    { role: 'user', content: query },
  ];
}
