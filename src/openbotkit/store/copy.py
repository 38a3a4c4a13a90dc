"""Copy every row of one database into another, empty one with the same schema.

Table by table in foreign-key order through SQLAlchemy Core, in batches, inside the caller's
one transaction on the target: a failure anywhere leaves the target as empty as it was.
Columns the database computes itself (generated columns) are left for it to compute; the
target's own triggers (SQLite's full-text index) fire as rows arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from sqlalchemy import Column, Connection, Integer, Table, func, insert, select, text

from openbotkit.errors import Conflict
from openbotkit.store.tables import Base

BATCH_ROWS = 1000
Rows = list[dict[str, object]]
# Writes one batch of a table's rows into the target, where a plain INSERT would not do.
Writer = Callable[[Connection, Rows], None]


def tables() -> list[Table]:
    """Every table of the schema, parents before children."""
    return list(Base.metadata.sorted_tables)


def _copied_columns(table: Table) -> list[Column[object]]:
    return [c for c in table.columns if c.computed is None]


def first_nonempty_table(conn: Connection) -> str | None:
    """The name of a table that already has rows, or None when every table is empty."""
    for table in tables():
        if conn.execute(select(1).select_from(table).limit(1)).first() is not None:
            return table.name
    return None


def require_empty(conn: Connection, where: str) -> None:
    found = first_nonempty_table(conn)
    if found is not None:
        raise Conflict(
            f"the target database {where} is not empty (table {found!r} has rows):"
            " copying fills only a fresh database; point --to at a new, empty one"
        )


def _batches(source: Connection, table: Table, size: int) -> Iterator[Rows]:
    columns = _copied_columns(table)
    query = select(*columns).order_by(*table.primary_key.columns)
    result = source.execution_options(yield_per=size).execute(query)
    for part in result.mappings().partitions(size):
        yield [dict(row) for row in part]


def copy_rows(
    source: Connection,
    target: Connection,
    *,
    batch: int = BATCH_ROWS,
    writers: Mapping[str, Writer] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Insert every source row into the target; `progress(table, rows_so_far)` after each batch.
    `writers` take over the tables whose stored form differs between the databases.
    Returns the rows copied per table."""
    counts: dict[str, int] = {}
    for table in tables():
        done = 0
        write = (writers or {}).get(table.name)
        for rows in _batches(source, table, batch):
            if write is not None:
                write(target, rows)
            else:
                target.execute(insert(table), rows)
            done += len(rows)
            if progress is not None:
                progress(table.name, done)
        counts[table.name] = done
    if target.dialect.name == "postgresql":
        _advance_sequences(target)
    return counts


def _advance_sequences(target: Connection) -> None:
    """Serial ids were copied as they were: move each sequence past the largest one."""
    for table in tables():
        for column in table.primary_key.columns:
            if isinstance(column.type, Integer) and column.autoincrement in (True, "auto"):
                top = target.execute(select(func.max(column))).scalar()
                if top is not None:
                    target.execute(
                        text("SELECT setval(pg_get_serial_sequence(:t, :c), :v)"),
                        {"t": table.name, "c": column.name, "v": int(top)},
                    )
