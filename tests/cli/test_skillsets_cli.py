"""Ability secrets and skillsets through `obk connector` (real processes): the value goes in and
never comes out, on stdout or stderr, in results or errors."""

from __future__ import annotations

import json

from tests.cli.test_connector import obk

VALUE = "cli-secret-value-4Hq9-never-printed"


def _run(action: str, data: dict[str, object], *flags: str) -> tuple[int, str, str]:
    proc = obk(
        "connector", "run", "chatbotkit", "--action", action, "--data", json.dumps(data), *flags
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_secret_value_never_printed_and_an_ability_uses_it() -> None:
    code, out, err = _run(
        "create_secret", {"alias": "crm", "type": "bearer", "value": VALUE}, "--json"
    )
    assert code == 0, err
    secret = json.loads(out)["data"]["id"]
    printed = [out, err]
    for action, data in [
        ("fetch_secret", {"secretId": "@crm"}),
        ("list_secrets", {}),
        ("update_secret", {"secretId": secret, "value": VALUE}),
        ("create_secret", {"type": "basic", "value": VALUE}),  # refused: no user:password
        ("create_secret", {"value": VALUE, "valu": VALUE}),  # refused: unknown key
    ]:
        for flags in (("--json",), ()):
            code, out, err = _run(action, data, *flags)
            printed += [out, err]
    assert all(VALUE not in text for text in printed)
    code, out, err = _run("create_skillset", {"alias": "crm"}, "--json")
    assert code == 0, err
    instruction = (
        "```fetch\nurl: https://crm.example/$[id! euc|id]\nheaders:\n  A: ${SECRET_CRM}\n```"
    )
    code, out, err = _run(
        "create_skillset_ability", {"skillsetId": "@crm", "instruction": instruction}, "--json"
    )
    assert code == 0, err
    # A broken instruction: exit 1, the envelope names the field and the line.
    code, out, err = _run(
        "create_skillset_ability",
        {"skillsetId": "@crm", "instruction": "```fetch\nurl: x\nheaders: [1]\n```"},
        "--json",
    )
    envelope = json.loads(out)
    assert code == 1 and envelope["error"]["code"] == "invalid_input"
    assert "instruction line 3" in envelope["error"]["message"]
