"""Email end to end: from a mail handed to `obk serve`'s SMTP listener to the answer reaching the
bot's SMTP server.

    .venv/bin/python bench/email_answers.py [--runs 5] [--model qwen2.5-1.5b]

Runs the real app (its worker and SMTP listener in-process) on loopback, with a real SMTP
server (aiosmtpd) standing in for the outbound one, a bot on the given model (default: the
installation's default model) and a dataset of three facts, and sends `--runs` mails one after
the other with smtplib. Prints the time the listener takes to accept a mail (what the sending
server waits for) and the time until the answer arrives (what the person waits for): p50, min
and max.
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from openbotkit.engine import Engine
from openbotkit.server.app import create_app
from openbotkit.settings import Settings

# The fake SMTP server lives with the tests: the repository root on the path, however this is
# started.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.channels.fake_smtp import PASSWORD, USERNAME, fake_smtp
from tests.server.serving import free_port, serve_in_thread

BOT = "bot@bots.example.org"
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
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as home, fake_smtp() as smtp:
        settings = Settings.from_env().model_copy(
            update={"home": Path(home), "database_url": None, "email_listen": f"127.0.0.1:{port}"}
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
        run(
            "create_email_integration",
            {
                "botId": bot,
                "address": BOT,
                "smtpUrl": smtp.url,
                "smtpUsername": USERNAME,
                "smtpPassword": PASSWORD,
                "sessionDuration": 0,
            },
        )
        accepts, answers = [], []
        with serve_in_thread(app):
            for i in range(args.runs + 1):  # the first run loads the model: not counted
                mail = EmailMessage()
                mail["From"] = "alice@example.org"
                mail["To"] = BOT
                mail["Subject"] = "Payload"
                mail["Message-ID"] = f"<bench{i}@example.org>"
                mail.set_content(QUESTION)
                before = len(smtp.mails())
                start = time.perf_counter()
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                    client.send_message(mail)
                accepted = time.perf_counter() - start
                while len(smtp.mails()) == before:
                    time.sleep(0.005)
                answered = time.perf_counter() - start
                if i:
                    accepts.append(accepted)
                    answers.append(answered)
                    print(f"run {i}: accepted {accepted * 1000:.0f} ms, answer {answered:.2f} s")
        print(f"model: {args.model or settings.default_model}")
        print(
            f"accept p50 {statistics.median(accepts) * 1000:.0f} ms"
            f" (min {min(accepts) * 1000:.0f}, max {max(accepts) * 1000:.0f})"
        )
        print(
            f"mail -> answer at the SMTP server p50 {statistics.median(answers):.2f} s"
            f" (min {min(answers):.2f}, max {max(answers):.2f})"
        )
        print("last answer:", smtp.mails()[-1].get_content().strip())
        engine.close()


if __name__ == "__main__":
    main()
