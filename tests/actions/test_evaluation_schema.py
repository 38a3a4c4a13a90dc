"""The published input schema of `evaluate_dataset` is its validation: every input the schema
accepts passes the action's and the filter's checks, and every input they refuse the schema
refuses too (only whether a labelled record exists is left to the data)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema.validators import validator_for

from openbotkit.actions import REGISTRY
from openbotkit.errors import InvalidInput
from openbotkit.retrieval import filters
from openbotkit.services.evaluation import MAX_QUERIES

ACTION = REGISTRY.get("evaluate_dataset")
SCHEMA = ACTION.input_schema()
VALIDATOR = validator_for(SCHEMA)(SCHEMA)


def _by_meta(meta: Any) -> dict[str, Any]:
    return {"datasetId": "d", "queries": [{"query": "q", "relevant": [{"meta": meta}]}]}


def _validation_accepts(data: dict[str, Any]) -> bool:
    """What the server does before it looks at stored records: the action's input model, then
    the filter's own reading of each meta condition."""
    try:
        inp = ACTION.parse_input(data)
        for query in inp.queries:  # type: ignore[attr-defined]
            for item in query.relevant:
                if not isinstance(item, str):
                    filters.conditions(item.meta)
    except InvalidInput:
        return False
    return True


CASES = [
    {"a": 1},
    {"a": "x"},
    {"a": None},
    {"a": True},
    {"a": 1.5},
    {"meta.a": 1},
    {"a.b": "x"},
    {"metax": 1},
    {"meta": 1},
    {"m": 1},
    {"a": {"$ne": None}},
    {"a": {"$lte": 3}},
    {"meta.x": {"$gt": 2.5}},
    {"a": {"$eq": "x"}, "b": {"$lt": -1}},
    {},
    {"meta.": 1},
    {"": 1},
    {"a": [1]},
    {"a": {}},
    {"a": {"$gt": "x"}},
    {"a": {"$gt": True}},
    {"a": {"$gt": None}},
    {"a": {"$eq": [1]}},
    {"a": {"$ne": {"b": 1}}},
    {"a": {"$eq": 1, "$ne": 2}},
    {"a": {"$in": [1]}},
    {"a": {"x": 1}},
    [],
    "a",
]


@pytest.mark.parametrize("meta", CASES, ids=repr)
def test_a_meta_filter_is_accepted_by_the_schema_exactly_when_validation_accepts_it(
    meta: Any,
) -> None:
    data = _by_meta(meta)
    assert VALIDATOR.is_valid(data) is _validation_accepts(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.dictionaries(st.sampled_from([*filters.OPERATORS, "x", "$in"]), inner, max_size=2)
    ),
    max_leaves=4,
)
KEYS = st.sampled_from(["", "a", "meta.", "meta.a", "meta", "a.b"]) | st.text(max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=3))
def test_random_meta_filters_agree(meta: dict[str, Any]) -> None:
    data = _by_meta(meta)
    assert VALIDATOR.is_valid(data) is _validation_accepts(data)


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        ({"queries": [{"query": "q", "relevant": ["r"]}] * MAX_QUERIES}, True),
        ({"queries": [{"query": "q", "relevant": ["r"]}] * (MAX_QUERIES + 1)}, False),
        ({"queries": [{"query": "q", "relevant": [""]}]}, False),
        ({"queries": [{"query": " ", "relevant": ["r"]}]}, False),
        ({"k": 101}, False),
        ({"modes": []}, False),
    ],
)
def test_the_other_rules_are_in_the_schema_too(change: dict[str, Any], valid: bool) -> None:
    data = {**_by_meta({"a": 1}), **change}
    assert VALIDATOR.is_valid(data) is valid
    assert _validation_accepts(data) is valid
