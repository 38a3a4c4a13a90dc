"""Meta filters as SQL conditions: equality on any table's `meta` (list filters), and record
filters (spec §4.1): `{key: scalar}` or one operator object among $eq $ne $gt $gte $lt $lte per
key, ANDed. A key may carry a `meta.` prefix."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_

from openbotkit.errors import InvalidInput, Problem
from openbotkit.store.tables import Record

OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


def meta_condition(column: Any, key: str, value: Any) -> ColumnElement[bool]:
    """Equality on one meta key; a dotted key is a nested path. Strings from a query string
    also match the same number or boolean, as a ChatBotKit server does."""
    path = tuple(key.split("."))
    expr = column[path] if len(path) > 1 else column[key]
    if isinstance(value, bool):
        return expr.as_boolean() == value  # type: ignore[no-any-return]
    if isinstance(value, (int, float)):
        return expr.as_float() == value  # type: ignore[no-any-return]
    if value is None:
        return expr.is_(None)  # type: ignore[no-any-return]
    text = str(value)
    if text in ("true", "false"):
        return expr.as_boolean() == (text == "true")  # type: ignore[no-any-return]
    options = [expr.as_string() == text]
    try:
        options.append(expr.as_float() == float(text))
    except ValueError:
        pass
    return or_(*options)


def _bad(key: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"filter {key!r}: {message}", details=[Problem(f"/filter/{key}", "filter", message)]
    )


def _numeric(expr: Any) -> ColumnElement[bool]:
    # Ordering operators apply to numbers only: a string "10" is not greater than 9.
    return func.json_type(Record.meta, expr).in_(("integer", "real"))


def _json_path(name: str) -> str:
    return "$." + ".".join('"' + part.replace('"', '\\"') + '"' for part in name.split("."))


def condition(key: str, spec: Any) -> ColumnElement[bool]:
    name = key[5:] if key.startswith("meta.") else key
    if not name:
        raise _bad(key, "empty key")
    if not isinstance(spec, dict):
        if spec is not None and not isinstance(spec, (str, int, float, bool)):
            raise _bad(key, "a value must be a string, number, boolean or an operator object")
        return meta_condition(Record.meta, name, spec)
    if len(spec) != 1 or next(iter(spec)) not in OPERATORS:
        raise _bad(key, f"use exactly one of {', '.join(OPERATORS)}")
    op, value = next(iter(spec.items()))
    if op == "$eq":
        return meta_condition(Record.meta, name, value)
    if op == "$ne":
        # $ne also matches records that lack the key.
        path = _json_path(name)
        return or_(
            func.json_type(Record.meta, path).is_(None), ~meta_condition(Record.meta, name, value)
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(key, f"{op} compares numbers only")
    path = _json_path(name)
    number = func.json_extract(Record.meta, path)
    compare = {
        "$gt": number > value,
        "$gte": number >= value,
        "$lt": number < value,
        "$lte": number <= value,
    }[op]
    return and_(_numeric(path), compare)


def conditions(filter_: dict[str, Any] | None) -> list[ColumnElement[bool]]:
    return [condition(k, v) for k, v in (filter_ or {}).items()]
