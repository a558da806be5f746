"""Load on ``max serve`` with the course's GPT-2: N requests at once against one at a time.

Starts the server (``gpt2.server.RunningServer``, loopback only) on a checkpoint (default:
the tiny GPT-2 of the checks), then sends the same N completion requests twice through the
``openai`` client: all at once, then one after the other. Reports tokens/s and latency
p50/p95 of both, checks that every request was answered with its ``max_tokens`` tokens,
that the concurrent answers equal the one-at-a-time ones (greedy), and that the server is
healthy afterwards.

    python benchmarks/serve_load.py [--requests 32] [--max-tokens 32] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpt2 import course  # noqa: E402
from gpt2.server import RunningServer  # noqa: E402


def prompts(n: int, vocab: int) -> list[list[int]]:
    """N prompts of 4 to 19 tokens, different from each other."""
    return [[(7 * i + 13 * j + 1) % vocab for j in range(4 + i % 16)] for i in range(n)]


async def one(client, model: str, prompt: list[int], max_tokens: int) -> dict:
    started = time.perf_counter()
    response = await client.completions.create(
        model=model,
        prompt=prompt,
        max_tokens=max_tokens,
        temperature=0,
        extra_body={"return_token_ids": True, "ignore_eos": True},
    )
    ids = response.choices[0].model_extra.get("token_ids") or []
    return {"seconds": time.perf_counter() - started, "ids": ids}


def summary(results: list[dict], wall: float) -> dict:
    latencies = sorted(r["seconds"] for r in results)
    tokens = sum(len(r["ids"]) for r in results)
    return {
        "wall_s": round(wall, 3),
        "tokens": tokens,
        "tokens_per_s": round(tokens / wall, 1),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p95_s": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 3),
    }


async def load(base_url: str, model: str, requests: list[list[int]], max_tokens: int) -> dict:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600)
    await one(client, model, requests[0], 2)  # first request: anything lazy happens here
    started = time.perf_counter()
    together = await asyncio.gather(*(one(client, model, p, max_tokens) for p in requests))
    together_wall = time.perf_counter() - started
    started = time.perf_counter()
    alone = [await one(client, model, p, max_tokens) for p in requests]
    alone_wall = time.perf_counter() - started
    await client.close()
    return {
        "concurrent": summary(together, together_wall),
        "sequential": summary(alone, alone_wall),
        "all_answered": all(len(r["ids"]) == max_tokens for r in together + alone),
        "same_ids": [r["ids"] for r in together] == [r["ids"] for r in alone],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(course.TINY_GPT2), help="directory or hub id")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    vocab = (
        json.loads((Path(args.model) / "config.json").read_text())["vocab_size"]
        if Path(args.model).is_dir()
        else 50257
    )
    requests = prompts(args.requests, vocab)
    log = Path(tempfile.mkdtemp(prefix="gpt2-serve-")) / "server.log"
    started = time.perf_counter()
    with RunningServer(
        args.model, log=log, device=args.device, max_batch_size=args.max_batch_size
    ) as server:
        startup = time.perf_counter() - started
        result = asyncio.run(load(server.base_url, args.model, requests, args.max_tokens))
        result["healthy_after"] = server.healthy()
    result.update(
        model=args.model,
        requests=args.requests,
        max_tokens=args.max_tokens,
        max_batch_size=args.max_batch_size,
        device=args.device,
        startup_s=round(startup, 1),
        machine=f"{platform.machine()}, {__import__('os').cpu_count()} cores",
    )
    c, s = result["concurrent"], result["sequential"]
    print(f"server ready in {result['startup_s']} s ({args.model}, {args.device})")
    for name, row in (("concurrent", c), ("one at a time", s)):
        print(
            f"{name:>14}: {row['tokens']} tokens in {row['wall_s']:.2f} s = "
            f"{row['tokens_per_s']:.0f} tokens/s, latency p50 {row['latency_p50_s']:.2f} s, "
            f"p95 {row['latency_p95_s']:.2f} s"
        )
    print(
        f"every request answered: {result['all_answered']}; same ids both ways: "
        f"{result['same_ids']}; healthy after: {result['healthy_after']}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["all_answered"] and result["healthy_after"] else 1


if __name__ == "__main__":
    sys.exit(main())
