"""An `mcp/install` ability against a real remote MCP server: the project's own /mcp, served by
`obk serve` in its own process, reached with the API key held as the ability's secret."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from openbotkit.actions import REGISTRY
from openbotkit.engine import Engine
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.services import mcp_remote, tools
from openbotkit.services.context import AccountScope
from openbotkit.settings import Settings
from tests.conftest import make_runner
from tests.reliability.serving import Served, obk_serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with obk_serve(tmp_path_factory.mktemp("remote")) as server:
        yield server


def engine_for(settings: Settings, embedder: Embedder, llm: LLMProvider, **fields: str) -> Engine:
    return Engine(
        Settings(**{**settings.model_dump(), **fields}), embedder=embedder, local_llms=[llm]
    )


def install(engine: Engine, served: Served, token: str, prefix: str | None = None) -> str:
    """A skillset with one mcp/install ability whose secret is `token`; returns its id."""
    run = make_runner(engine, "alice")
    secret = run("create_secret", {"name": "remote", "type": "bearer", "value": token})["id"]
    skillset: str = run("create_skillset", {"name": "Remote"})["id"]
    lines = ["```mcp/install", f"url: {served.origin}/mcp", "headers:"]
    lines.append("  Authorization: ${SECRET_DEFAULT}")
    if prefix:
        lines.append(f"prefix: {prefix}")
    instruction = "\n".join([*lines, "```"])
    run(
        "create_skillset_ability",
        {
            "skillsetId": skillset,
            "name": "Remote platform",
            "instruction": instruction,
            "linkedSecretId": secret,
        },
    )
    return skillset


def offered(engine: Engine, skillset: str) -> list[tools.Tool]:
    scope = AccountScope(engine.runtime, engine.ensure_account("alice"))
    with scope.transaction(write=False) as ctx:
        return tools.tools_for(ctx, [skillset])


def test_a_remote_servers_tools_are_listed_and_called_with_the_secret(
    served: Served, settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> None:
    port = served.origin.rsplit(":", 1)[1]
    engine = engine_for(settings, local_embedder, local_llm, fetch_allow_hosts=f"127.0.0.1:{port}")
    try:
        skillset = install(engine, served, served.tokens["a"], prefix="remote")
        listed = offered(engine, skillset)
        # Bounded: the server has more tools than one ability may bring.
        assert len(REGISTRY) > mcp_remote.MAX_MCP_TOOLS == len(listed)
        by_name = {t.name: t for t in listed}
        create = by_name["remote_create_bot"]
        assert create.ability_id is not None
        assert create.parameters["type"] == "object" and "name" in create.parameters["properties"]
        assert create.description == next(a for a in REGISTRY if a.name == "create_bot").description

        scope = AccountScope(engine.runtime, engine.ensure_account("alice"))
        made = tools.call(scope, create, {"name": "Made by an ability"}, deadline_s=30)
        assert made.ok and made.error is None, made
        bot_id = json.loads(made.result)["id"]
        # It exists on the remote server's account, not on ours.
        listing = tools.call(scope, by_name["remote_list_bots"], {}, deadline_s=30)
        assert listing.ok, listing
        names = {b["id"]: b["name"] for b in json.loads(listing.result)["items"]}
        assert names[bot_id] == "Made by an ability"
        assert served.tokens["a"] not in made.result + listing.result
        # The remote tool's own failure is a failed call with its text.
        missing = tools.call(scope, by_name["remote_fetch_bot"], {"botId": "nope"}, deadline_s=30)
        assert not missing.ok and missing.error is not None and "not_found" in missing.result
    finally:
        engine.close()


def test_a_wrong_credential_or_a_host_not_allowed_offers_nothing_and_fails_calls(
    served: Served, settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> None:
    port = served.origin.rsplit(":", 1)[1]
    allowed = engine_for(settings, local_embedder, local_llm, fetch_allow_hosts=f"127.0.0.1:{port}")
    try:
        assert offered(allowed, install(allowed, served, "obk-wrong-token")) == []
    finally:
        allowed.close()
    # Without OBK_FETCH_ALLOW_HOSTS, loopback is refused before anything is sent.
    closed = engine_for(settings, local_embedder, local_llm)
    try:
        skillset = install(closed, served, served.tokens["a"])
        assert offered(closed, skillset) == []
        run = make_runner(closed, "alice")
        (item,) = run("list_skillset_abilities", {"skillsetId": skillset})["items"]
        ability_id = item["id"]
        tool = tools.Tool("list_bots", "List bots", {"type": "object"}, ability_id)
        scope = AccountScope(closed.runtime, closed.ensure_account("alice"))
        out = tools.call(scope, tool, {}, deadline_s=10)
        assert not out.ok and out.error is not None and "not a public address" in out.error
        assert served.tokens["a"] not in out.error
    finally:
        closed.close()
