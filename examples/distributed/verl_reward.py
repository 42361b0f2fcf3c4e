"""verl custom reward functions that ask the toolcall-grpo reward service (`npx tsx src/run.ts serve`).

    custom_reward_function.path=examples/distributed/verl_reward.py custom_reward_function.name=compute_score
(or reward_model.reward_manager=batch custom_reward_function.name=compute_score_batch) on the parquet files
that `npx tsx src/run.ts export --data` writes: reward_model.ground_truth holds the gold as JSON text.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # verl loads this file by path
from reward_client import get_rewards  # noqa: E402

URL = os.environ.get("TOOLCALL_REWARD_URL", "http://127.0.0.1:8000/get_reward")


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    r = get_rewards(URL, [solution_str], labels=[ground_truth])
    return {"score": r["rewards"][0], **{k: v[0] for k, v in r["extra_logs"].items()}}


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs):
    r = get_rewards(URL, list(solution_strs), labels=list(ground_truths))
    return [{"score": s, **{k: v[i] for k, v in r["extra_logs"].items()}} for i, s in enumerate(r["rewards"])]
