from __future__ import annotations

from openbotkit.models.prompt import (
    DEFAULT_MATCH_INSTRUCTION,
    DEFAULT_MISMATCH_INSTRUCTION,
    REFUSAL,
    Turn,
    build_messages,
    context_block,
)
from openbotkit.models.providers import LLMProvider


def test_context_block_uses_the_datasets_instructions() -> None:
    assert (
        context_block(["A fact.", " Another. "], "Known:", "None.")
        == "Known:\n1. A fact.\n2. Another."
    )
    assert context_block([], "Known:", "Nothing found.") == "Nothing found."


def test_by_default_facts_come_with_the_rule_to_refuse_and_no_facts_mean_refusing() -> None:
    block = context_block(["A fact."], None, None)
    assert block == f"{DEFAULT_MATCH_INSTRUCTION}\n1. A fact."
    assert f"reply exactly: {REFUSAL}" in block
    assert context_block([], None, None) == DEFAULT_MISMATCH_INSTRUCTION


def test_history_is_cut_from_the_oldest_to_fit_the_window(local_llm: LLMProvider) -> None:
    long = "word " * 300
    history = [Turn("user", f"{i} {long}") for i in range(20)] + [Turn("user", "latest question")]
    messages = build_messages(
        local_llm, backstory="Be brief.", context="Facts: x", history=history, max_new_tokens=200
    )
    assert messages[0].role == "system" and messages[0].content == "Be brief.\n\nFacts: x"
    assert messages[-1].content == "latest question"
    used = sum(local_llm.count_tokens(m.content) + 4 for m in messages)
    assert used + 200 <= local_llm.context_window
    assert 1 < len(messages) < len(history) + 1
