"""`obk datasets reembed|import|eval`: the search index, bulk records, and search quality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from openbotkit.actions import REGISTRY
from openbotkit.cli.connector import Runner
from openbotkit.cli.jsonl import json_lines
from openbotkit.cli.state import state
from openbotkit.errors import InvalidInput, Problem
from openbotkit.retrieval.evaluation import read_qrels, read_queries
from openbotkit.services.evaluation import ALL_MODES, MAX_QUERIES

META_KEY_HELP = "Record meta key holding a BEIR document id."


@click.group()
def datasets() -> None:
    """Maintain datasets: re-embed, import records, evaluate search."""


@datasets.command("reembed")
def reembed_command() -> None:
    """Give every record a vector from the current embedder (after changing OBK_EMBEDDER)."""
    from openbotkit.retrieval.reembed import reembed

    runtime = state().engine.runtime
    done = reembed(
        runtime.store,
        runtime.embedder,
        runtime.index,
        lambda n: click.echo(f"\r{n} record(s) re-embedded", nl=False),
    )
    click.echo(f"\rdone: {done} record(s) re-embedded")


def _record_input(item: Any, line: int, path: Path, meta_key: str) -> dict[str, Any]:
    """A JSONL line as create_dataset_record input: a BEIR corpus line ({_id, title, text})
    becomes its title and text with the id in meta[meta_key]; any other object is taken as the
    action's own fields (text, source, meta)."""
    if not isinstance(item, dict):
        raise InvalidInput(
            f"{path}:{line}: expected a JSON object",
            details=[Problem(str(path), "jsonl", f"line {line}: not an object")],
        )
    if "_id" in item:
        text = f"{item.get('title') or ''} {item.get('text') or ''}".strip()
        return {"text": text, "meta": {meta_key: str(item["_id"])}}
    return {k: v for k, v in item.items() if k in ("text", "source", "meta")}


@datasets.command("import")
@click.argument("dataset")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--meta-key", default="docId", show_default=True, help=META_KEY_HELP)
@click.option("--base-url", help="A ChatBotKit-compatible server (or CHATBOTKIT_BASE_URL).")
def import_command(dataset: str, path: Path, meta_key: str, base_url: str | None) -> None:
    """Add one record per line of a JSONL file ({text, source, meta} or a BEIR corpus).

    Each line goes through create_dataset_record, so the records are embedded and indexed as
    any other; a bad line stops the import there, with the lines before it kept.
    """
    act = REGISTRY.get("create_dataset_record")
    runner = Runner(base_url)
    done = 0
    for n, item in json_lines(path):
        fields = _record_input(item, n, path, meta_key)
        runner.run(act, act.parse_input({"datasetId": dataset, **fields}))
        done += 1
        if done % 50 == 0:
            click.echo(f"\r{done} record(s) imported", nl=False, err=True)
    click.echo(f"\rdone: {done} record(s) imported into {dataset}", err=True)


def labelled_queries(queries_path: Path, qrels_path: Path, meta_key: str) -> list[dict[str, Any]]:
    """evaluate_dataset's `queries` from BEIR files: every query with a relevant judgement
    (grade > 0), its documents as records whose meta[meta_key] is the corpus id."""
    texts = read_queries(queries_path)
    out = []
    for query_id, judged in read_qrels(qrels_path).items():
        relevant = [doc for doc, grade in judged.items() if grade > 0]
        if not relevant:
            continue
        if query_id not in texts:
            raise InvalidInput(
                f"{qrels_path}: query {query_id!r} is not in {queries_path}",
                details=[Problem(str(qrels_path), "exists", f"unknown query {query_id}")],
            )
        out.append(
            {"query": texts[query_id], "relevant": [{"meta": {meta_key: d}} for d in relevant]}
        )
    return out


def merge(parts: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """One result from several requests' results: means weighted by their query counts."""
    if len(parts) == 1:
        return parts[0]
    total = sum(sizes)
    modes: dict[str, Any] = {}
    for mode in parts[0]["modes"]:
        figures = [p["modes"][mode] for p in parts]
        weighted = list(zip(figures, sizes, strict=True))
        modes[mode] = {
            metric: round(sum(f[metric] * n for f, n in weighted) / total, 6)
            for metric in ("ndcg", "recall", "mrr")
        }
        modes[mode]["queries"] = [q for f in figures for q in f["queries"]]
    return {**parts[0], "modes": modes}


@datasets.command("eval")
@click.argument("dataset")
@click.option(
    "--queries",
    "queries_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="BEIR queries.jsonl ({_id, text} per line).",
)
@click.option(
    "--qrels",
    "qrels_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="BEIR qrels .tsv (query-id, corpus-id, score).",
)
@click.option("-k", "--k", "k", default=10, show_default=True, help="Depth of each ranking.")
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(ALL_MODES),
    help="Search mode to measure (repeatable); default all three.",
)
@click.option("--meta-key", default="docId", show_default=True, help=META_KEY_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.option("--base-url", help="A ChatBotKit-compatible server (or CHATBOTKIT_BASE_URL).")
def eval_command(
    dataset: str,
    queries_path: Path,
    qrels_path: Path,
    k: int,
    modes: tuple[str, ...],
    meta_key: str,
    as_json: bool,
    base_url: str | None,
) -> None:
    """Measure a dataset's search on BEIR-style labelled queries (runs evaluate_dataset).

    Records are matched to corpus ids by meta[--meta-key] (as `obk datasets import` stores
    them). Prints nDCG, recall and MRR at k per mode; --json the full result with each query's
    ranks.
    """
    act = REGISTRY.get("evaluate_dataset")
    runner = Runner(base_url)
    queries = labelled_queries(queries_path, qrels_path, meta_key)
    if not queries:
        raise InvalidInput(
            f"{qrels_path} judges no query of {queries_path} relevant to anything",
            details=[Problem(str(qrels_path), "min_items", "no relevant judgement")],
        )
    parts, sizes = [], []
    for start in range(0, len(queries), MAX_QUERIES):
        batch = queries[start : start + MAX_QUERIES]
        data: dict[str, Any] = {"datasetId": dataset, "queries": batch, "k": k}
        if modes:
            data["modes"] = list(modes)
        parts.append(runner.run(act, act.parse_input(data)))
        sizes.append(len(batch))
    result = merge(parts, sizes)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(f"mode ({len(queries)} queries)", f"nDCG@{k}", f"recall@{k}", f"MRR@{k}")
    for mode, figures in result["modes"].items():
        table.add_row(
            mode, f"{figures['ndcg']:.3f}", f"{figures['recall']:.3f}", f"{figures['mrr']:.3f}"
        )
    Console(highlight=False).print(table)
