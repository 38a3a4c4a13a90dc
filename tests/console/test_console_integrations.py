"""The console's Integrations and Skillsets pages and the playground's ability calls, in a real
browser (Chromium) against a real `obk serve` app on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from openbotkit.engine import Engine
from openbotkit.server.app import create_app
from openbotkit.services import integrations
from openbotkit.services.context import AccountScope
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from tests.console.browser import chromium, watch
from tests.console.test_console import sign_in
from tests.server.serving import serve_in_thread
from tests.services.test_answering import Script, calls, script, text
from tests.services.test_tools import AUTH, TOKEN, Api, api, fetch_block

__all__ = ["api", "script"]  # the loopback order API and the scripted model, as fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def only_http_errors(errors: list[str], status: str) -> bool:
    """The browser logs every 4xx answer as a console error: those, and nothing else."""
    return all(status in e for e in errors)


def test_a_telegram_integration_is_created_set_up_and_shows_its_last_error(
    settings: Settings, browser: Browser
) -> None:
    engine = Engine(settings)
    _, secret = create_secret(engine.runtime, "local")
    bot = engine.execute("create_bot", {"name": "Support"}, account="local")["id"]
    auth = {"Authorization": f"Bearer {secret}"}
    with serve_in_thread(create_app(settings, engine)) as origin:
        w = watch(browser)
        page = w.page
        sign_in(w, origin, secret)
        page.get_by_role("link", name="Integrations", exact=True).click()
        expect(page.get_by_role("heading", name="Integrations", exact=True)).to_be_visible()
        page.get_by_role("button", name="New integration").click()
        page.get_by_label("Kind", exact=True).select_option(label="Telegram")
        # The kind's own fields come from its action's schema; the token is a password input.
        token = page.get_by_label("Bot token", exact=True)
        expect(token).to_have_attribute("type", "password")
        page.get_by_label("Name", exact=True).fill("Support chat")
        page.get_by_label("Bot", exact=True).select_option(label="Support")
        page.get_by_role("button", name="Create integration").click()

        # Creating runs setup: it says what is still missing.
        setup = page.get_by_role("region", name="Setup of Telegram Support chat")
        expect(setup).to_contain_text("Missing")
        expect(setup).to_contain_text("Bot token")
        expect(setup.locator("dd").first).to_have_text("no")  # Ready: no
        row = page.get_by_role("row").filter(has_text="Support chat")
        expect(row).to_contain_text("No errors reported")
        expect(row).to_contain_text("Support")
        w.shot("integrations-setup")

        # The token goes in on an edit and never comes back, to the page or the API.
        page.get_by_role("button", name="Edit Support chat").click()
        page.get_by_label("Bot token", exact=True).fill("123456:very-secret-token")
        page.get_by_role("button", name="Save integration").click()
        expect(page.get_by_role("button", name="New integration")).to_be_visible()
        listed = httpx.get(origin + "/api/v1/integration/telegram/list", headers=auth).json()
        [item] = listed["items"]
        assert item["botId"] == bot and item["name"] == "Support chat"
        assert "very-secret-token" not in str(listed)
        page.get_by_role("button", name="Edit Support chat").click()
        expect(page.get_by_label("Bot token", exact=True)).to_have_value("")
        assert "very-secret-token" not in page.content()
        page.get_by_role("button", name="Cancel").click()

        # A failed send is recorded on the integration (as the channel's worker does); the
        # Integrations page and the bot's row show it.
        scope = AccountScope(engine.runtime, engine.local_account_id())
        with scope.transaction() as ctx:
            integrations.report_error(ctx, item["id"], "sendMessage: 401 Unauthorized")
        page.reload()
        row = page.get_by_role("row").filter(has_text="Support chat")
        expect(row).to_contain_text("Last error")
        expect(row).to_contain_text("sendMessage: 401 Unauthorized")
        page.get_by_role("link", name="Bots", exact=True).click()
        bot_row = page.get_by_role("row").filter(has_text="Support")
        expect(bot_row.get_by_role("link", name="telegram: Support chat")).to_be_visible()
        expect(bot_row).to_contain_text("sendMessage: 401 Unauthorized")
        w.shot("bots-integrations")

        # Delete it.
        page.get_by_role("link", name="Integrations", exact=True).click()
        page.get_by_role("button", name="Delete Support chat").click()
        page.get_by_role("dialog").get_by_role("button", name="Delete").click()
        expect(page.get_by_text("No integrations yet")).to_be_visible()
        w.assert_no_errors()


def test_slack_setup_shows_a_refused_token_and_keeps_it_as_the_last_error(
    tmp_path: Path, browser: Browser
) -> None:
    """Slack's setup checks the bot token (auth.test) against a fake Web API that refuses it:
    the result and the integration's lastError both say so."""

    async def auth_test(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": False, "error": "invalid_auth"})

    fake = Starlette(routes=[Route("/api/auth.test", auth_test, methods=["POST"])])
    with serve_in_thread(fake) as slack_origin:
        settings = Settings(home=tmp_path / "h", slack_api_url=slack_origin + "/api")
        engine = Engine(settings)
        _, secret = create_secret(engine.runtime, "local")
        engine.execute("create_bot", {"name": "Helpdesk"}, account="local")
        with serve_in_thread(create_app(settings, engine)) as origin:
            w = watch(browser)
            page = w.page
            sign_in(w, origin, secret)
            page.get_by_role("link", name="Integrations", exact=True).click()
            page.get_by_role("button", name="New integration").click()
            page.get_by_label("Kind", exact=True).select_option(label="Slack")
            expect(page.get_by_label("Signing secret", exact=True)).to_have_attribute(
                "type", "password"
            )
            page.get_by_label("Name", exact=True).fill("Team chat")
            page.get_by_label("Bot", exact=True).select_option(label="Helpdesk")
            page.get_by_label("Bot token", exact=True).fill("xoxb-refused")
            page.get_by_label("Signing secret", exact=True).fill("signing-value")
            page.get_by_role("button", name="Create integration").click()
            setup = page.get_by_role("region", name=re.compile("^Setup of Slack"))
            expect(setup.get_by_role("status")).to_contain_text("the bot token was refused")
            expect(setup).to_contain_text("invalid_auth")
            row = page.get_by_role("row").filter(has_text="Team chat")
            expect(row).to_contain_text("Last error")
            expect(row).to_contain_text("invalid_auth")
            assert "xoxb-refused" not in page.content()
            w.shot("integrations-slack")
            w.assert_no_errors()


def test_a_skillset_gets_abilities_from_templates_and_a_malformed_one_names_its_line(
    settings: Settings, browser: Browser
) -> None:
    engine = Engine(settings)
    _, secret = create_secret(engine.runtime, "local")
    engine.execute("create_dataset", {"name": "Lighthouse"}, account="local")
    auth = {"Authorization": f"Bearer {secret}"}
    with serve_in_thread(create_app(settings, engine)) as origin:
        w = watch(browser)
        page = w.page
        sign_in(w, origin, secret)
        page.get_by_role("link", name="Skillsets", exact=True).click()

        # A secret: the value goes in and is never shown back.
        page.get_by_label("Secret name", exact=True).fill("Shop API")
        page.get_by_label("Type", exact=True).select_option("bearer")
        expect(page.get_by_label("Value", exact=True)).to_have_attribute("type", "password")
        page.get_by_label("Value", exact=True).fill("shop-token-value")
        page.get_by_role("button", name="Create secret").click()
        secrets = page.get_by_role("table", name="Secrets")
        expect(secrets.get_by_role("cell", name="Shop API", exact=True)).to_be_visible()
        expect(secrets.get_by_role("cell", name="bearer", exact=True)).to_be_visible()
        assert "shop-token-value" not in page.content()

        page.get_by_label("Name", exact=True).fill("Orders")
        page.get_by_role("button", name="Create skillset").click()
        expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()

        # Each template is accepted by the server as it stands.
        templates = {
            "JSON API (fetch with a bearer secret)": ("Look up an order", "fetch"),
            "Dataset search (Lighthouse)": ("Search Lighthouse", "dataset/search"),
            "MCP server (mcp/install)": ("Remote tools", "mcp/install"),
        }
        for label, (name, action) in templates.items():
            page.get_by_role("button", name="New ability").click()
            page.get_by_label("Start from", exact=True).select_option(label=label)
            expect(page.get_by_label("Ability name", exact=True)).to_have_value(name)
            page.get_by_role("button", name="Create ability").click()
            row = (
                page.get_by_role("table", name="Abilities").get_by_role("row").filter(has_text=name)
            )
            expect(row).to_contain_text(action)
        w.shot("skillset-abilities")
        skillset_id = page.url.rsplit("/", 1)[-1]
        listed = httpx.get(
            f"{origin}/api/v1/skillset/{skillset_id}/ability/list", headers=auth
        ).json()["items"]
        fetch = next(a for a in listed if a["name"] == "Look up an order")
        assert "```fetch" in fetch["instruction"]
        assert "${SECRET_DEFAULT}" in fetch["instruction"]
        assert fetch["linkedSecretId"]  # the template linked the bearer secret

        # A malformed instruction: the server's error, naming the line, next to the editor.
        page.get_by_role("button", name="Edit Look up an order").click()
        instruction = page.get_by_label("Instruction", exact=True)
        instruction.fill(fetch["instruction"].replace("orderId! euc", "orderId! zz"))
        page.get_by_role("button", name="Save ability").click()
        expect(instruction).to_have_attribute("aria-invalid", "true")
        message = page.locator(f"#{instruction.get_attribute('aria-describedby')}")
        expect(message).to_contain_text("instruction line 5")
        expect(message).to_contain_text("unknown flag 'zz'")
        # The caret is put on that line, selected.
        selected = instruction.evaluate("t => t.value.slice(t.selectionStart, t.selectionEnd)")
        assert selected == "url: https://api.example.com/orders/$[orderId! zz|the order number]"
        w.shot("ability-error")
        page.get_by_role("button", name="Cancel").click()

        # The bot page picks the skillset.
        page.get_by_role("link", name="Bots", exact=True).click()
        page.get_by_role("button", name="New bot").click()
        page.get_by_label("Name", exact=True).fill("Shop assistant")
        page.get_by_label("Skillset", exact=True).select_option(label="Orders")
        page.get_by_role("button", name="Create bot").click()
        row = page.get_by_role("row").filter(has_text="Shop assistant")
        expect(row.get_by_role("link", name="Orders")).to_be_visible()
        [bot] = httpx.get(origin + "/api/v1/bot/list", headers=auth).json()["items"]
        assert bot["skillsetId"] == skillset_id
        assert only_http_errors(w.errors, "400"), w.errors


def test_the_playground_shows_a_conversations_ability_calls(
    settings: Settings, browser: Browser
) -> None:
    engine = Engine(settings)
    _, secret = create_secret(engine.runtime, "local")
    bot = engine.execute("create_bot", {"name": "Shop"}, account="local")["id"]
    auth = {"Authorization": f"Bearer {secret}"}
    with serve_in_thread(create_app(settings, engine)) as origin:
        api = origin + "/api/v1"
        conversation = httpx.post(f"{api}/conversation/create", json={"botId": bot}, headers=auth)
        cid = conversation.json()["id"]
        calls = [
            {
                "abilityId": "ab_1",
                "name": "lookup_order",
                "arguments": {"orderId": "A-17"},
                "status": "ok",
                "durationMs": 84,
                "error": None,
                "result": '{"status": "shipped"}',
            },
            {
                "abilityId": "ab_2",
                "name": "track_parcel",
                "arguments": {"parcel": "Z9"},
                "status": "error",
                "durationMs": 2300,
                "error": "HTTP 503 from api.example.com",
                "result": "",
            },
        ]
        activity = [
            {"type": "activity", "text": f"{c['name']} → {c['status']}", "meta": {"activity": c}}
            for c in calls
        ]
        messages: list[dict[str, Any]] = [
            {"type": "user", "text": "Where is order A-17?"},
            *activity,
            {"type": "bot", "text": "Order A-17 has shipped."},
        ]
        for m in messages:
            made = httpx.post(f"{api}/conversation/{cid}/message/create", json=m, headers=auth)
            assert made.status_code == 200, made.text

        w = watch(browser)
        page = w.page
        sign_in(w, origin, secret)
        page.goto(f"{origin}/#/playground/{bot}/{cid}")
        shown = page.get_by_role("article", name="Ability call")
        expect(shown).to_have_count(2)
        expect(shown.nth(0)).to_contain_text("lookup_order")
        expect(shown.nth(0).locator(".call-status")).to_have_text("ok")
        expect(shown.nth(0)).to_contain_text("84 ms")
        expect(shown.nth(1)).to_contain_text("track_parcel")
        expect(shown.nth(1).locator(".call-status")).to_have_text("error")
        expect(shown.nth(1)).to_contain_text("2.3 s")
        expect(shown.nth(1)).to_contain_text("HTTP 503 from api.example.com")
        # In order: the question, the calls, then the answer.
        order = page.locator(".chat-log > article").evaluate_all(
            "els => els.map(e => e.getAttribute('aria-label'))"
        )
        assert order == ["You", "Ability call", "Ability call", "Answer"]
        shown.nth(0).get_by_text("Arguments and result").click()
        expect(shown.nth(0).get_by_label("Arguments")).to_contain_text('"orderId": "A-17"')
        expect(shown.nth(0).get_by_label("Result")).to_contain_text("shipped")
        w.shot("playground-activity")
        w.assert_no_errors()


def test_the_playground_shows_an_ability_call_as_it_streams(
    tmp_path: Path, browser: Browser, script: tuple[Script, str], api: Api
) -> None:
    model, model_origin = script
    table = {"models": {"scripted": {"provider": "openai", "baseUrl": f"{model_origin}/v1"}}}
    (tmp_path / "models.json").write_text(json.dumps(table))
    settings = Settings(
        home=tmp_path / "home",
        models_file=tmp_path / "models.json",
        default_model="scripted",
        fetch_allow_hosts=f"127.0.0.1:{api.port}",
    )
    engine = Engine(settings)
    _, key = create_secret(engine.runtime, "local")

    def run(name: str, data: dict[str, Any]) -> dict[str, Any]:
        return engine.execute(name, data, account="local")

    secret = run("create_secret", {"name": "Shop API", "type": "bearer", "value": TOKEN})["id"]
    skillset = run("create_skillset", {"name": "Shop"})["id"]
    order_url = f"{api.origin}/orders/$[orderId! euc|the order number]"
    run(
        "create_skillset_ability",
        {
            "skillsetId": skillset,
            "name": "Lookup order",
            "instruction": fetch_block(order_url, AUTH),
            "linkedSecretId": secret,
        },
    )
    bot = run("create_bot", {"name": "Shop", "skillsetId": skillset})["id"]
    model.replies = [calls(("lookup_order", '{"orderId": "42"}')), text("Order 42 shipped.")]
    try:
        with serve_in_thread(create_app(settings, engine)) as origin:
            w = watch(browser)
            page = w.page
            lists: list[str] = []
            page.on("request", lambda r: lists.append(r.url) if "/message/list" in r.url else None)
            sign_in(w, origin, key)
            page.goto(f"{origin}/#/playground/{bot}")
            page.get_by_label("Message", exact=True).fill("Where is order 42?")
            page.get_by_role("button", name="Send").click()
            expect(page.get_by_role("article", name="Answer")).to_contain_text("Order 42 shipped.")
            shown = page.get_by_role("article", name="Ability call")
            expect(shown).to_have_count(1)
            expect(shown).to_contain_text("lookup_order")
            expect(shown.locator(".call-status")).to_have_text("ok")
            order = page.locator(".chat-log > article").evaluate_all(
                "els => els.map(e => e.getAttribute('aria-label'))"
            )
            assert order == ["You", "Ability call", "Answer"]
            # Drawn from the stream as it happened: the stored messages were not read for it.
            assert lists == []
            assert TOKEN not in page.content()
            w.assert_no_errors()
    finally:
        engine.close()
