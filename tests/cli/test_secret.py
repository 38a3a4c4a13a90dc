"""`obk key create|list` (and its old name `obk secret`): limits given at creation, shown by
the listing."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from openbotkit.cli.app import cli
from openbotkit.cli.secret import parse_duration
from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput, NotAuthenticated, NotFound
from openbotkit.ids import now_ms
from openbotkit.services import consoles
from openbotkit.settings import Settings

OBK = str(Path(sys.executable).with_name("obk"))


def obk(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("45m", 2700),
        ("12h", 43200),
        ("30d", 2592000),
        ("2w", 1209600),
        ("1h30m", 5400),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "3x", "h", "1.5h", "-1d", "0s"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(InvalidInput, match="--expires-in"):
        parse_duration(text)


def test_create_with_limits_and_list_them() -> None:
    bot = json.loads(
        obk(
            "connector",
            "run",
            "chatbotkit",
            "--action",
            "create_bot",
            "--json",
            "--data",
            '{"alias": "helper"}',
        )
    )["data"]["id"]
    made = json.loads(
        obk(
            "secret",
            "create",
            "--account",
            "local",
            "--bot",
            "@helper",
            "--scope",
            "read",
            "--scope",
            "write",
            "--budget-tokens",
            "100",
            "--expires-in",
            "1h",
            "--json",
        )
    )
    assert made["token"].startswith("obk_") and made["scope"] == "write"  # the highest given
    assert made["bots"] == [bot] and made["datasets"] == [] and made["budgetTokens"] == 100
    assert abs(made["expiresAt"] - (now_ms() + 3_600_000)) < 60_000
    plain = json.loads(obk("secret", "create", "--account", "local", "--json"))
    assert plain["scope"] == "destructive" and plain["bots"] is None and plain["expiresAt"] is None
    listed = obk("secret", "list")
    assert f"bots: {bot}; datasets: none  tokens 0/100" in listed
    assert "scope destructive  all resources  tokens 0/-  expires never" in listed


def test_unknown_bot_makes_no_key() -> None:
    result = CliRunner().invoke(cli, ["secret", "create", "--account", "a", "--bot", "@nope"])
    assert isinstance(result.exception, NotFound)
    assert json.loads(obk("secret", "list", "--json"))["items"] == []


def test_link_prints_a_one_time_console_sign_in_link() -> None:
    printed = obk("secret", "link", "--url", "https://obk.example/").strip()
    assert printed.startswith("https://obk.example/#signin=")
    link_id, token = printed.split("#signin=", 1)[1].split(".", 1)
    listed = json.loads(obk("secret", "list", "--account", "local", "--json"))["items"]
    assert [s["name"] for s in listed if s["id"] == link_id] == [consoles.LINK_NAME]
    engine = Engine(Settings.from_env())
    try:
        assert consoles.redeem(engine.runtime, link_id, token).token.startswith("obk_")
        with pytest.raises(NotAuthenticated, match="links work once"):
            consoles.redeem(engine.runtime, link_id, token)
    finally:
        engine.close()


def test_key_is_the_documented_name_and_secret_its_hidden_alias() -> None:
    made = json.loads(obk("key", "create", "--account", "local", "--name", "ci", "--json"))
    assert made["token"].startswith("obk_")
    # Both names list the same keys; the old one is not offered in the help.
    assert json.loads(obk("key", "list", "--json")) == json.loads(obk("secret", "list", "--json"))
    top = obk("--help")
    assert "  key " in top and "  secret " not in top
    obk("secret", "revoke", made["id"])
    assert json.loads(obk("key", "list", "--json"))["items"][0]["status"] == "revoked"


def _old_name_stderr(tty: bool) -> str:
    """`obk secret list`'s stderr in a real process, a terminal or a pipe."""
    if not tty:
        proc = subprocess.run([OBK, "secret", "list"], capture_output=True, text=True, check=True)
        return proc.stderr
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [OBK, "secret", "list"], stdout=subprocess.PIPE, stderr=follower, check=True
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.returncode == 0
        return b"".join(chunks).decode()
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)


def test_old_name_notes_the_new_one_only_at_a_terminal() -> None:
    assert _old_name_stderr(tty=False) == ""  # programs parse stderr: nothing there
    assert "`obk secret` is now `obk key`" in _old_name_stderr(tty=True)
