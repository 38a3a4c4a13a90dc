"""The web console and the chat widget in a real browser (Chromium), against a real `obk serve`
app on loopback: what a person does, found by the names a screen reader would read out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from openbotkit.access import Effect
from openbotkit.engine import Engine
from openbotkit.server.app import create_app
from openbotkit.services import consoles
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from tests.console.browser import Watched, chromium, watch
from tests.server.serving import serve_in_thread

GUIDE = """# Lighthouse keeping

## Lamp

The lamp of the Varne lighthouse is lit every evening at dusk by the keeper, Odile Marchetti.

## Fog signal

When fog rolls in, the keeper sounds the foghorn twice every ninety seconds.
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def sign_in(w: Watched, origin: str, secret: str) -> None:
    w.page.goto(origin + "/")
    w.page.get_by_label("API secret", exact=True).fill(secret)
    w.page.get_by_role("button", name="Sign in").click()
    expect(w.page.get_by_role("heading", name="Bots")).to_be_visible()


def test_sign_in_and_out_keeps_the_secret_for_the_tab_only(
    settings: Settings, browser: Browser
) -> None:
    engine = Engine(settings)
    _, secret = create_secret(engine.runtime, "local")
    with serve_in_thread(create_app(settings, engine)) as origin:
        w = watch(browser)
        w.page.goto(origin + "/")
        w.shot("sign-in")
        sign_in(w, origin, secret)
        assert w.page.evaluate("sessionStorage.getItem('obk.secret')") == secret
        for name in (
            "Bots",
            "Playground",
            "Datasets",
            "Files",
            "Skillsets",
            "Integrations",
            "Usage",
            "Keys",
        ):
            w.page.get_by_role("link", name=name, exact=True).click()
            expect(w.page.get_by_role("heading", name=name, exact=True)).to_be_visible()
        w.page.get_by_role("button", name="Sign out").click()
        expect(w.page.get_by_label("API secret", exact=True)).to_be_visible()
        assert w.page.evaluate("sessionStorage.getItem('obk.secret')") is None
        w.assert_no_errors()


def test_an_api_error_is_shown_next_to_the_field_it_names(
    settings: Settings, browser: Browser
) -> None:
    engine = Engine(settings)
    _, secret = create_secret(engine.runtime, "local")
    with serve_in_thread(create_app(settings, engine)) as origin:
        w = watch(browser)
        sign_in(w, origin, secret)
        w.page.get_by_role("button", name="New bot").click()
        w.page.get_by_label("Name", exact=True).fill("Helper")
        w.page.get_by_label("Model", exact=True).fill("not a model!")
        w.page.get_by_role("button", name="Create bot").click()
        model = w.page.get_by_label("Model", exact=True)
        expect(model).to_have_attribute("aria-invalid", "true")
        described = model.get_attribute("aria-describedby")
        message = w.page.locator(f"#{described}")
        expect(message).to_contain_text("model")
        w.shot("bots-error")
        # The only console error is the browser reporting the 400 it was answered.
        assert w.errors and all("400" in e for e in w.errors), w.errors


def test_a_wrong_secret_is_refused_with_the_servers_message(
    settings: Settings, browser: Browser
) -> None:
    with serve_in_thread(create_app(settings, Engine(settings))) as origin:
        w = watch(browser)
        w.page.goto(origin + "/")
        w.page.get_by_label("API secret", exact=True).fill("obk_wrong")
        w.page.get_by_role("button", name="Sign in").click()
        expect(w.page.get_by_role("alert")).to_contain_text("Not authenticated")
        assert w.errors and all("401" in e for e in w.errors), w.errors


def test_sign_in_link_works_once_and_sign_out_revokes(settings: Settings, browser: Browser) -> None:
    engine = Engine(settings)
    link_id, token = consoles.create_link(engine.runtime, "local")
    with serve_in_thread(create_app(settings, engine)) as origin:
        w = watch(browser)
        w.page.goto(f"{origin}/#signin={link_id}.{token}")
        expect(w.page.get_by_role("heading", name="Bots")).to_be_visible()
        assert "signin" not in w.page.url
        own = w.page.evaluate("sessionStorage.getItem('obk.secret')")
        assert own and own != token
        w.assert_no_errors()
        # The link was spent: a second tab opening it is refused and stays signed out.
        v = watch(browser)
        v.page.goto(f"{origin}/#signin={link_id}.{token}")
        expect(v.page.get_by_role("alert")).to_contain_text("only once")
        assert v.page.evaluate("sessionStorage.getItem('obk.secret')") is None
        # Signing out revokes the session's key on the server, not only in the tab.
        auth = {"Authorization": f"Bearer {own}"}
        assert httpx.get(origin + "/api/v1/team/list", headers=auth).status_code == 200
        w.page.get_by_role("button", name="Sign out").click()
        expect(w.page.get_by_label("API secret", exact=True)).to_be_visible()
        assert w.page.evaluate("sessionStorage.getItem('obk.secret')") is None
        assert httpx.get(origin + "/api/v1/team/list", headers=auth).status_code == 401
        w.assert_no_errors()


def test_files_dropped_on_the_page_upload_and_download_unchanged(
    settings: Settings, browser: Browser
) -> None:
    engine = Engine(settings)
    _, secret = create_secret(engine.runtime, "local")
    with serve_in_thread(create_app(settings, engine)) as origin:
        w = watch(browser)
        sign_in(w, origin, secret)
        w.page.get_by_role("link", name="Files", exact=True).click()
        w.page.get_by_role("button", name="Upload").click()
        expect(w.page.get_by_text("choose a file first")).to_be_visible()
        w.page.locator(".dropzone").evaluate(
            """zone => {
                const dt = new DataTransfer()
                dt.items.add(new File(['# Notes\\n\\nDropped, not picked.'], 'notes.md',
                                      {type: 'text/markdown'}))
                zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,
                                                          cancelable: true}))
            }"""
        )
        expect(w.page.get_by_text("notes.md")).to_be_visible()
        with w.page.expect_download() as download:
            w.page.get_by_role("button", name="Download notes.md").click()
        assert download.value.suggested_filename == "notes.md"
        assert Path(download.value.path()).read_text() == "# Notes\n\nDropped, not picked."
        w.assert_no_errors()


def test_widget_routes_answer_cross_origin_and_others_do_not(settings: Settings) -> None:
    with serve_in_thread(create_app(settings, Engine(settings))) as origin:
        preflight = {
            "Origin": "http://127.0.0.1:1",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }
        ok = httpx.options(origin + "/api/v1/conversation/abc/complete", headers=preflight)
        assert ok.status_code == 204
        session = origin + "/api/v1/conversation/abc/session/create"
        opened = httpx.options(session, headers=preflight)
        assert opened.headers["access-control-allow-origin"] == "*"
        assert ok.headers["access-control-allow-origin"] == "*"
        assert "authorization" in ok.headers["access-control-allow-headers"]
        other = httpx.options(origin + "/api/v1/bot/list", headers=preflight)
        assert "access-control-allow-origin" not in other.headers
        listed = httpx.get(origin + "/api/v1/bot/list", headers={"Origin": "http://x.test"})
        assert "access-control-allow-origin" not in listed.headers


def test_cors_origins_setting_opens_every_api_route_to_those_origins(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h", cors_origins="http://app.test, http://b.test")
    with serve_in_thread(create_app(settings, Engine(settings))) as origin:
        r = httpx.get(origin + "/api/v1/bot/list", headers={"Origin": "http://b.test"})
        assert r.headers["access-control-allow-origin"] == "http://b.test"
        r = httpx.get(origin + "/api/v1/bot/list", headers={"Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in r.headers


@pytest.mark.slow
def test_a_newcomer_builds_a_bot_that_answers_from_a_file_and_embeds_it(
    engine: Engine, settings: Settings, browser: Browser, tmp_path: Path
) -> None:
    _, secret = create_secret(engine.runtime, "local")
    guide = tmp_path / "lighthouse.md"
    guide.write_text(GUIDE)
    with serve_in_thread(create_app(settings, engine, worker=True)) as origin:
        w = watch(browser)
        page = w.page
        sign_in(w, origin, secret)

        # A dataset, then a bot answering from it.
        page.get_by_role("link", name="Datasets", exact=True).click()
        page.get_by_label("Name", exact=True).fill("Lighthouse")
        page.get_by_role("button", name="Create dataset").click()
        expect(page.get_by_role("heading", name="Lighthouse")).to_be_visible()
        page.get_by_role("link", name="Bots", exact=True).click()
        page.get_by_role("button", name="New bot").click()
        page.get_by_label("Name", exact=True).fill("Keeper")
        page.get_by_label("Backstory", exact=True).fill("Answer in one short sentence.")
        page.get_by_label("Model", exact=True).fill("smollm2/maxTokens=24/temperature=0")
        page.get_by_label("Dataset", exact=True).select_option(label="Lighthouse")
        page.get_by_role("button", name="Create bot").click()
        expect(page.get_by_role("cell", name="Keeper", exact=True)).to_be_visible()
        w.shot("bots")

        # Upload the guide, attach it, sync it and watch the job reach done.
        page.get_by_role("link", name="Files", exact=True).click()
        page.get_by_label("File", exact=True).set_input_files(str(guide))
        page.get_by_role("button", name="Upload").click()
        expect(page.get_by_text("lighthouse.md")).to_be_visible()
        page.get_by_label("Dataset for lighthouse.md", exact=True).select_option(label="Lighthouse")
        page.get_by_role("button", name="Attach lighthouse.md").click()
        expect(page.get_by_text("attached to Lighthouse")).to_be_visible()
        page.get_by_role("button", name="Sync lighthouse.md").click()
        status = page.get_by_role("status").filter(has_text=re.compile("done|failed"))
        expect(status).to_contain_text("done", timeout=120_000)
        assert page.get_by_label("Sync progress", exact=True).evaluate("p => p.value === p.max")
        w.shot("files")

        # Search it: hybrid, dense and lexical side by side.
        page.get_by_role("link", name="Datasets", exact=True).click()
        page.get_by_role("link", name="Lighthouse").click()
        page.get_by_label("Search", exact=True).fill("who lights the lamp")
        page.get_by_role("button", name="Run search").click()
        for mode in ("hybrid", "dense", "lexical"):
            results = page.get_by_role("region", name=f"{mode} results")
            expect(results).to_contain_text("Odile Marchetti")
        w.shot("datasets")

        # Chat: tokens stream in, the answer names its sources and its usage.
        page.get_by_role("link", name="Playground", exact=True).click()
        page.get_by_label("Bot", exact=True).select_option(label="Keeper")
        question = "Who lights the lamp of the Varne lighthouse?"
        page.get_by_label("Message", exact=True).fill(question)
        page.get_by_role("button", name="Send").click()
        answer = page.get_by_role("article", name="Answer").last
        sources = answer.locator("details.sources")
        expect(sources.locator("summary")).to_contain_text("Sources", timeout=120_000)
        expect(sources).to_contain_text("Odile Marchetti")
        expect(sources).to_contain_text("dataset Lighthouse")
        expect(sources).to_contain_text("score")
        expect(answer.locator(".usage")).to_contain_text("tokens")
        assert answer.locator(".text").inner_text().strip()
        w.shot("playground")
        # The conversation is kept: reopening it shows the same exchange.
        page.get_by_role("list", name="Conversations").get_by_role("link").first.click()
        reopened = page.get_by_role("article", name="Answer")
        expect(reopened).to_have_count(1)
        expect(reopened.locator("details.sources")).to_contain_text("Odile Marchetti")

        # Usage: a chart per metric, and the stored counts.
        page.get_by_role("link", name="Usage", exact=True).click()
        expect(page.get_by_role("img", name="Tokens per day")).to_be_visible()
        expect(page.get_by_role("group", name="Usage chart")).to_be_visible()
        w.shot("usage")

        # Keys: create one, see it listed, revoke it.
        page.get_by_role("link", name="Keys", exact=True).click()
        page.get_by_label("Key name", exact=True).fill("build server")
        page.get_by_role("button", name="Create key").click()
        new_key = page.get_by_label("Your new key", exact=True).input_value()
        assert new_key.startswith("obk_")
        page.get_by_role("button", name="Revoke build server").click()
        page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("cell", name=re.compile("^revoked"))).to_be_visible()
        w.shot("keys")

        # Embed: the snippet's key talks to this bot from another origin.
        page.get_by_role("link", name="Bots", exact=True).click()
        page.get_by_role("button", name="Embed Keeper").click()
        snippet = page.get_by_label("Widget snippet", exact=True).input_value()
        assert 'src="' + origin + '/widget.js"' in snippet
        widget_key = re.search(r'data-key="([^"]+)"', snippet)
        assert widget_key
        # The snippet's key talks to this bot and nothing else.
        limited = {"Authorization": f"Bearer {widget_key[1]}"}
        assert httpx.get(origin + "/api/v1/bot/list", headers=limited).status_code == 403
        w.shot("embed")
        w.assert_no_errors()

        async def host_page(_request: object) -> HTMLResponse:
            return HTMLResponse(
                "<!doctype html><html><head><title>Varne tours</title>"
                '<link rel="icon" href="data:,"></head>'
                f"<body><h1>Varne tours</h1>{snippet}</body></html>"
            )

        with serve_in_thread(Starlette(routes=[Route("/", host_page)])) as other:
            assert other != origin
            v = watch(browser)
            v.page.goto(other + "/")
            v.page.get_by_role("button", name="Open chat").click()
            v.page.get_by_label("Message", exact=True).fill("Who lights the lamp?")
            v.page.get_by_role("button", name="Send").click()
            expect(v.page.locator("details.sources")).to_contain_text(
                "Odile Marchetti", timeout=120_000
            )
            v.shot("widget")
            v.assert_no_errors()


def test_widget_talks_through_a_session_of_its_own_conversation(
    engine: Engine, settings: Settings, browser: Browser
) -> None:
    bot = engine.execute(
        "create_bot",
        {"model": "smollm2/maxTokens=8/temperature=0", "backstory": "Be brief."},
        account="local",
    )["id"]
    _, key = create_secret(engine.runtime, "local", bots=[bot], scope=Effect.WRITE)
    with serve_in_thread(create_app(settings, engine)) as origin:
        snippet = f'<script src="{origin}/widget.js" data-bot-id="{bot}" data-key="{key}"></script>'

        async def host_page(_request: object) -> HTMLResponse:
            return HTMLResponse(
                '<!doctype html><html><head><title>Shop</title><link rel="icon" href="data:,">'
                f"</head><body><h1>Shop</h1>{snippet}</body></html>"
            )

        with serve_in_thread(Starlette(routes=[Route("/", host_page)])) as other:
            v = watch(browser)
            v.page.goto(other + "/")
            v.page.get_by_role("button", name="Open chat").click()
            for question in ("Hello!", "And again?"):
                v.page.get_by_label("Message", exact=True).fill(question)
                v.page.get_by_role("button", name="Send").click()
                expect(v.page.get_by_role("button", name="Send")).to_be_enabled(timeout=60_000)
            expect(v.page.locator(".msg.bot")).to_have_count(2)
            v.assert_no_errors()
            chat = v.page.evaluate(f"JSON.parse(sessionStorage.getItem('obk.widget.{bot}'))")
        assert chat["token"].startswith("obks_")
        # One conversation, both exchanges in it, reached with the session token alone.
        auth = {"Authorization": f"Bearer {chat['token']}"}
        path = f"/api/v1/conversation/{chat['conversationId']}/message/list"
        texts = [m["text"] for m in httpx.get(origin + path, headers=auth).json()["items"]]
        assert texts[0::2] == ["Hello!", "And again?"] and len(texts) == 4
        listed = httpx.get(origin + "/api/v1/conversation/list", headers=auth)
        assert listed.status_code == 403
        # The page's key itself cannot read the conversation it started.
        public = {"Authorization": f"Bearer {key}"}
        assert httpx.get(origin + path, headers=public).status_code == 403


def test_the_console_runs_no_injected_script_and_no_other_page_frames_it(
    settings: Settings, browser: Browser
) -> None:
    """The Content-Security-Policy in force: markup an attacker slips into the page runs no
    script, and a page on another origin that frames the console gets an empty frame."""
    engine = Engine(settings)
    _, secret = create_secret(engine.runtime, "local")
    with serve_in_thread(create_app(settings, engine)) as origin:
        w = watch(browser)
        sign_in(w, origin, secret)
        w.assert_no_errors()  # the console itself runs under the policy without a violation
        blocked = w.page.evaluate(
            """() => new Promise((resolve) => {
                document.addEventListener('securitypolicyviolation',
                    (e) => resolve(e.effectiveDirective), { once: true })
                setTimeout(() => resolve('no violation'), 5000)
                const injected = document.createElement('div')
                injected.innerHTML = '<img src="data:," onerror="window.pwned = 1">'
                document.body.append(injected)
                const script = document.createElement('script')
                script.textContent = 'window.pwned = 2'
                document.body.append(script)
            })"""
        )
        assert blocked.startswith("script-src")
        w.page.wait_for_timeout(200)  # both had their chance to run
        assert w.page.evaluate("window.pwned") is None

        async def framing_page(_request: object) -> HTMLResponse:
            return HTMLResponse(f'<!doctype html><title>frame</title><iframe src="{origin}/">')

        with serve_in_thread(Starlette(routes=[Route("/", framing_page)])) as other:
            v = watch(browser)
            v.page.goto(other + "/")
            v.page.wait_for_load_state("load")
            [framed] = [f for f in v.page.frames if f != v.page.main_frame]
            assert framed.url != origin + "/"  # Chromium's error page instead
            assert framed.locator("text=API secret").count() == 0
