"""Completion overhead: the platform's complete_conversation against llama.cpp called directly
with the same prompt, both on the bundled SmolLM2, in the same run.

    .venv/bin/python bench/complete.py [--runs 10] [--max-tokens 48]

Prints time to first token and total time (p50) for each, and the platform's overhead: the
retrieval, prompt assembly, citation alignment and storage around the model call; then the
citation alignment alone (it runs after the last token, so it adds to the total only).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openbotkit.actions import REGISTRY
from openbotkit.engine import Engine
from openbotkit.models.llamacpp import LlamaCppProvider
from openbotkit.retrieval import citations
from openbotkit.services import completion, conversations
from openbotkit.services.context import AccountScope
from openbotkit.settings import Settings

QUESTION = "What is the maximum payload of the Zephyr-9 robot?"
FACTS = [
    "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.",
    "The Zephyr-9 charges in 90 minutes and runs for 8 hours.",
    "Our office is open Monday to Friday, 9am to 5pm.",
]


def forget_prompt(llama: Any) -> None:
    """llama.cpp reuses the cached prefix of a repeated prompt; each run starts cold instead."""
    llama.reset()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        engine = Engine(Settings(home=Path(home)))
        ds = engine.execute("create_dataset", {})["id"]
        for fact in FACTS:
            engine.execute("create_dataset_record", {"datasetId": ds, "text": fact})
        model = f"smollm2/maxTokens={args.max_tokens}/temperature=0"
        bot = engine.execute(
            "create_bot",
            {"model": model, "datasetId": ds, "backstory": "Answer briefly from the facts given."},
        )["id"]
        act = REGISTRY.get("complete_conversation")
        account = engine.local_account_id()
        provider = engine.runtime.models.resolve(None)
        assert isinstance(provider, LlamaCppProvider)
        llama: Any = provider.llama  # llama-cpp-python is only partly typed

        platform_first, platform_total, direct_first, direct_total = [], [], [], []
        citing: list[float] = []
        for i in range(args.runs + 1):
            conv = engine.execute("create_conversation", {"botId": bot})["id"]
            inp = act.parse_input({"conversationId": conv, "text": QUESTION})
            forget_prompt(llama)
            started, first = time.perf_counter(), None
            answer = ""
            for event in engine.stream(act, inp, account_id=account):
                if event["type"] == "token" and first is None:
                    first = time.perf_counter() - started
                if event["type"] == "result":
                    answer = event["data"]["text"]
            total = time.perf_counter() - started
            # The exact prompt the platform sent, replayed straight into llama.cpp.
            with AccountScope(engine.runtime, account).transaction(write=False) as ctx:
                c = conversations.get(ctx, conv)
                config = completion._config(ctx, c.bot_id, completion.BotConfig())
                limit = completion.history_limit(ctx, config)
                history = completion._history(ctx, conv, limit)[:-1]
                prepared = completion._prepare(ctx, config, history)
            cite_started = time.perf_counter()
            prepared.answer_meta(answer)
            cite_ms = (time.perf_counter() - cite_started) * 1000
            forget_prompt(llama)
            started, d_first = time.perf_counter(), None
            # llama-cpp-python's own chat API, the same model object, no platform code between.
            chunks: Any = llama.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in prepared.messages],
                stream=True,
                max_tokens=args.max_tokens,
                temperature=0,
            )
            for chunk in chunks:
                if chunk["choices"][0]["delta"].get("content") and d_first is None:
                    d_first = time.perf_counter() - started
            d_total = time.perf_counter() - started
            if i == 0:
                continue  # warm-up
            platform_first.append((first or total) * 1000)
            platform_total.append(total * 1000)
            direct_first.append((d_first or d_total) * 1000)
            direct_total.append(d_total * 1000)
            citing.append(cite_ms)
        med = statistics.median
        print(
            f"{args.runs} completions, max {args.max_tokens} tokens, SmolLM2-135M Q4_1 on llama.cpp"
        )
        print(f"{'':<22} {'first token ms':>15} {'total ms':>10}")
        print(f"{'openbotkit':<22} {med(platform_first):>15.1f} {med(platform_total):>10.1f}")
        print(f"{'llama.cpp directly':<22} {med(direct_first):>15.1f} {med(direct_total):>10.1f}")
        print(
            f"{'overhead':<22} {med(platform_first) - med(direct_first):>+15.1f} "
            f"{med(platform_total) - med(direct_total):>+10.1f}"
        )
        sentences = sum(len(citations.sentences(f)) for f in FACTS)
        print(
            f"{'of which citations':<22} {'':>15} {med(citing):>10.1f}"
            f"  (align: answer vs {sentences} record sentences, p50)"
        )
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
