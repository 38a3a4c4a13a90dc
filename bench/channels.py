"""Chat channels end to end: from a signed update reaching the server to the answer reaching
the channel.

    .venv/bin/python bench/channels.py [--channel slack|discord|whatsapp|telegram] [--runs 5]
                                       [--model qwen2.5-1.5b]

Runs the real app (its worker in-process) on loopback with a fake of the channel's API (Slack's
Web API, Discord's REST API, the Graph API), a bot on the given model (default: the
installation's default model) and a dataset of three facts, and sends `--runs` updates one
after the other. Prints the acknowledgement time (what the channel waits for) and the time
until the answer arrives at the fake (what the person waits for): p50, min and max.
Telegram is polled, not posted to: its updates appear in the fake Bot API's getUpdates, which the
worker's poller long-polls, and the time is from an update appearing there to its sendMessage.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from nacl.encoding import HexEncoder
from nacl.signing import SigningKey

from openbotkit.channels import slack, whatsapp
from openbotkit.engine import Engine
from openbotkit.server.app import create_app
from openbotkit.settings import Settings

# The fakes live with the tests: the repository root on the path, however this is started.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.channels import fake_discord, fake_graph, fake_slack, fake_telegram
from tests.server.serving import serve_in_thread

SECRET = "bench-signing-secret"
KEY = SigningKey.generate()
QUESTION = "What is the maximum payload of the Zephyr-9 robot?"
FACTS = [
    "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.",
    "The Zephyr-9 charges in 90 minutes and runs for 8 hours.",
    "Our office is open Monday to Friday, 9am to 5pm.",
]


@dataclass
class Channel:
    """One channel's part: its fake, the integration's fields, one signed update, and the
    answers the fake received."""

    kind: str
    fake: Callable[[], AbstractContextManager[Any]]
    setting: str
    fields: dict[str, object]
    path: str  # the delivery route's last segment
    # None: the channel is polled (the update is put where the poller reads it).
    update: Callable[[int], tuple[bytes, dict[str, str]]] | None
    answers: Callable[[Any], list[str]]


def slack_update(i: int) -> tuple[bytes, dict[str, str]]:
    event = {"type": "app_mention", "user": "U0", "channel": "C0", "ts": f"1700000000.{i:06d}"}
    envelope = {
        "type": "event_callback",
        "team_id": "T0",
        "event_id": f"EvBench{i}",
        "event": {**event, "text": f"<@U0BOT> {QUESTION}"},
    }
    body = json.dumps(envelope).encode()
    stamp = str(int(time.time()))
    signed = slack.signature(SECRET, stamp, body)
    return body, {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signed}


def discord_update(i: int) -> tuple[bytes, dict[str, str]]:
    interaction = {
        "id": f"30000{i}",
        "application_id": fake_discord.APP_ID,
        "type": 2,
        "token": f"bench-token-{i}",
        "channel_id": "1",
        "user": {"id": "2"},
        "data": {"name": "ask", "options": [{"name": "question", "value": QUESTION}]},
    }
    body = json.dumps(interaction).encode()
    stamp = str(int(time.time()))
    signed = KEY.sign(stamp.encode() + body).signature.hex()
    return body, {"X-Signature-Timestamp": stamp, "X-Signature-Ed25519": signed}


def whatsapp_update(i: int) -> tuple[bytes, dict[str, str]]:
    message = {"from": "15550001111", "id": f"wamid.BENCH{i}", "type": "text"}
    value = {
        "metadata": {"phone_number_id": fake_graph.PHONE_NUMBER_ID},
        "messages": [{**message, "text": {"body": QUESTION}}],
    }
    change = {"field": "messages", "value": value}
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [change]}]})
    raw = body.encode()
    return raw, {"X-Hub-Signature-256": whatsapp.signature(SECRET, raw)}


CHANNELS = {
    "slack": Channel(
        "slack",
        fake_slack.fake_slack,
        "slack_api_url",
        {"botToken": fake_slack.TOKEN, "signingSecret": SECRET},
        "event",
        slack_update,
        lambda fake: [p["text"] for p in fake.posted()],
    ),
    "discord": Channel(
        "discord",
        fake_discord.fake_discord,
        "discord_api_url",
        {
            "appId": fake_discord.APP_ID,
            "publicKey": KEY.verify_key.encode(HexEncoder).decode(),
            "botToken": fake_discord.BOT_TOKEN,
        },
        "interaction",
        discord_update,
        lambda fake: [body["content"] for _, body in fake.edits()],
    ),
    "whatsapp": Channel(
        "whatsapp",
        fake_graph.fake_graph,
        "whatsapp_api_url",
        {
            "phoneNumberId": fake_graph.PHONE_NUMBER_ID,
            "accessToken": fake_graph.ACCESS_TOKEN,
            "appSecret": SECRET,
        },
        "webhook",
        whatsapp_update,
        lambda fake: [m["text"]["body"] for m in fake.sent()],
    ),
    "telegram": Channel(
        "telegram",
        fake_telegram.fake_telegram,
        "telegram_api_url",
        {"botToken": fake_telegram.TOKEN},
        "webhook",
        None,
        lambda fake: [r["text"] for r in fake.replies()],
    ),
}


@contextmanager
def served(channel: Channel, model: str | None) -> Iterator[tuple[str, str, Any, Settings]]:
    """The app on loopback with a bot, its dataset and the integration: (origin, integration
    id, the fake, settings)."""
    with tempfile.TemporaryDirectory() as home, channel.fake() as fake:
        settings = Settings.from_env().model_copy(
            update={"home": Path(home), "database_url": None, channel.setting: fake.url}
        )
        engine = Engine(settings)
        try:

            def run(name: str, data: dict[str, object]) -> dict[str, object]:
                return engine.execute(name, data, account="bench")

            dataset = run("create_dataset", {})["id"]
            for fact in FACTS:
                run("create_dataset_record", {"datasetId": dataset, "text": fact})
            bot_fields: dict[str, object] = {"datasetId": dataset, "backstory": "Answer briefly."}
            if model:
                bot_fields["model"] = model
            bot = run("create_bot", bot_fields)["id"]
            kind = channel.kind
            fields = {"botId": bot, "sessionDuration": 0, **channel.fields}
            iid = str(run(f"create_{kind}_integration", fields)["id"])
            app = create_app(settings, engine, worker=True)
            with serve_in_thread(app) as origin:
                yield f"{origin}/v1/integration/{kind}/{iid}/{channel.path}", iid, fake, settings
        finally:
            engine.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--channel", choices=sorted(CHANNELS), default="slack")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default=None, help="model string (default: the default)")
    args = parser.parse_args()
    channel = CHANNELS[args.channel]
    if channel.update is None:
        polled(channel, args.runs, args.model)
        return
    acks, answers = [], []
    with served(channel, args.model) as (url, _, fake, settings), httpx.Client(timeout=30) as http:
        for i in range(args.runs + 1):  # the first run loads the model: not counted
            body, headers = channel.update(i)
            before = len(channel.answers(fake))
            start = time.perf_counter()
            http.post(url, content=body, headers=headers).raise_for_status()
            acked = time.perf_counter() - start
            while len(channel.answers(fake)) == before:
                time.sleep(0.005)
            answered = time.perf_counter() - start
            if i:
                acks.append(acked)
                answers.append(answered)
                print(f"run {i}: ack {acked * 1000:.0f} ms, answer {answered:.2f} s")
        last = channel.answers(fake)[-1]
    print(f"channel: {args.channel}, model: {args.model or settings.default_model}")
    print(
        f"ack p50 {statistics.median(acks) * 1000:.0f} ms"
        f" (min {min(acks) * 1000:.0f}, max {max(acks) * 1000:.0f})"
    )
    print(
        f"update -> answer p50 {statistics.median(answers):.2f} s"
        f" (min {min(answers):.2f}, max {max(answers):.2f})"
    )
    print("last answer:", last)


def polled(channel: Channel, runs: int, model: str | None) -> None:
    """Updates pushed into the fake's getUpdates, timed to their sendMessage."""
    answers = []
    with served(channel, model) as (_, _, fake, settings):
        for i in range(runs + 1):  # the first run loads the model: not counted
            before = len(channel.answers(fake))
            update_id = fake.push(QUESTION, user=7000 + i)
            while len(channel.answers(fake)) == before:
                time.sleep(0.005)
            answered = fake.sent_at[before] - fake.pushed_at[update_id]
            if i:
                answers.append(answered)
                print(f"run {i}: answer {answered:.2f} s")
        last = channel.answers(fake)[-1]
    print(f"channel: {channel.kind}, model: {model or settings.default_model}")
    print(
        f"update in getUpdates -> sendMessage p50 {statistics.median(answers):.2f} s"
        f" (min {min(answers):.2f}, max {max(answers):.2f})"
    )
    print("last answer:", last)


if __name__ == "__main__":
    main()
