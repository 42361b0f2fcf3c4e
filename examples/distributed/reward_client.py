"""A client for the toolcall-grpo reward service (`npx tsx src/run.ts serve`), Python standard library only.

`get_rewards(url, queries, labels, prompts=None)` POSTs OpenRLHF's body {"query", "prompts", "labels"} to
/get_reward and returns the answer {"rewards", "scores", "extra_logs"}. Retries like OpenRLHF's own client
(5 tries, 1 s apart, 180 s timeout) on connection errors and 5xx; a 4xx is the request's fault and raises at
once with the server's message (it names the field and index, e.g. 'labels[3]: missing "expected_result"').

Queries may be text (prompt + completion; the server strips prompts[i] and end tokens) or assistant messages
{"role": "assistant", "content": ..., "tool_calls": [...]}. Tool-call arguments given as a dict are sent as
JSON text, so the server's strict parser sees `2024.0` as a float, as `verify` would.

Run as a script to score a JSONL file of rows {"query", "prompt"?, "label"} (one request per --batch rows):
    python3 reward_client.py --url http://127.0.0.1:8000/get_reward --input rows.jsonl
It prints one JSON object per request to stdout; a refused request prints the server's message to stderr
and exits 2. What this is not: a trainer's glue (trl_reward.py and verl_reward.py are).
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request


class RewardServiceError(RuntimeError):
    """The service refused the request (4xx) or could not be reached after every try."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def _wire(query):
    """Send tool-call arguments as JSON text (keeps 2024.0 a float); leave everything else as it is."""
    if isinstance(query, list):
        return [_wire(m) for m in query]
    if isinstance(query, dict) and isinstance(query.get("tool_calls"), list):
        calls = []
        for call in query["tool_calls"]:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), (dict, list)):
                call = dict(call, function=dict(fn, arguments=json.dumps(fn["arguments"])))
            calls.append(call)
        return dict(query, tool_calls=calls)
    return query


def get_rewards(url, queries, labels, prompts=None, timeout=180, tries=5):
    """One POST /get_reward; returns {"rewards": [...], "scores": [...], "extra_logs": {...}}."""
    body = {"query": [_wire(q) for q in queries], "labels": list(labels)}
    if prompts is not None:
        body["prompts"] = list(prompts)
    data = json.dumps(body).encode("utf-8")
    last = None
    for attempt in range(tries):
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            try:
                message = json.loads(text).get("error", text)
            except ValueError:
                message = text
            if e.code < 500:
                raise RewardServiceError(f"{url}: {e.code}: {message}", e.code) from None
            last = f"{e.code}: {message}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            last = str(e)
        if attempt + 1 < tries:
            time.sleep(1)
    raise RewardServiceError(f"{url}: no answer after {tries} tries: {last}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/get_reward")
    parser.add_argument("--input", required=True, help='JSONL rows {"query", "prompt" (optional), "label"}')
    parser.add_argument("--batch", type=int, default=16, help="rows per request")
    parser.add_argument("--tries", type=int, default=5)
    args = parser.parse_args(argv)
    with open(args.input, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for start in range(0, len(rows), args.batch):
        chunk = rows[start : start + args.batch]
        prompts = [r.get("prompt") for r in chunk] if any("prompt" in r for r in chunk) else None
        try:
            answer = get_rewards(args.url, [r["query"] for r in chunk], [r["label"] for r in chunk], prompts, tries=args.tries)
        except RewardServiceError as e:
            print(f"error: rows {start}..{start + len(chunk) - 1}: {e}", file=sys.stderr)
            return 2
        print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
