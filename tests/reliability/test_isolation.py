"""Isolation: two accounts, every route, every id field. Bob names Alice's resources in the path,
the query and the body (references such as a bot's datasetId too): each is not_found, and
nothing of Alice's leaks into Bob's answers or changes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from openbotkit.actions import REGISTRY, Action
from openbotkit.engine import Engine
from openbotkit.services.secrets import create_secret
from tests.server.test_app import Client

# Required fields that are not ids, so a request fails for the id and nothing else.
FILLERS: dict[str, Any] = {
    "text": "hello",
    "type": "user",
    "search": "hello",
    "messages": [{"type": "user", "text": "hello"}],
    "queries": [{"query": "hello", "relevant": ["x"]}],
    "questions": [{"question": "hello", "unanswerable": True}],
    "fingerprint": "bob:contact",
}
ID_FIELDS = (
    "botId",
    "datasetId",
    "fileId",
    "conversationId",
    "messageId",
    "recordId",
    "jobId",
    "skillsetId",
    "abilityId",
    "secretId",
    "linkedBotId",
    "linkedSecretId",
    "contactId",
    "integrationId",
)


class Account(Client):
    def __init__(self, engine: Engine, name: str) -> None:
        super().__init__(engine)
        self.token = create_secret(engine, name)[1]

    def call(self, act: Action, data: dict[str, Any], **kw: Any) -> Any:
        path = "/api/v1" + act.path
        for param in act.path_params:
            path = path.replace("{" + param + "}", str(data.pop(param)))
        if act.method == "GET":
            return self.request("GET", path, params=data, **kw)
        return self.request(act.method, path, json=data, **kw)


@pytest.fixture
def accounts(engine: Engine) -> Iterator[tuple[Account, Account]]:
    alice, bob = Account(engine, "alice"), Account(engine, "bob")
    yield alice, bob
    alice.close()
    bob.close()


def _post(client: Account, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.request("POST", "/api/v1" + path, json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _alice_world(alice: Account) -> dict[str, str]:
    ds = _post(alice, "/dataset/create", {"name": "private"})["id"]
    record = _post(alice, f"/dataset/{ds}/record/create", {"text": "Alice's secret fact."})["id"]
    bot = _post(alice, "/bot/create", {"name": "b", "datasetId": ds})["id"]
    file_id = _post(alice, "/file/create", {"name": "secret.txt"})["id"]
    data = "data:text/plain;base64," + base64.b64encode(b"Alice's file").decode()
    _post(alice, f"/file/{file_id}/upload", {"file": data})
    _post(alice, f"/dataset/{ds}/file/{file_id}/attach", {"type": "source"})
    conv = _post(alice, "/conversation/create", {"botId": bot})["id"]
    message = _post(
        alice, f"/conversation/{conv}/message/create", {"type": "user", "text": "private"}
    )["id"]
    job = _post(alice, f"/file/{file_id}/sync", {})["jobs"][0]["id"]  # a queued sync job
    skillset = _post(alice, "/skillset/create", {"name": "private"})["id"]
    secret = _post(alice, "/secret/create", {"name": "private", "value": "Alice's key"})["id"]
    ability = _post(
        alice, f"/skillset/{skillset}/ability/create", {"name": "private", "linkedBotId": bot}
    )["id"]
    contact = _post(alice, "/contact/ensure", {"fingerprint": "alice:contact", "name": "private"})
    integration = _post(alice, "/integration/slack/create", {"name": "private", "botId": bot})
    return {
        "contactId": contact["id"],
        "integrationId": integration["id"],
        "skillsetId": skillset,
        "abilityId": ability,
        "secretId": secret,
        "linkedBotId": bot,
        "linkedSecretId": secret,
        "jobId": job,
        "botId": bot,
        "datasetId": ds,
        "recordId": record,
        "fileId": file_id,
        "conversationId": conv,
        "messageId": message,
    }


def _snapshot(alice: Account, ids: dict[str, str]) -> dict[str, Any]:
    """Everything of Alice's a change could touch."""
    got: dict[str, Any] = {}
    for act in REGISTRY:
        if act.effect.value != "read" or act.name in ("search_dataset",):
            continue
        data = {p: ids[p] for p in act.path_params}
        resp = alice.call(act, data, headers={"Accept": "application/json"})
        got[act.name] = (resp.status_code, resp.content if resp.status_code != 200 else resp.json())
    # Signed URLs differ per call; their targets do not.
    got["download_file"] = alice.request("GET", f"/api/v1/file/{ids['fileId']}/download").content
    return got


def _requests(ids: dict[str, str]) -> Iterator[tuple[Action, dict[str, Any], str]]:
    """For every action and every id field it has: a request naming Alice's id there."""
    for act in REGISTRY:
        fields = {f.alias or n: f for n, f in act.input.model_fields.items()}
        id_fields = [name for name in fields if name in ID_FIELDS]
        for foreign in id_fields:
            data: dict[str, Any] = {}
            for name in id_fields:
                if name in act.path_params or name == foreign:
                    data[name] = ids[name]
            for name, field in fields.items():
                if field.is_required() and name not in data and name in FILLERS:
                    data[name] = FILLERS[name]
            if act.name == "attach_dataset_file":
                data["type"] = "source"
            if act.name == "upload_file":
                data["file"] = "data:text/plain;base64,eA=="
            yield act, data, foreign


def test_another_accounts_ids_are_not_found_and_nothing_changes(
    accounts: tuple[Account, Account],
) -> None:
    alice, bob = accounts
    ids = _alice_world(alice)
    before = _snapshot(alice, ids)
    # Bob's own resources, so that only Alice's id is foreign in each request.
    own = {
        "datasetId": _post(bob, "/dataset/create", {})["id"],
        "botId": _post(bob, "/bot/create", {})["id"],
        "fileId": _post(bob, "/file/create", {})["id"],
    }
    own["conversationId"] = _post(bob, "/conversation/create", {})["id"]
    own["messageId"] = _post(
        bob, f"/conversation/{own['conversationId']}/message/create", {"type": "user", "text": "x"}
    )["id"]
    own["recordId"] = _post(bob, f"/dataset/{own['datasetId']}/record/create", {"text": "x"})["id"]
    own["skillsetId"] = _post(bob, "/skillset/create", {})["id"]
    own["abilityId"] = _post(bob, f"/skillset/{own['skillsetId']}/ability/create", {})["id"]
    own["secretId"] = _post(bob, "/secret/create", {"value": "x"})["id"]
    own["linkedBotId"], own["linkedSecretId"] = own["botId"], own["secretId"]
    own["contactId"] = _post(bob, "/contact/ensure", {"fingerprint": "bob:contact"})["id"]
    own["integrationId"] = _post(bob, "/integration/slack/create", {})["id"]
    tried = set()
    for act, data, foreign in _requests(ids):
        # Every other id in the request is Bob's own: Alice's id is the only reason to refuse.
        request = {k: (v if k == foreign else own.get(k, v)) for k, v in data.items()}
        resp = bob.call(act, dict(request), headers={"Accept": "application/json"})
        tried.add(act.name)
        if act.name == "list_jobs" and foreign != "jobId":
            # Its file and dataset are filters (jobs outlive their file): none of Alice's match.
            assert resp.status_code == 200 and resp.json()["items"] == [], resp.text
            continue
        assert resp.status_code == 404, (act.name, foreign, resp.status_code, resp.text)
        assert resp.json()["code"] == "NOT_FOUND", (act.name, resp.text)
        # Nothing of Alice's shows (a secret's id is named, as any not-found id is).
        assert "secret fact" not in resp.text and "secret.txt" not in resp.text
        assert "private" not in resp.text and "Alice" not in resp.text
        tried.add(act.name)
    with_ids = {
        a.name
        for a in REGISTRY
        if any((f.alias or n) in ID_FIELDS for n, f in a.input.model_fields.items())
    }
    assert with_ids <= tried, with_ids - tried
    # Bob's lists and usage show only Bob's own things.
    for act in REGISTRY:
        # list_tokens: Bob's own key (the one these requests use) is all it may show.
        if act.name.startswith("list_") and not act.path_params and act.name != "list_tokens":
            items = bob.call(act, {}).json()["items"]
            assert {i["id"] for i in items} <= set(own.values()), act.name
    assert len(bob.call(REGISTRY.get("list_tokens"), {}).json()["items"]) == 1
    assert bob.request("GET", "/api/v1/usage/fetch").json()["database"]["records"] == 1
    assert _snapshot(alice, ids) == before
