from __future__ import annotations

from openbotkit.ingestion.chunking import chunk_sections
from openbotkit.ingestion.parsers import Section
from openbotkit.retrieval.embedders import Embedder


def test_chunks_respect_the_token_limit_and_keep_meta(local_embedder: Embedder) -> None:
    paragraphs = [f"Paragraph {i} talks about robot number {i} and its payload." for i in range(60)]
    section = Section("\n\n".join(paragraphs), {"page": 3})
    chunks = chunk_sections([section], local_embedder, max_tokens=50)
    assert len(chunks) > 5
    assert all(local_embedder.count_tokens(c.text) <= 50 for c in chunks)
    assert all(c.meta["page"] == 3 for c in chunks)
    assert [c.meta["chunk"] for c in chunks] == list(range(len(chunks)))
    joined = " ".join(c.text for c in chunks)
    assert all(p in joined for p in paragraphs)  # nothing lost


def test_neighbouring_chunks_overlap(local_embedder: Embedder) -> None:
    paragraphs = [f"Fact {i}: short." for i in range(40)]
    chunks = chunk_sections([Section("\n\n".join(paragraphs))], local_embedder, max_tokens=60)
    assert chunks[1].text.split("\n\n")[0] == chunks[0].text.split("\n\n")[-1]


def test_dataset_separators_are_used(local_embedder: Embedder) -> None:
    text = " ### ".join(f"part {i} " + "word " * 20 for i in range(6))
    chunks = chunk_sections([Section(text)], local_embedder, max_tokens=30, separators="###")
    assert all(c.text.strip().startswith("part") for c in chunks)


def test_one_huge_word_run_is_split_by_tokens(local_embedder: Embedder) -> None:
    chunks = chunk_sections([Section("token " * 1000)], local_embedder, max_tokens=100)
    assert len(chunks) >= 10
    assert all(local_embedder.count_tokens(c.text) <= 100 for c in chunks)
