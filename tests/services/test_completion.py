"""Completions with the real bundled model (short answers, temperature 0)."""

from __future__ import annotations

from typing import Any

import pytest

from openbotkit.actions import REGISTRY
from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput, NotFound, ProviderError
from tests.conftest import RunAction

ZEPHYR = "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms."
QUESTION = "What is the maximum payload of the Zephyr-9 robot?"
MODEL = "smollm2/maxTokens=40/temperature=0"


@pytest.fixture
def grounded(run: RunAction) -> dict[str, str]:
    ds = run("create_dataset", {"name": "robots"})["id"]
    record = run("create_dataset_record", {"datasetId": ds, "text": ZEPHYR})["id"]
    run("create_dataset_record", {"datasetId": ds, "text": "Our office is open Monday to Friday."})
    bot = run(
        "create_bot",
        {"model": MODEL, "datasetId": ds, "backstory": "Answer briefly from the facts given."},
    )["id"]
    conv = run("create_conversation", {"botId": bot})["id"]
    return {"dataset": ds, "record": record, "bot": bot, "conversation": conv}


def test_bot_answers_from_its_dataset_and_names_its_sources(
    run: RunAction, grounded: dict[str, str]
) -> None:
    out = run(
        "complete_conversation", {"conversationId": grounded["conversation"], "text": QUESTION}
    )
    assert "42" in out["text"]
    assert out["end"] == {"reason": "stop"} and out["usage"]["token"] > 0
    messages = run("list_conversation_messages", {"conversationId": grounded["conversation"]})[
        "items"
    ]
    assert [(m["type"], m["text"]) for m in messages] == [("user", QUESTION), ("bot", out["text"])]
    assert messages[1]["id"] == out["id"]
    meta = messages[1]["meta"]
    assert grounded["record"] in meta["sources"]
    # Each source as a reader needs it (the console and the widget show these).
    records = meta["sourceRecords"]
    assert [r["id"] for r in records] == meta["sources"]
    found = next(r for r in records if r["id"] == grounded["record"])
    stored = run(
        "fetch_dataset_record", {"datasetId": grounded["dataset"], "recordId": grounded["record"]}
    )
    assert found["text"] == stored["text"] and found["datasetId"] == grounded["dataset"]
    assert 0 < found["score"] <= 1
    usage = meta["usage"]
    assert usage["inputTokensUsed"] + usage["outputTokensUsed"] == out["usage"]["token"]


def test_stream_events_in_spec_order_with_one_result(
    engine: Engine, grounded: dict[str, str]
) -> None:
    act = REGISTRY.get("complete_conversation")
    inp = act.parse_input({"conversationId": grounded["conversation"], "text": QUESTION})
    events = list(engine.stream(act, inp, account_id=engine.ensure_account("alice")))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "completeBegin" and kinds[-1] == "result" and kinds.count("result") == 1
    assert kinds[-3:-1] == ["usage", "completeEnd"]
    tokens = "".join(e["data"]["token"] for e in events if e["type"] == "token")
    assert tokens.strip() == events[-1]["data"]["text"]
    usage = next(e["data"] for e in events if e["type"] == "usage")
    assert usage["model"] == "smollm2"
    assert (
        usage["inputTokensUsed"] + usage["outputTokensUsed"] == events[-1]["data"]["usage"]["token"]
    )


def test_a_stream_closed_early_stores_nothing(
    engine: Engine, run: RunAction, grounded: dict[str, str]
) -> None:
    act = REGISTRY.get("complete_conversation")
    inp = act.parse_input({"conversationId": grounded["conversation"], "text": QUESTION})
    events = engine.stream(act, inp, account_id=engine.ensure_account("alice"))
    assert next(events)["type"] == "completeBegin"
    assert next(events)["type"] == "token"
    events.close()  # the client went away
    assert (
        run("list_conversation_messages", {"conversationId": grounded["conversation"]})["items"]
        == []
    )


def test_unknown_model_is_a_provider_error_and_stores_nothing(run: RunAction) -> None:
    conv = run("create_conversation", {"model": "gpt-4o"})["id"]
    with pytest.raises(ProviderError, match="OBK_MODELS_FILE"):
        run("complete_conversation", {"conversationId": conv, "text": "hi"})
    assert run("list_conversation_messages", {"conversationId": conv})["items"] == []
    # The retry after fixing the model stores the exchange once.
    run("update_conversation", {"conversationId": conv, "model": "smollm2/maxTokens=5"})
    run("complete_conversation", {"conversationId": conv, "text": "hi"})
    assert len(run("list_conversation_messages", {"conversationId": conv})["items"]) == 2


def test_usage_counts_tokens_and_messages(run: RunAction, grounded: dict[str, str]) -> None:
    before = run("fetch_usage")
    out = run(
        "complete_conversation", {"conversationId": grounded["conversation"], "text": QUESTION}
    )
    after = run("fetch_usage")
    assert after["tokens"] - before["tokens"] == out["usage"]["token"]
    assert after["messages"] - before["messages"] == 2


def test_continue_without_text_and_send_then_receive(run: RunAction) -> None:
    conv = run(
        "create_conversation",
        {"model": "smollm2/maxTokens=8", "messages": [{"type": "user", "text": "Say yes."}]},
    )["id"]
    out = run("complete_conversation", {"conversationId": conv})
    assert out["text"]
    sent = run("send_conversation", {"conversationId": conv, "text": "Say no."})
    assert sent["entities"] == []
    received = run("receive_conversation", {"conversationId": conv})
    assert set(received) == {"id", "text", "usage", "meta"}
    types = [
        m["type"] for m in run("list_conversation_messages", {"conversationId": conv})["items"]
    ]
    assert types == ["user", "bot", "user", "bot"]


def test_stateless_completion_stores_no_conversation(run: RunAction) -> None:
    out = run(
        "complete_messages",
        {"messages": [{"type": "user", "text": "Say hi."}], "model": "smollm2/maxTokens=6"},
    )
    assert set(out) == {"text", "usage", "end", "meta"}
    assert run("list_conversations")["items"] == []
    assert run("fetch_usage")["tokens"] == out["usage"]["token"]


@pytest.mark.parametrize(
    ("data", "error", "pointer"),
    [
        ({"text": "   "}, InvalidInput, "/text"),
        ({}, InvalidInput, "/text"),  # nothing to answer in an empty conversation
    ],
)
def test_bad_turns(
    run: RunAction, data: dict[str, Any], error: type[Exception], pointer: str
) -> None:
    conv = run("create_conversation", {})["id"]
    with pytest.raises(error) as err:
        run("complete_conversation", {"conversationId": conv, **data})
    assert err.value.details[0].pointer == pointer  # type: ignore[attr-defined]


def test_another_accounts_conversation_is_not_found(
    run: RunAction, run_bob: RunAction, grounded: dict[str, str]
) -> None:
    with pytest.raises(NotFound):
        run_bob("complete_conversation", {"conversationId": grounded["conversation"], "text": "hi"})


def test_the_user_messages_entities_are_stored(run: RunAction) -> None:
    conv = run("create_conversation", {"model": "smollm2/maxTokens=4"})["id"]
    entity = {"type": "name", "begin": 11, "end": 16, "text": "Alice"}
    run(
        "complete_conversation",
        {"conversationId": conv, "text": "My name is Alice.", "entities": [entity]},
    )
    user = run("list_conversation_messages", {"conversationId": conv})["items"][0]
    assert user["entities"] == [entity]


def test_stateless_complete_reads_its_attachments_and_accepts_contact_and_namespace(
    tmp_path: Any, local_embedder: Any, local_llm: Any
) -> None:
    """An attachment is fetched (through the same guard as URL uploads; here a name that the
    installation resolves to a loopback server it is allowed to reach) and its text joins the
    prompt; contactId and namespace are accepted as ChatBotKit accepts them."""
    import http.server
    import threading

    from openbotkit.settings import Settings
    from tests.conftest import make_runner

    hits: list[str] = []

    class Doc(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = ZEPHYR.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Doc)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    engine = Engine(
        Settings(
            home=tmp_path / "att",
            allow_private_urls=True,
            resolve_hosts={"docs.test": ("127.0.0.1",)},
        ),
        embedder=local_embedder,
        local_llms=[local_llm],
    )
    run = make_runner(engine, "alice")
    try:
        base = {"messages": [{"type": "user", "text": QUESTION}], "model": MODEL}
        plain = run("complete_messages", base)
        url = f"http://docs.test:{server.server_address[1]}/zephyr.txt"
        attached = run(
            "complete_messages",
            {
                **base,
                "attachments": [{"url": url}],
                "contactId": {"fingerprint": "visitor-1", "name": "Ann"},
                "namespace": "support",
            },
        )
        assert hits == ["/zephyr.txt"]
        assert attached["usage"]["token"] > plain["usage"]["token"]
        contact = run("ensure_contact", {"fingerprint": "visitor-2"})["id"]
        assert run("complete_messages", {**base, "contactId": contact})["text"]
        # A contact id is a reference like any other: one the account does not have is not found.
        with pytest.raises(NotFound, match="contactId"):
            run("complete_messages", {**base, "contactId": "contact_1"})
    finally:
        server.shutdown()
        server.server_close()
        engine.close()
