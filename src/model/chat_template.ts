/**
 * The chat template of the tiny default model: plain ChatML, as a Jinja string stored in its
 * tokenizer_config.json (key `chat_template`), exactly where a Qwen2.5 checkpoint keeps its own.
 *
 * It is not a renderer (ChatTokenizer renders any checkpoint's template with @huggingface/jinja), and it is
 * not Qwen2.5's template: it adds no default system prompt and ignores `tools`, because the tiny model's
 * prompt builder (src/env/prompt.ts) already puts the tool list in the system message and every token costs
 * time on a 2-core CPU. Output shape, for one system + user message with add_generation_prompt:
 *
 *   <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n
 */

/** Role/content ChatML for every message; `<|im_start|>assistant\n` when add_generation_prompt. */
export const CHATML_TEMPLATE =
  "{%- for message in messages %}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  '{%- endfor %}' +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** The ChatML special tokens, in the order (and so with the relative ids) Qwen2 gives them. */
export const CHATML_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;
