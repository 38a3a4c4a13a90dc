"""Citations of bot answers (bundled SmolLM2, temperature 0) and verify_message."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from openbotkit.actions import REGISTRY
from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput, NotFound
from tests.conftest import RunAction

FACTS = [
    "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.",
    "The Zephyr-9 charges in 90 minutes and runs for 8 hours.",
    "Our office is open Monday to Friday, 9am to 5pm.",
]
QUESTION = "What is the maximum payload of the Zephyr-9 robot?"
MODEL = "smollm2/maxTokens=40/temperature=0"


@pytest.fixture
def bot(run: RunAction) -> dict[str, Any]:
    ds = run("create_dataset", {"name": "robots"})["id"]
    records = [run("create_dataset_record", {"datasetId": ds, "text": f})["id"] for f in FACTS]
    bot = run(
        "create_bot",
        {"model": MODEL, "datasetId": ds, "backstory": "Answer briefly from the facts given."},
    )["id"]
    conv = run("create_conversation", {"botId": bot})["id"]
    return {"dataset": ds, "records": records, "conversation": conv}


def check_citations(run: RunAction, text: str, meta: dict[str, Any], dataset: str) -> None:
    """Every quote is verbatim in its record, every span a stripped piece of the answer, and
    grounding the supported share of the spans' characters."""
    spans = []
    for c in meta["citations"]:
        record = run(
            "fetch_dataset_record", {"datasetId": c["datasetId"], "recordId": c["recordId"]}
        )
        assert c["datasetId"] == dataset
        assert c["quote"] and c["quote"] in record["text"]
        assert c["source"] == record.get("source")
        piece = text[c["start"] : c["end"]]
        assert piece and piece == piece.strip()
        spans.append((c["start"], c["end"]))
    unsupported = [(u["start"], u["end"]) for u in meta["unsupported"]]
    ordered = sorted(spans + unsupported)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ordered)), "no overlap"
    supported = sum(e - s for s, e in spans)
    total = supported + sum(e - s for s, e in unsupported)
    assert meta["grounding"] == round(supported / total, 4)


@pytest.mark.slow
def test_answer_cites_the_record_it_used(run: RunAction, bot: dict[str, Any]) -> None:
    out = run("complete_conversation", {"conversationId": bot["conversation"], "text": QUESTION})
    assert "42" in out["text"]
    meta = out["meta"]
    check_citations(run, out["text"], meta, bot["dataset"])
    payload = [c for c in meta["citations"] if "42" in out["text"][c["start"] : c["end"]]]
    assert payload and payload[0]["recordId"] == bot["records"][0]
    assert payload[0]["quote"] == FACTS[0]
    assert meta["grounding"] > 0
    # Stored with the message: fetch and list return the same meta.
    ref = {"conversationId": bot["conversation"], "messageId": out["id"]}
    assert run("fetch_conversation_message", ref)["meta"] == meta
    listed = run("list_conversation_messages", {"conversationId": bot["conversation"]})["items"]
    assert listed[-1]["meta"] == meta
    assert meta["sources"][0] == bot["records"][0] and meta["model"] == "smollm2"


@pytest.mark.slow
def test_stream_result_carries_the_citations(engine: Engine, bot: dict[str, Any]) -> None:
    act = REGISTRY.get("complete_conversation")
    inp = act.parse_input({"conversationId": bot["conversation"], "text": QUESTION})
    result = list(engine.stream(act, inp, account_id=engine.ensure_account("alice")))[-1]
    assert result["type"] == "result"
    assert result["data"]["meta"]["citations"]
    stored = engine.execute(
        "fetch_conversation_message",
        {"conversationId": bot["conversation"], "messageId": result["data"]["id"]},
        account="alice",
    )
    assert stored["meta"] == result["data"]["meta"]


@pytest.mark.slow
def test_stateless_completion_cites_too(run: RunAction, bot: dict[str, Any]) -> None:
    out = run(
        "complete_messages",
        {
            "messages": [{"type": "user", "text": QUESTION}],
            "model": MODEL,
            "datasetId": bot["dataset"],
        },
    )
    check_citations(run, out["text"], out["meta"], bot["dataset"])
    assert out["meta"]["citations"]


@pytest.mark.slow
def test_without_a_dataset_there_is_nothing_to_cite(run: RunAction) -> None:
    conv = run("create_conversation", {"model": "smollm2/maxTokens=6/temperature=0"})["id"]
    out = run("complete_conversation", {"conversationId": conv, "text": "Say hi."})
    meta = out["meta"]
    assert (meta["sources"], meta["sourceRecords"], meta["model"]) == ([], [], "smollm2")
    assert not {"citations", "unsupported", "grounding"} & meta.keys()
    assert set(meta["usage"]) == {"inputTokensUsed", "outputTokensUsed"}  # the turn's tokens
    with pytest.raises(InvalidInput, match="no citations"):
        run("verify_message", {"conversationId": conv, "messageId": out["id"]})


@pytest.mark.slow
def test_verify_flips_when_a_cited_record_changes(
    run: RunAction, run_bob: RunAction, bot: dict[str, Any]
) -> None:
    out = run("complete_conversation", {"conversationId": bot["conversation"], "text": QUESTION})
    ref = {"conversationId": bot["conversation"], "messageId": out["id"]}
    cited = [c["recordId"] for c in out["meta"]["citations"]]
    assert bot["records"][0] in cited
    assert run("verify_message", ref) == {
        "ok": True,
        "citations": [{"recordId": r, "ok": True} for r in cited],
    }
    # Editing elsewhere in the record keeps the quote: still true.
    run(
        "update_dataset_record",
        {"datasetId": bot["dataset"], "recordId": bot["records"][0], "text": FACTS[0] + " New."},
    )
    assert run("verify_message", ref)["ok"] is True
    # Changing the quoted words breaks it.
    run(
        "update_dataset_record",
        {
            "datasetId": bot["dataset"],
            "recordId": bot["records"][0],
            "text": FACTS[0].replace("42", "45"),
        },
    )
    checked = run("verify_message", ref)
    assert checked["ok"] is False
    assert [c["ok"] for c in checked["citations"]] == [r != bot["records"][0] for r in cited]
    with pytest.raises(NotFound):
        run_bob("verify_message", ref)


def test_verify_checks_hand_written_citations_and_deleted_records(run: RunAction) -> None:
    """Meta is the caller's to edit, so verify re-reads whatever it says; no model needed."""
    ds = run("create_dataset", {})["id"]
    rec = run("create_dataset_record", {"datasetId": ds, "text": "Water boils at 100 degrees."})
    conv = run("create_conversation", {})["id"]
    cite = {"recordId": rec["id"], "datasetId": ds, "quote": "boils at 100 degrees", "start": 0}
    wrong_dataset = {**cite, "datasetId": "elsewhere"}
    msg = run(
        "create_conversation_message",
        {
            "conversationId": conv,
            "type": "bot",
            "text": "Water boils at 100 degrees.",
            "meta": {"citations": [cite, wrong_dataset]},
        },
    )["id"]
    ref = {"conversationId": conv, "messageId": msg}
    assert run("verify_message", ref) == {
        "ok": False,
        "citations": [{"recordId": rec["id"], "ok": True}, {"recordId": rec["id"], "ok": False}],
    }
    run("update_conversation_message", {**ref, "meta": {"citations": [cite]}})
    assert run("verify_message", ref)["ok"] is True
    run("delete_dataset_record", {"datasetId": ds, "recordId": rec["id"]})
    assert run("verify_message", ref)["ok"] is False
    run("update_conversation_message", {**ref, "meta": {"citations": [{"recordId": 7}]}})
    with pytest.raises(InvalidInput) as err:
        run("verify_message", ref)
    assert err.value.details[0].pointer == "/meta/citations/0"
