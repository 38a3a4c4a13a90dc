"""Values one database would store and the other would not are refused alike on both: a string
holding NUL (PostgreSQL keeps none, in text or jsonb) and an integer past its column. Each is a
400 naming every place and the rule, before anything is written, never a 500 half-way."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from openbotkit.actions.base import MAX_INT, MAX_INT32
from openbotkit.engine import Engine
from tests.server.test_app import Client


@pytest.fixture
def client(engine: Engine) -> Iterator[Client]:
    c = Client(engine)
    yield c
    c.close()


def _refused(resp: httpx.Response) -> set[tuple[str, str]]:
    """The (pointer, rule) pairs of a 400."""
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["code"] == "BAD_REQUEST"
    return {(d["pointer"], d["rule"]) for d in body["details"]}


def test_nul_character_is_refused_in_every_place(client: Client) -> None:
    # What the fuzzer sent: a 500 on PostgreSQL, stored on SQLite.
    body = {"skillsetId": "\x1d\x0e\x97\x00", "meta": {"k\x00": 1, "list": ["ok", "a\x00"]}}
    assert _refused(client.request("POST", "/api/v1/bot/create", json=body)) == {
        ("/skillsetId", "nul_character"),
        ("/meta", "nul_character"),
        ("/meta/list/1", "nul_character"),
    }
    assert client.request("GET", "/api/v1/bot/list").json()["items"] == []
    # In a path and in a query string too.
    assert _refused(client.request("GET", "/api/v1/bot/a%00b/fetch")) == {
        ("/botId", "nul_character")
    }
    assert _refused(client.request("GET", "/api/v1/bot/list?cursor=%00")) == {
        ("/cursor", "nul_character")
    }
    # The rest of the text is fine: the same bot without the NUL is made.
    made = client.request("POST", "/api/v1/bot/create", json={"name": "\x1d\x0e\x97"})
    assert made.status_code == 200, made.text


@pytest.mark.parametrize(
    ("path", "field", "largest"),
    [
        # An INTEGER column: past 2**31 - 1 it was a 500 on PostgreSQL.
        ("/api/v1/dataset/create", "searchMaxTokens", MAX_INT32),
        # A BIGINT column: past 2**63 - 1 it was a 500 on SQLite; past 2**64 the body parser
        # read it as a float.
        ("/api/v1/conversation/create", "expiresAt", MAX_INT),
    ],
)
def test_integer_past_its_column_is_refused_naming_the_field(
    client: Client, path: str, field: str, largest: int
) -> None:
    def create(n: int) -> httpx.Response:
        content = b'{"%s": %d}' % (field.encode(), n)
        return client.request("POST", path, content=content)

    for too_big in (largest + 1, MAX_INT + 2, 2**64 + 1, 10**30):
        pointers = {pointer for pointer, _ in _refused(create(too_big))}
        assert pointers == {"/" + field}, too_big
    made = create(largest)
    assert made.status_code == 200, made.text
    fetch = path.replace("/create", "/{}/fetch").format(made.json()["id"])
    assert client.request("GET", fetch).json()[field] == largest
