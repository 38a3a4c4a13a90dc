"""Meta filters as SQL conditions: equality on any table's `meta` (list filters), and record
filters (spec §4.1): `{key: scalar}` or one operator object among $eq $ne $gt $gte $lt $lte per
key, ANDed. A key may carry a `meta.` prefix."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_

from openbotkit.errors import InvalidInput, Problem
from openbotkit.store import meta_sql
from openbotkit.store.tables import Record

OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
ORDERING = ("$gt", "$gte", "$lt", "$lte")  # numbers only: a string "10" is not greater than 9
_SCALAR: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": "number"},
    {"type": "boolean"},
    {"type": "null"},
]
# A key names a meta value: not empty, and not the optional `meta.` prefix alone (written
# without lookahead, which JSON Schema's and Python's regular expressions do not share).
KEY_PATTERN = (
    r"^(?:[\s\S]{1,4}|[\s\S]{6,}|[^m][\s\S]{4}|m[^e][\s\S]{3}|me[^t][\s\S]{2}"
    r"|met[^a][\s\S]|meta[^.])$"
)


def record_filter_schema() -> dict[str, Any]:
    """The JSON Schema of a record filter: what `conditions` accepts, stated for clients (a
    test checks the two agree case by case)."""

    def operator(op: str) -> dict[str, Any]:
        values = [{"type": "number"}] if op in ORDERING else _SCALAR
        return {
            "type": "object",
            "properties": {op: {"anyOf": values}},
            "required": [op],
            "additionalProperties": False,
        }

    return {
        "type": "object",
        "propertyNames": {"pattern": KEY_PATTERN},
        "additionalProperties": {"anyOf": [*_SCALAR, *(operator(op) for op in OPERATORS)]},
    }


def meta_condition(column: Any, key: str, value: Any) -> ColumnElement[bool]:
    """Equality on one meta key; a dotted key is a nested path. Strings from a query string
    also match the same number or boolean, as a ChatBotKit server does. Typed on every
    database: the number 1 is not `true`, nor the text "x" a number."""
    path = meta_sql.path_of(key)
    if value is None or isinstance(value, (bool, int, float)):
        return meta_sql.equals(column, path, value)
    text = str(value)
    if text in ("true", "false"):
        return or_(
            meta_sql.equals(column, path, text == "true"), meta_sql.equals(column, path, text)
        )
    options: list[ColumnElement[bool]] = [meta_sql.equals(column, path, text)]
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if number == number and abs(number) != float("inf"):  # JSON has no NaN or infinity
            options.append(meta_sql.equals(column, path, number))
    return or_(*options)


def _bad(key: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"filter {key!r}: {message}", details=[Problem(f"/filter/{key}", "filter", message)]
    )


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def condition(key: str, spec: Any) -> ColumnElement[bool]:
    name = key[5:] if key.startswith("meta.") else key
    if not name:
        raise _bad(key, "empty key")
    if not isinstance(spec, dict):
        if not _scalar(spec):
            raise _bad(key, "a value must be a string, number, boolean or an operator object")
        return meta_condition(Record.meta, name, spec)
    if len(spec) != 1 or next(iter(spec)) not in OPERATORS:
        raise _bad(key, f"use exactly one of {', '.join(OPERATORS)}")
    op, value = next(iter(spec.items()))
    if op not in ORDERING and not _scalar(value):
        raise _bad(key, f"{op} compares a string, number, boolean or null")
    if op == "$eq":
        return meta_condition(Record.meta, name, value)
    if op == "$ne":
        # $ne also matches records that lack the key.
        return or_(
            meta_sql.is_missing(Record.meta, meta_sql.path_of(name)),
            ~meta_condition(Record.meta, name, value),
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(key, f"{op} compares numbers only")
    # Ordering operators apply to numbers only: a string "10" is not greater than 9.
    number: Any = meta_sql.number_at(Record.meta, meta_sql.path_of(name))
    value = meta_sql.bindable(value)
    compare: ColumnElement[bool] = {
        "$gt": number > value,
        "$gte": number >= value,
        "$lt": number < value,
        "$lte": number <= value,
    }[op]
    return compare


def conditions(filter_: dict[str, Any] | None) -> list[ColumnElement[bool]]:
    return [condition(k, v) for k, v in (filter_ or {}).items()]
