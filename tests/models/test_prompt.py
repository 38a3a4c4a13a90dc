from __future__ import annotations

from openbotkit.models.prompt import Turn, build_messages, context_block
from openbotkit.models.providers import LLMProvider


def test_context_block_uses_the_datasets_instructions() -> None:
    assert context_block(["A fact."], "Known:", "Nothing found.") == "Known:\n- A fact."
    assert context_block([], "Known:", "Nothing found.") == "Nothing found."
    assert context_block([], None, None) is None


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
