"""TRL GRPOTrainer reward functions that ask the toolcall-grpo reward service (`npx tsx src/run.ts serve`).

    GRPOTrainer(model=..., reward_funcs=[toolcall_reward], train_dataset=load_dataset("json", data_files=...))
on the JSONL that `npx tsx src/run.ts export --data` writes: `prompt` is chat messages, `label` the gold.
"""
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # reward_client.py sits next to this file
from reward_client import get_rewards  # noqa: E402

URL = os.environ.get("TOOLCALL_REWARD_URL", "http://127.0.0.1:8000/get_reward")


def toolcall_reward(prompts, completions, label, **kwargs):
    # Conversational completions are message lists: send the assistant message (its tool_calls when a
    # response parser made some, else its content); plain-text completions go as they are.
    queries = [c[0] if isinstance(c, list) else c for c in completions]
    return get_rewards(URL, queries, labels=label)["rewards"]


async def toolcall_reward_async(prompts, completions, label, **kwargs):
    # TRL (>= 0.27) runs async reward functions concurrently with each other.
    return await asyncio.to_thread(toolcall_reward, prompts, completions, label)
