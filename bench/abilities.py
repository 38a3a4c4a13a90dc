"""How often the local model picks the right ability: a small labelled set.

    nice .venv/bin/python bench/abilities.py [--model NAME] [--json]

Four abilities (an order lookup, a weather API, a documentation search, a currency converter)
and 20 questions: 16 that need one of them (with the argument the ability needs) and 4 that need
none. Each question is put to the model exactly as a completion does (services/answering.py:
the tools listed in the system message, the question, one action chosen under the JSON
grammar), and the choice is scored: the right ability (or "none"), and for an ability, whether
the key argument holds the expected value. Prints both rates and the seconds per choice.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from openbotkit.models.bundled import DEFAULT_MODEL, ModelCache, find_bundled
from openbotkit.models.llamacpp import LlamaCppProvider
from openbotkit.models.prompt import Turn
from openbotkit.models.providers import GenerationOptions, ToolSpec
from openbotkit.services.answering import choice_messages, parse_choice
from openbotkit.settings import Settings


def _one(name: str, description: str, arg: str, about: str) -> ToolSpec:
    parameters = {
        "type": "object",
        "properties": {arg: {"type": "string", "description": about}},
        "required": [arg],
    }
    return ToolSpec(name, description, parameters)


TOOLS = [
    _one(
        "lookup_order",
        "Look up an order's status by its order number.",
        "orderId",
        "the order number",
    ),
    _one("get_weather", "Get the current weather in a city.", "city", "the city name"),
    _one(
        "search_docs",
        "Search the product documentation for how to do something.",
        "query",
        "what to search for",
    ),
    _one(
        "convert_currency",
        "Convert an amount of money into another currency.",
        "amount",
        "the amount with its currency, e.g. 20 EUR",
    ),
]

# (question, expected tool or "none", (argument, a value it must contain) or None)
QUESTIONS: list[tuple[str, str, tuple[str, str] | None]] = [
    ("Where is my order 48213?", "lookup_order", ("orderId", "48213")),
    ("Has order A-7731 shipped yet?", "lookup_order", ("orderId", "7731")),
    ("Can you check the status of order number 99120?", "lookup_order", ("orderId", "99120")),
    (
        "I ordered something last week, number 5566. When will it arrive?",
        "lookup_order",
        ("orderId", "5566"),
    ),
    ("What's the weather like in Lisbon right now?", "get_weather", ("city", "Lisbon")),
    ("Is it raining in Oslo?", "get_weather", ("city", "Oslo")),
    ("How warm is it in Nairobi today?", "get_weather", ("city", "Nairobi")),
    ("Should I take an umbrella in Tokyo today?", "get_weather", ("city", "Tokyo")),
    ("How do I reset my password?", "search_docs", ("query", "password")),
    ("How can I export my data to CSV?", "search_docs", ("query", "export")),
    ("Where do I configure two-factor authentication?", "search_docs", ("query", "two-factor")),
    ("How do I invite a teammate to my workspace?", "search_docs", ("query", "invite")),
    ("How much is 20 EUR in dollars?", "convert_currency", ("amount", "20")),
    ("Convert 150 GBP to yen please.", "convert_currency", ("amount", "150")),
    ("What is 75 Swiss francs in euros?", "convert_currency", ("amount", "75")),
    ("I have 300 dollars, how many pesos is that?", "convert_currency", ("amount", "300")),
    ("Hello there!", "none", None),
    ("Thanks, that was helpful.", "none", None),
    ("Write me a haiku about autumn.", "none", None),
    ("What is 12 times 7?", "none", None),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a bundled model's name")
    parser.add_argument("--json", action="store_true", help="print every choice as JSON")
    args = parser.parse_args()
    bundled = find_bundled(args.model)
    if bundled is None:
        print(f"no bundled model {args.model!r}", file=sys.stderr)
        return 2
    cache = ModelCache(Settings.from_env().resolved_cache_dir / "models")
    provider = LlamaCppProvider.bundled(bundled, cache)
    options = GenerationOptions(max_tokens=160, temperature=0.0)
    rows: list[dict[str, Any]] = []
    try:
        for question, expected, argument in QUESTIONS:
            messages = choice_messages(None, [Turn("user", question)], TOOLS)
            started = time.monotonic()
            text = "".join(
                e.text for e in provider.choose(messages, TOOLS, options) if hasattr(e, "text")
            )
            seconds = time.monotonic() - started
            call = parse_choice(text)
            chosen = call.name if call is not None else "none"
            right_tool = chosen == expected
            right_args = right_tool and (
                argument is None
                or (
                    call is not None
                    and argument[1].lower() in str(call.arguments.get(argument[0], "")).lower()
                )
            )
            rows.append(
                {
                    "question": question,
                    "expected": expected,
                    "chosen": chosen,
                    "arguments": call.arguments if call is not None else {},
                    "rightTool": right_tool,
                    "rightArguments": right_args,
                    "seconds": round(seconds, 2),
                }
            )
    finally:
        provider.close()
    if args.json:
        print(json.dumps(rows, indent=2))
    n = len(rows)
    tools_right = sum(r["rightTool"] for r in rows)
    args_right = sum(r["rightArguments"] for r in rows)
    times = sorted(r["seconds"] for r in rows)
    print(f"model {bundled.name}: {n} questions over {len(TOOLS)} abilities and none")
    print(f"right ability (or none): {tools_right}/{n} = {tools_right / n:.0%}")
    print(f"right ability with the right argument: {args_right}/{n} = {args_right / n:.0%}")
    print(f"seconds per choice: p50 {statistics.median(times):.2f}, max {times[-1]:.2f}")
    for r in rows:
        if not r["rightArguments"]:
            print(f"  miss: {r['question']!r}: {r['chosen']} {json.dumps(r['arguments'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
