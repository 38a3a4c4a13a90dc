"""Keys over REST (the ASGI app in-process): each scope, resource limit, budget and expiry case."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openbotkit.access import Effect
from openbotkit.engine import Engine
from openbotkit.ids import now_ms
from openbotkit.services.secrets import create_secret, list_secrets, revoke
from tests.server.test_app import Client


class Api:
    """The app with the account's unrestricted secret, and keys made on demand."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.client = Client(engine)

    def key(self, **limits: Any) -> str:
        return create_secret(self.engine.runtime, "alice", **limits)[1]

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.request(method, "/api/v1" + path, headers=headers, **kw)

    def make(self, path: str, body: dict[str, Any] | None = None) -> str:
        resp = self.call("POST", path, json=body or {})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["id"])


@pytest.fixture
def api(engine: Engine) -> Iterator[Api]:
    a = Api(engine)
    yield a
    a.client.close()


def refused(resp: httpx.Response, *needles: str) -> None:
    """403 scope_missing whose message names what is needed."""
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["code"] == "SCOPE_MISSING" and resp.headers["x-failure-code"] == "SCOPE_MISSING"
    for needle in needles:
        assert needle in body["message"], (needle, body["message"])


def test_read_scope_reads_and_is_refused_writes(api: Api) -> None:
    bot = api.make("/bot/create", {"name": "b"})
    token = api.key(scope=Effect.READ)
    assert api.call("GET", f"/bot/{bot}/fetch", token).json()["name"] == "b"
    assert api.call("GET", "/bot/list", token).status_code == 200
    refused(api.call("POST", "/bot/create", token, json={}), "create_bot", "needs scope write")
    refused(api.call("POST", f"/bot/{bot}/delete", token, json={}), "needs scope destructive")
    assert api.call("GET", f"/bot/{bot}/fetch").status_code == 200  # nothing was deleted


def test_write_scope_includes_read_but_not_destructive(api: Api) -> None:
    token = api.key(scope=Effect.WRITE)
    bot = api.call("POST", "/bot/create", token, json={"name": "w"}).json()["id"]
    assert api.call("POST", f"/bot/{bot}/update", token, json={"name": "w2"}).status_code == 200
    assert api.call("GET", f"/bot/{bot}/fetch", token).json()["name"] == "w2"
    refused(api.call("POST", f"/bot/{bot}/delete", token, json={}), "delete_bot", "destructive")
    # An effect that depends on the input: detaching is a write, deleting its records is not.
    ds = api.make("/dataset/create")
    file_id = api.make("/file/create")
    api.make(f"/dataset/{ds}/file/{file_id}/attach", {"type": "source"})
    path = f"/dataset/{ds}/file/{file_id}/detach"
    refused(api.call("POST", path, token, json={"deleteRecords": True}), "destructive")
    assert api.call("POST", path, token, json={}).status_code == 200


def test_default_scope_is_everything(api: Api) -> None:
    token = api.key()
    bot = api.call("POST", "/bot/create", token, json={}).json()["id"]
    assert api.call("POST", f"/bot/{bot}/delete", token, json={}).json() == {"id": bot}


def test_bot_limited_key_reaches_its_bot_and_conversations_only(api: Api) -> None:
    mine = api.make("/bot/create", {"alias": "mine"})
    other = api.make("/bot/create")
    secret_ds = api.make("/dataset/create")
    token = api.key(bots=[mine])
    assert api.call("GET", f"/bot/{mine}/fetch", token).status_code == 200
    assert api.call("GET", "/bot/@mine/fetch", token).json()["id"] == mine
    refused(api.call("GET", f"/bot/{other}/fetch", token), f"bot {other}")
    refused(api.call("GET", "/bot/missing/fetch", token), "bot missing")  # no existence oracle
    # Whole-account lists, usage and new resources outside the list are refused.
    for method, path in [
        ("GET", "/bot/list"),
        ("GET", "/conversation/list"),
        ("GET", "/dataset/list"),
        ("GET", "/file/list"),
        ("GET", "/usage/fetch"),
        ("POST", "/bot/create"),
        ("POST", "/dataset/create"),
        ("POST", "/file/create"),
        ("POST", "/conversation/create"),
    ]:
        kw = {"json": {}} if method == "POST" else {}
        refused(api.call(method, path, token, **kw), "without bot or dataset limits")
    conv = api.call("POST", "/conversation/create", token, json={"botId": mine}).json()["id"]
    msg = {"type": "user", "text": "hello"}
    assert api.call("POST", f"/conversation/{conv}/message/create", token, json=msg).is_success
    listed = api.call("GET", f"/conversation/{conv}/message/list", token).json()["items"]
    assert [m["text"] for m in listed] == ["hello"]
    # Another bot's conversation, and a reference to a dataset the key does not have.
    theirs = api.make("/conversation/create", {"botId": other})
    refused(api.call("GET", f"/conversation/{theirs}/fetch", token), f"conversation {theirs}")
    body = {"botId": mine, "datasetId": secret_ds}
    refused(api.call("POST", "/conversation/create", token, json=body), f"dataset {secret_ds}")
    move = {"botId": other}
    refused(api.call("POST", f"/conversation/{conv}/update", token, json=move), f"bot {other}")
    # Default scope: the key may also change and delete its bot.
    assert api.call("POST", f"/bot/{mine}/update", token, json={"name": "n"}).is_success
    assert api.call("POST", f"/conversation/{conv}/delete", token, json={}).is_success


def test_dataset_limited_key_reaches_records_and_its_own_files(api: Api) -> None:
    ds = api.make("/dataset/create")
    other_ds = api.make("/dataset/create")
    own_file, shared_file, loose_file = (api.make("/file/create") for _ in range(3))
    api.make(f"/dataset/{ds}/file/{own_file}/attach", {"type": "source"})
    for target in (ds, other_ds):
        api.make(f"/dataset/{target}/file/{shared_file}/attach", {"type": "source"})
    token = api.key(datasets=[ds], scope=Effect.WRITE)
    rec = api.call("POST", f"/dataset/{ds}/record/create", token, json={"text": "alpha beta"})
    assert rec.status_code == 200
    records = api.call("GET", f"/dataset/{ds}/record/list", token).json()["items"]
    assert [r["id"] for r in records] == [rec.json()["id"]]
    refused(api.call("GET", f"/dataset/{other_ds}/record/list", token), f"dataset {other_ds}")
    search = {"search": "alpha", "mode": "lexical"}
    assert api.call("POST", f"/dataset/{ds}/search", token, json=search).is_success
    files = api.call("GET", f"/dataset/{ds}/file/list", token).json()["items"]
    assert {f["id"] for f in files} == {own_file, shared_file}
    assert api.call("GET", f"/file/{own_file}/fetch", token).status_code == 200
    # A file also attached to a dataset the key does not have is out of reach (a change to it
    # would reach that dataset too), as is a file attached nowhere.
    refused(api.call("GET", f"/file/{shared_file}/fetch", token), f"file {shared_file}")
    refused(api.call("GET", f"/file/{loose_file}/fetch", token), f"file {loose_file}")
    attach = f"/dataset/{ds}/file/{loose_file}/attach"
    refused(api.call("POST", attach, token, json={"type": "source"}), f"file {loose_file}")
    # A new bot is outside the key's list even when it names the key's dataset; choosing what a
    # conversation answers from is the bot's configuration, not a write key's.
    new_bot = {"datasetId": ds}
    refused(api.call("POST", "/bot/create", token, json=new_bot), "without bot or dataset limits")
    over = {"datasetId": ds}
    refused(api.call("POST", "/conversation/create", token, json=over), "may not set datasetId")
    # Write scope on a listed dataset: its content, not its own settings.
    refused(
        api.call("POST", f"/dataset/{ds}/update", token, json={"name": "x"}),
        "update_dataset needs scope destructive",
    )


def test_expired_key_is_credential_expired_even_when_cached(api: Api) -> None:
    token = api.key(expires_at=now_ms() + 1500)
    assert api.call("GET", "/bot/list", token).status_code == 200  # now remembered for 5 s
    time.sleep(1.6)
    resp = api.call("GET", "/bot/list", token)
    assert resp.status_code == 401 and resp.json()["code"] == "CREDENTIAL_EXPIRED"
    assert [s.status() for s in list_secrets(api.engine.runtime, "alice")][-1] == "expired"


def test_revoked_key_is_refused_at_once_in_this_process(api: Api) -> None:
    token = api.key(scope=Effect.READ)
    assert api.call("GET", "/bot/list", token).status_code == 200
    revoke(api.engine.runtime, list_secrets(api.engine.runtime, "alice")[-1].id)
    resp = api.call("GET", "/bot/list", token)
    assert resp.status_code == 401 and resp.json()["code"] == "NOT_AUTHENTICATED"


def test_team_list_is_for_keys_without_resource_limits(api: Api) -> None:
    bot = api.make("/bot/create")
    assert api.call("GET", "/team/list", api.key(scope=Effect.READ)).status_code == 200
    refused(api.call("GET", "/team/list", api.key(bots=[bot])), "team/list")


@pytest.mark.slow
def test_budget_stops_completions_before_generating(api: Api) -> None:
    bot = api.make("/bot/create", {"model": "smollm2/maxTokens=8/temperature=0"})
    # Room for one answer: the prompt (~30 tokens) and 8 more; then not even a prompt fits.
    key = api.key(bots=[bot], scope=Effect.WRITE, budget_tokens=60)
    other = api.key(scope=Effect.WRITE)
    conv = api.call("POST", "/conversation/create", key, json={"botId": bot}).json()["id"]
    # The key's conversations are reached through their sessions, which spend its budget.
    opened = api.call("POST", f"/conversation/{conv}/session/create", key, json={})
    token = opened.json()["token"]
    first = api.call("POST", f"/conversation/{conv}/complete", token, json={"text": "Hi!"})
    assert first.status_code == 200, first.text
    spent = first.json()["usage"]["token"]
    assert 8 < spent <= 60  # the prompt counts too
    count = len(api.call("GET", f"/conversation/{conv}/message/list", token).json()["items"])
    for accept in ("application/json", "application/jsonl"):
        resp = api.call(
            "POST",
            f"/conversation/{conv}/complete",
            token,
            json={"text": "Again?"},
            headers={"Accept": accept},
        )
        assert resp.status_code == 402 and resp.json()["code"] == "INSUFFICIENT_CREDIT"
        assert "budget is spent" in resp.json()["message"]
    # A new session of a new conversation is the same key's budget.
    again = api.call("POST", "/conversation/create", key, json={"botId": bot}).json()["id"]
    fresh = api.call("POST", f"/conversation/{again}/session/create", key, json={})
    resp = api.call(
        "POST", f"/conversation/{again}/complete", fresh.json()["token"], json={"text": "Hi"}
    )
    assert resp.status_code == 402
    after = api.call("GET", f"/conversation/{conv}/message/list", token).json()["items"]
    assert len(after) == count  # nothing generated, nothing stored
    # Tokens are counted per key and per account; the account's usage is the usual total.
    made = api.call("POST", "/conversation/create", other, json={"botId": bot}).json()["id"]
    more = api.call("POST", f"/conversation/{made}/complete", other, json={"text": "Hi!"})
    used = {s.id: s.tokens_used for s in list_secrets(api.engine.runtime, "alice")}
    assert sorted(used.values())[-2:] == sorted([spent, more.json()["usage"]["token"]])
    usage = api.call("GET", "/usage/fetch").json()
    assert usage["tokens"] == spent + more.json()["usage"]["token"]


def wider(resp: httpx.Response, *pointers: str) -> None:
    """403 scope_missing from create_token, naming each field that was too wide."""
    refused(resp, "wider than this one")
    assert sorted(d["pointer"] for d in resp.json()["details"]) == sorted(pointers), resp.text


def made_key(api: Api, key_id: str) -> dict[str, Any]:
    items = api.call("GET", "/token/list").json()["items"]
    return dict(next(k for k in items if k["id"] == key_id))


def test_a_narrower_scope_makes_keys_of_that_scope_at_most(api: Api) -> None:
    token = api.key(scope=Effect.WRITE)
    wider(api.call("POST", "/token/create", token, json={}), "/scope")  # default: destructive
    wider(api.call("POST", "/token/create", token, json={"scope": "destructive"}), "/scope")
    made = api.call("POST", "/token/create", token, json={"scope": "read"})
    assert made.status_code == 200, made.text
    assert made_key(api, made.json()["id"])["scope"] == "read"
    # The made key works, within its own scope.
    assert api.call("GET", "/bot/list", made.json()["token"]).status_code == 200
    refused(api.call("POST", "/bot/create", made.json()["token"], json={}), "needs scope write")


def test_a_bot_limited_key_makes_keys_within_its_bots_only(api: Api) -> None:
    mine = api.make("/bot/create", {"alias": "mine"})
    other = api.make("/bot/create")
    ds = api.make("/dataset/create")
    token = api.key(bots=[mine])
    wider(api.call("POST", "/token/create", token, json={}), "/bots")
    wider(api.call("POST", "/token/create", token, json={"bots": [mine, other]}), "/bots/1")
    wider(api.call("POST", "/token/create", token, json={"datasets": [ds]}), "/datasets/0")
    # An unknown id is refused the same way as one that exists: no existence oracle.
    wider(api.call("POST", "/token/create", token, json={"bots": ["nope"]}), "/bots/0")
    made = api.call("POST", "/token/create", token, json={"bots": ["@mine"], "scope": "write"})
    assert made.status_code == 200, made.text
    shown = made_key(api, made.json()["id"])
    assert shown["bots"] == [mine] and shown["datasets"] == [] and shown["scope"] == "write"
    refused(api.call("GET", f"/bot/{other}/fetch", made.json()["token"]), f"bot {other}")


def test_a_key_with_a_budget_gives_part_of_it_to_the_keys_it_makes(api: Api) -> None:
    token = api.key(budget_tokens=100)
    wider(api.call("POST", "/token/create", token, json={}), "/budgetTokens")
    wider(api.call("POST", "/token/create", token, json={"budgetTokens": 101}), "/budgetTokens")
    made = api.call("POST", "/token/create", token, json={"budgetTokens": 60})
    assert made.status_code == 200, made.text
    assert made_key(api, made.json()["id"])["budgetTokens"] == 60
    # The 60 were taken from the maker: 40 are left to give (or to spend).
    wider(api.call("POST", "/token/create", token, json={"budgetTokens": 41}), "/budgetTokens")
    assert api.call("POST", "/token/create", token, json={"budgetTokens": 40}).is_success
    resp = api.call("POST", "/token/create", token, json={"budgetTokens": 1})
    wider(resp, "/budgetTokens")
    assert "0 of 100" in resp.json()["message"]


def test_a_key_that_expires_makes_keys_that_expire_no_later(api: Api) -> None:
    token = api.key(expires_at=now_ms() + 3_600_000)
    wider(api.call("POST", "/token/create", token, json={}), "/expiresIn")
    wider(api.call("POST", "/token/create", token, json={"expiresIn": 7200}), "/expiresIn")
    made = api.call("POST", "/token/create", token, json={"expiresIn": 600})
    assert made.status_code == 200, made.text
    assert made_key(api, made.json()["id"])["expiresAt"] <= now_ms() + 600_000


def test_every_too_wide_field_is_named_at_once(api: Api) -> None:
    bot = api.make("/bot/create")
    token = api.key(bots=[bot], scope=Effect.WRITE, budget_tokens=10, expires_at=now_ms() + 60_000)
    resp = api.call("POST", "/token/create", token, json={})
    wider(resp, "/scope", "/bots", "/budgetTokens", "/expiresIn")
    assert len(api.call("GET", "/token/list").json()["items"]) == 2  # the app's and this one


def cite(record_id: str, dataset_id: str, quote: str) -> dict[str, Any]:
    return {"start": 0, "end": 1, "recordId": record_id, "datasetId": dataset_id, "quote": quote}


def test_verify_confirms_nothing_outside_the_keys_reach(api: Api) -> None:
    public_ds = api.make("/dataset/create")
    secret_ds = api.make("/dataset/create")
    shown = api.make(f"/dataset/{public_ds}/record/create", {"text": "Opening hours: 9 to 5."})
    hidden = api.make(f"/dataset/{secret_ds}/record/create", {"text": "The vault code is 4321."})
    bot = api.make("/bot/create", {"datasetId": public_ds})
    # An operator's key for one bot (a public key reaches no conversation but through a
    # session, and a session verifies nothing).
    token = api.key(bots=[bot], scope=Effect.DESTRUCTIVE)
    conv = api.call("POST", "/conversation/create", token, json={"botId": bot}).json()["id"]
    # Citations as an answer would carry them (written here with the account's own key).
    guesses = [cite(hidden, secret_ds, "4321"), cite(shown, public_ds, "9 to 5")]
    msg = api.make(
        f"/conversation/{conv}/message/create",
        {"type": "bot", "text": "x", "meta": {"citations": guesses}},
    )
    path = f"/conversation/{conv}/message/{msg}/verify"
    owner = api.call("POST", path, json={}).json()
    assert [c["ok"] for c in owner["citations"]] == [True, True]
    limited = api.call("POST", path, token, json={}).json()
    # The record in the key's bot's dataset checks out; the guess about the other dataset's
    # record does not, though it is right: the key learns nothing about it.
    assert [c["ok"] for c in limited["citations"]] == [False, True]
    wrong = cite(hidden, secret_ds, "9999")
    api.call(
        "POST", f"/conversation/{conv}/message/{msg}/update", json={"meta": {"citations": [wrong]}}
    )
    assert api.call("POST", path, token, json={}).json()["citations"][0]["ok"] is False


def test_a_limited_key_writes_no_citations(api: Api) -> None:
    ds = api.make("/dataset/create")
    bot = api.make("/bot/create", {"datasetId": ds})
    token = api.key(bots=[bot], scope=Effect.DESTRUCTIVE)  # reaches the conversation itself
    conv = api.call("POST", "/conversation/create", token, json={"botId": bot}).json()["id"]
    create = f"/conversation/{conv}/message/create"
    for field, value in [
        ("citations", [cite("r", ds, "q")]),
        ("sources", ["r"]),
        ("sourceRecords", [{"id": "r"}]),
    ]:
        body = {"type": "bot", "text": "x", "meta": {field: value, "note": 1}}
        resp = api.call("POST", create, token, json=body)
        assert resp.status_code == 400 and resp.json()["code"] == "BAD_REQUEST", resp.text
        assert [d["pointer"] for d in resp.json()["details"]] == [f"/meta/{field}"]
    msg = api.call("POST", create, token, json={"type": "user", "text": "hi", "meta": {"a": 1}})
    assert msg.status_code == 200
    update = f"/conversation/{conv}/message/{msg.json()['id']}/update"
    resp = api.call("POST", update, token, json={"meta": {"citations": []}})
    assert resp.status_code == 400
    assert [d["pointer"] for d in resp.json()["details"]] == ["/meta/citations"]
    listed = api.call("GET", f"/conversation/{conv}/message/list", token).json()["items"]
    assert [m.get("meta") for m in listed] == [{"a": 1}]
    # A key without resource limits may (it reaches every record anyway).
    assert api.call("POST", update, json={"meta": {"citations": []}}).is_success
