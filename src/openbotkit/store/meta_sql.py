"""Conditions on a JSON `meta` column, written once and compiled for each database.

SQLite reads JSON with `json_type` / `json_extract`; PostgreSQL with `jsonb` operators. Services
and retrieval build conditions from these constructs without knowing which database runs them;
the SQL that only one database has lives here, in each construct's compiler. The conditions are
typed: a number matches a number, a string a string, a boolean a boolean, on both databases.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Boolean, Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import literal
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

Path = tuple[str, ...]
Scalar = str | int | float | bool | None


class _AtPath(FunctionElement[Any]):
    # The path (and an equality's value kind) shape the SQL, so they are part of the cache key;
    # values travel as bound parameters.
    _traverse_internals = [
        *FunctionElement._traverse_internals,
        ("path", InternalTraversal.dp_plain_obj),
        ("kind", InternalTraversal.dp_plain_obj),
    ]
    inherit_cache = True
    kind = ""

    def __init__(self, column: Any, path: Path, *extra: Any) -> None:
        self.path = path
        super().__init__(column, *extra)

    def _args(self, compiler: SQLCompiler, **kw: Any) -> list[str]:
        return [compiler.process(c, **kw) for c in self.clauses]


def _sqlite_path(path: Path) -> str:
    quoted = ".".join('"' + part.replace('"', '\\"') + '"' for part in path)
    return "'$." + quoted.replace("'", "''") + "'"


def _pg_at(compiler: SQLCompiler, column: str, path: Path) -> str:
    array = "{" + ",".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in path)
    literal_path = (array + "}").replace("'", "''")
    if compiler.dialect.paramstyle in ("format", "pyformat"):
        # The driver reads `%` in the statement as the start of a parameter: a key with a
        # percent sign in it would be a driver error (a 500), not a path.
        literal_path = literal_path.replace("%", "%%")
    return f"(CAST({column} AS JSONB) #> '" + literal_path + "')"


class is_missing(_AtPath):
    """True when the path is absent (a JSON null counts as present)."""

    inherit_cache = True

    type = Boolean()


class is_number(_AtPath):
    """True when the value at the path is a JSON number."""

    inherit_cache = True

    type = Boolean()


class number_at(_AtPath):
    """The JSON number at the path as a float; NULL when it is absent or not a number."""

    inherit_cache = True

    type = Float()


class equals(_AtPath):
    """The value at the path is this JSON scalar (same type, numbers compared by value)."""

    inherit_cache = True

    type = Boolean()

    def __init__(self, column: Any, path: Path, value: Scalar) -> None:
        self.value = value
        self.kind = (
            "null" if value is None
            else str(value).lower() if isinstance(value, bool)
            else "number" if isinstance(value, (int, float))
            else "text"
        )  # fmt: skip
        # The value twice: as itself for SQLite's json_extract, as JSON text for PostgreSQL.
        super().__init__(column, path, literal(bindable(value)), literal(json.dumps(value)))


@compiles(is_missing, "sqlite")
def _missing_sqlite(el: is_missing, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_type({el._args(compiler, **kw)[0]}, {_sqlite_path(el.path)}) IS NULL"


@compiles(is_missing, "postgresql")
def _missing_pg(el: is_missing, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{_pg_at(compiler, el._args(compiler, **kw)[0], el.path)} IS NULL"


@compiles(is_number, "sqlite")
def _is_number_sqlite(el: is_number, compiler: SQLCompiler, **kw: Any) -> str:
    col = el._args(compiler, **kw)[0]
    return f"json_type({col}, {_sqlite_path(el.path)}) IN ('integer', 'real')"


@compiles(is_number, "postgresql")
def _is_number_pg(el: is_number, compiler: SQLCompiler, **kw: Any) -> str:
    return f"jsonb_typeof({_pg_at(compiler, el._args(compiler, **kw)[0], el.path)}) = 'number'"


@compiles(number_at, "sqlite")
def _number_sqlite(el: number_at, compiler: SQLCompiler, **kw: Any) -> str:
    col, path = el._args(compiler, **kw)[0], _sqlite_path(el.path)
    return (
        f"(CASE WHEN json_type({col}, {path}) IN ('integer', 'real') "
        f"THEN json_extract({col}, {path}) END)"
    )


@compiles(number_at, "postgresql")
def _number_pg(el: number_at, compiler: SQLCompiler, **kw: Any) -> str:
    at = _pg_at(compiler, el._args(compiler, **kw)[0], el.path)
    return (
        f"(CASE WHEN jsonb_typeof({at}) = 'number' "
        f"THEN CAST({at} #>> '{{}}' AS DOUBLE PRECISION) END)"
    )


@compiles(equals, "sqlite")
def _equals_sqlite(el: equals, compiler: SQLCompiler, **kw: Any) -> str:
    col, bound, _ = el._args(compiler, **kw)
    path = _sqlite_path(el.path)
    kind = f"json_type({col}, {path})"
    if el.kind in ("null", "true", "false"):
        return f"{kind} = '{el.kind}'"
    if el.kind == "number":
        return f"({kind} IN ('integer', 'real') AND json_extract({col}, {path}) = {bound})"
    return f"({kind} = 'text' AND json_extract({col}, {path}) = {bound})"


@compiles(equals, "postgresql")
def _equals_pg(el: equals, compiler: SQLCompiler, **kw: Any) -> str:
    col, _, bound = el._args(compiler, **kw)
    return f"{_pg_at(compiler, col, el.path)} = CAST({bound} AS JSONB)"


def bindable(value: Scalar) -> Scalar:
    """An integer past 64 bits as a float: drivers refuse to bind it, JSON numbers are floats."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1 << 63:
        return float(value)
    return value


def path_of(key: str) -> Path:
    """A meta key as a path: a dotted key names nested objects."""
    return tuple(key.split("."))
