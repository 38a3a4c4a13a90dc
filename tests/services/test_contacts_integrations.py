"""Contacts and integration resources through the Python API: ensure is one contact per
fingerprint, fingerprints stay unique, bad input names its field, a deleted bot leaves its
integrations without one."""

from __future__ import annotations

import pytest

from openbotkit.errors import Conflict, InvalidInput, NotFound
from tests.conftest import RunAction


def test_ensure_is_one_contact_per_fingerprint(run: RunAction, run_bob: RunAction) -> None:
    first = run("ensure_contact", {"fingerprint": "mail:ann@example.org", "name": "Ann"})["id"]
    again = run("ensure_contact", {"fingerprint": "mail:ann@example.org", "nick": "annie"})["id"]
    assert again == first
    contact = run("fetch_contact", {"contactId": first})
    assert (contact["name"], contact["nick"]) == ("Ann", "annie")
    # The id is the one a conversation's `contact` gives for the same fingerprint.
    conversation = run("create_conversation", {"contact": {"fingerprint": "mail:ann@example.org"}})
    assert run("fetch_conversation", {"conversationId": conversation["id"]})["contactId"] == first
    # Another account's same fingerprint is another contact, and it cannot see this one.
    assert run_bob("ensure_contact", {"fingerprint": "mail:ann@example.org"})["id"] != first
    with pytest.raises(NotFound):
        run_bob("fetch_contact", {"contactId": first})
    other = run("ensure_contact", {"fingerprint": "mail:bo@example.org"})["id"]
    with pytest.raises(Conflict, match="fingerprint"):
        run("update_contact", {"contactId": other, "fingerprint": "mail:ann@example.org"})
    with pytest.raises(InvalidInput, match="fingerprint"):
        run("ensure_contact", {"fingerprint": ""})
    run("delete_contact", {"contactId": other})
    assert [c["id"] for c in run("list_contacts", {})["items"]] == [first]


def test_a_fingerprint_given_up_by_one_contact_makes_a_new_contact(run: RunAction) -> None:
    first = run("ensure_contact", {"fingerprint": "ann@example.com"})["id"]
    run("update_contact", {"contactId": first, "fingerprint": "ann@example.org"})
    # The old fingerprint now belongs to nobody: ensuring it makes a second contact (whose
    # derived id the first one still holds), not an error.
    second = run("ensure_contact", {"fingerprint": "ann@example.com"})["id"]
    assert second != first
    assert run("fetch_contact", {"contactId": first})["fingerprint"] == "ann@example.org"
    assert run("fetch_contact", {"contactId": second})["fingerprint"] == "ann@example.com"
    assert run("ensure_contact", {"fingerprint": "ann@example.com"})["id"] == second


def test_integration_input_is_checked_and_a_deleted_bot_unlinks(run: RunAction) -> None:
    with pytest.raises(InvalidInput, match="sessionDuration"):
        run("create_slack_integration", {"sessionDuration": -1})
    with pytest.raises(InvalidInput, match="appId"):
        run("create_slack_integration", {"appId": "discord's field"})
    with pytest.raises(NotFound, match="botId"):
        run("create_slack_integration", {"botId": "missing"})
    bot = run("create_bot", {"alias": "helper"})["id"]
    made = run("create_discord_integration", {"botId": "@helper", "alias": "desk", "appId": "1"})
    with pytest.raises(Conflict, match="alias"):
        run("create_slack_integration", {"alias": "desk"})
    fetched = run("fetch_discord_integration", {"integrationId": "@desk"})
    assert (fetched["botId"], fetched["appId"]) == (bot, "1")
    whatsapp = run("create_whatsapp_integration", {"accessToken": "t"})["id"]
    verify = run("fetch_whatsapp_integration", {"integrationId": whatsapp})["verifyToken"]
    assert len(verify) >= 24  # made by the server, shown to paste into Meta's console
    run("delete_bot", {"botId": bot})
    assert "botId" not in run("fetch_discord_integration", {"integrationId": made["id"]})
    setup = run("setup_discord_integration", {"integrationId": made["id"]})
    assert setup["missing"] == ["botId", "publicKey", "botToken"] and setup["ready"] is False
