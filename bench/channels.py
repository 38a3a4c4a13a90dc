"""Chat channels end to end: from an update reaching openbotkit to the answer reaching the chat.

    .venv/bin/python bench/channels.py [--channel slack|telegram] [--runs 5] [--model qwen2.5-1.5b]

Runs the real app (its worker in-process) on loopback with a fake channel API, a bot on the
given model (default: the installation's default model) and a dataset of three facts, and sends
`--runs` messages one after the other.

Slack: signed mentions POSTed to `obk serve`; prints the acknowledgement time (what Slack waits
for) and the time until chat.postMessage arrives (what the person waits for).
Telegram: private messages appear in the fake Bot API's getUpdates, which the worker's poller
long-polls; prints the time from an update appearing there to its sendMessage.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from openbotkit.channels.slack import signature
from openbotkit.engine import Engine
from openbotkit.server.app import create_app
from openbotkit.settings import Settings
from tests.channels.fake_slack import TOKEN, fake_slack
from tests.channels.fake_telegram import TOKEN as TELEGRAM_TOKEN
from tests.channels.fake_telegram import fake_telegram
from tests.server.serving import serve_in_thread

SIGNING = "bench-signing-secret"
QUESTION = "What is the maximum payload of the Zephyr-9 robot?"
FACTS = [
    "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.",
    "The Zephyr-9 charges in 90 minutes and runs for 8 hours.",
    "Our office is open Monday to Friday, 9am to 5pm.",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default=None, help="model string (default: the default)")
    parser.add_argument("--channel", choices=["slack", "telegram"], default="slack")
    args = parser.parse_args()
    if args.channel == "telegram":
        telegram(args.runs, args.model)
        return
    with tempfile.TemporaryDirectory() as home, fake_slack() as slack:
        settings = Settings.from_env().model_copy(
            update={"home": Path(home), "database_url": None, "slack_api_url": slack.url}
        )
        engine = Engine(settings)
        app = create_app(settings, engine, worker=True)

        def run(name: str, data: dict[str, object]) -> dict[str, object]:
            return engine.execute(name, data, account="bench")

        dataset = run("create_dataset", {})["id"]
        for fact in FACTS:
            run("create_dataset_record", {"datasetId": dataset, "text": fact})
        bot_fields: dict[str, object] = {"datasetId": dataset, "backstory": "Answer briefly."}
        if args.model:
            bot_fields["model"] = args.model
        bot = run("create_bot", bot_fields)["id"]
        iid = run(
            "create_slack_integration",
            {"botId": bot, "botToken": TOKEN, "signingSecret": SIGNING, "sessionDuration": 0},
        )["id"]
        acks, answers = [], []
        with serve_in_thread(app) as origin, httpx.Client(timeout=30) as http:
            url = f"{origin}/v1/integration/slack/{iid}/event"
            for i in range(args.runs + 1):  # the first run loads the model: not counted
                envelope = {
                    "type": "event_callback",
                    "team_id": "T0",
                    "event_id": f"EvBench{i}",
                    "event": {
                        "type": "app_mention",
                        "user": "U0",
                        "channel": "C0",
                        "text": f"<@U0BOT> {QUESTION}",
                        "ts": f"1700000000.{i:06d}",
                    },
                }
                body = json.dumps(envelope).encode()
                stamp = str(int(time.time()))
                headers = {
                    "X-Slack-Request-Timestamp": stamp,
                    "X-Slack-Signature": signature(SIGNING, stamp, body),
                }
                before = len(slack.posted())
                start = time.perf_counter()
                http.post(url, content=body, headers=headers).raise_for_status()
                acked = time.perf_counter() - start
                while len(slack.posted()) == before:
                    time.sleep(0.005)
                answered = time.perf_counter() - start
                if i:
                    acks.append(acked)
                    answers.append(answered)
                    print(f"run {i}: ack {acked * 1000:.0f} ms, answer {answered:.2f} s")
        print(f"model: {args.model or settings.default_model}")
        print(
            f"ack p50 {statistics.median(acks) * 1000:.0f} ms"
            f" (min {min(acks) * 1000:.0f}, max {max(acks) * 1000:.0f})"
        )
        print(
            f"event -> chat.postMessage p50 {statistics.median(answers):.2f} s"
            f" (min {min(answers):.2f}, max {max(answers):.2f})"
        )
        print("last answer:", slack.posted()[-1]["text"])
        engine.close()


def telegram(runs: int, model: str | None) -> None:
    """Updates pushed into the fake getUpdates, timed to their sendMessage."""
    with tempfile.TemporaryDirectory() as home, fake_telegram() as fake:
        settings = Settings.from_env().model_copy(
            update={"home": Path(home), "database_url": None, "telegram_api_url": fake.url}
        )
        engine = Engine(settings)
        app = create_app(settings, engine, worker=True)

        def run(name: str, data: dict[str, object]) -> dict[str, object]:
            return engine.execute(name, data, account="bench")

        dataset = run("create_dataset", {})["id"]
        for fact in FACTS:
            run("create_dataset_record", {"datasetId": dataset, "text": fact})
        bot_fields: dict[str, object] = {"datasetId": dataset, "backstory": "Answer briefly."}
        if model:
            bot_fields["model"] = model
        bot = run("create_bot", bot_fields)["id"]
        data = {"botId": bot, "botToken": TELEGRAM_TOKEN, "sessionDuration": 0}
        run("create_telegram_integration", data)
        answers = []
        with serve_in_thread(app):
            for i in range(runs + 1):  # the first run loads the model: not counted
                before = len(fake.replies())
                update_id = fake.push(QUESTION, user=7000 + i)
                while len(fake.replies()) == before:
                    time.sleep(0.005)
                answered = fake.sent_at[before] - fake.pushed_at[update_id]
                if i:
                    answers.append(answered)
                    print(f"run {i}: answer {answered:.2f} s")
        print(f"model: {model or settings.default_model}")
        print(
            f"update in getUpdates -> sendMessage p50 {statistics.median(answers):.2f} s"
            f" (min {min(answers):.2f}, max {max(answers):.2f})"
        )
        print("last answer:", fake.replies()[-1]["text"])
        engine.close()


if __name__ == "__main__":
    main()
