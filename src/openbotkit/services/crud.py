"""Account-scoped row access shared by every resource: lookup by id or @alias, keyset pages,
meta filters, alias uniqueness. Resource services add their own rules on top."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, and_, bindparam, or_, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm.exc import StaleDataError

from openbotkit.errors import Conflict, InvalidInput, NotFound, Problem
from openbotkit.ids import new_id, now_ms
from openbotkit.retrieval.filters import meta_condition
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Base
from openbotkit.store.unit import Query

T = TypeVar("T", bound=Base)


def _label(table: type[Base]) -> str:
    return str(table.__tablename__).rstrip("s").replace("_", " ")


def get_owned(ctx: Ctx, table: type[T], ref: str, *, field: str | None = None) -> T:
    """The caller's row with id `ref` (or alias `@ref`); another account's row is not found."""
    col_id: Any = table.id  # type: ignore[attr-defined]
    col_account: Any = table.account_id  # type: ignore[attr-defined]
    if ref.startswith("@") and hasattr(table, "alias"):
        cond = table.alias == ref[1:]  # type: ignore[attr-defined]
    else:
        cond = col_id == ref
    row = ctx.session.scalar(select(table).where(col_account == ctx.account_id, cond))
    if row is None:
        raise _not_found(table, ref, field)
    return row


def check_alias_free(
    ctx: Ctx, table: type[Base], alias: str | None, *, own_id: str | None = None
) -> None:
    """Aliases are unique per account and resource type (409 conflict)."""
    if not alias:
        return
    query = select(table.id).where(  # type: ignore[attr-defined]
        table.account_id == ctx.account_id,  # type: ignore[attr-defined]
        table.alias == alias,  # type: ignore[attr-defined]
    )
    existing = ctx.session.scalar(query)
    if existing is not None and existing != own_id:
        raise Conflict(
            f"alias {alias!r} is already used by {_label(table)} {existing}",
            details=[Problem("/alias", "unique", "alias already in use")],
        )


def insert(ctx: Ctx, table: type[T], fields: Mapping[str, Any]) -> T:
    now = now_ms()
    row = table(id=new_id(), account_id=ctx.account_id, created_at=now, updated_at=now, **fields)
    ctx.session.add(row)
    ctx.session.flush()
    return row


def update(ctx: Ctx, row: Base, fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        setattr(row, key, value)
    row.updated_at = now_ms()  # type: ignore[attr-defined]
    named = f"{type(row).__name__.lower()} {getattr(row, 'id', '')}"  # read before a failed flush
    try:
        ctx.session.flush()
    except StaleDataError:
        # Deleted by another transaction since this one read it (PostgreSQL runs writers side
        # by side): the row is gone, as if that delete had come first.
        msg = f"{named} was deleted by another request while this one changed it"
        raise NotFound(msg, details=[Problem("", "exists", "deleted meanwhile")]) from None


class PageRequest(Protocol):
    """What a list input carries (actions' ListInput); `meta` and `blueprint_id` if it has them."""

    @property
    def cursor(self) -> str | None: ...
    @property
    def order(self) -> str | None: ...
    @property
    def take(self) -> int: ...


def page(
    ctx: Ctx,
    table: type[T],
    request: PageRequest,
    *,
    where: Sequence[ColumnElement[bool]] = (),
    equal: Mapping[str, Any] | None = None,
    default_order: str = "desc",
) -> tuple[list[dict[str, Any]], str]:
    """One page of the caller's rows, ordered by (created_at, id), after the row `cursor` names.

    Scoping by account, the meta and blueprintId filters and the cursor rules live here once for
    every list. Returns the rows and the next cursor: the last row's id, or "" after the last page.
    The rows are plain dicts of their columns (what an output model needs), not ORM objects:
    building and tracking those was half the cost of a list request. `equal` ({column: value})
    narrows the list to a parent (a dataset's records); with no `where` and no meta filter the
    page runs as a statement compiled once (store/unit.py), the rest through SQLAlchemy.
    """
    meta: Mapping[str, Any] | None = getattr(request, "meta", None)
    blueprint = getattr(request, "blueprint_id", None)
    descending = (request.order or default_order) == "desc"
    if not where and not meta:
        return _page_compiled(ctx, table, request, equal or {}, blueprint, descending)
    created: InstrumentedAttribute[int] = table.created_at  # type: ignore[attr-defined]
    ident: InstrumentedAttribute[str] = table.id  # type: ignore[attr-defined]
    scope = [table.account_id == ctx.account_id, *where]  # type: ignore[attr-defined]
    for column, value in (equal or {}).items():
        scope.append(getattr(table, column) == value)
    if blueprint:
        scope.append(table.blueprint_id == blueprint)  # type: ignore[attr-defined]
    conds = list(scope)
    for key, value in (meta or {}).items():
        conds.append(meta_condition(table.meta, key, value))  # type: ignore[attr-defined]
    if request.cursor:
        anchor = ctx.session.execute(
            select(created, ident).where(*scope, ident == request.cursor)
        ).first()
        if anchor is None:
            raise _unknown_cursor(request.cursor)
        conds.append(_after(created, ident, *anchor, descending))
    columns = table.__table__.columns
    query = (
        select(*columns)
        .where(*conds)
        .order_by(*_ordering(created, ident, descending))
        .limit(request.take + 1)
    )
    result = ctx.session.connection().execute(query)
    keys = tuple(result.keys())
    rows = [dict(zip(keys, row, strict=True)) for row in result]
    more = len(rows) > request.take
    rows = rows[: request.take]
    return rows, (rows[-1]["id"] if more and rows else "")


def _after(created: Any, ident: Any, a_created: Any, a_id: Any, descending: bool) -> Any:
    """Rows past the anchor (a_created, a_id) in the list's (created_at, id) order."""
    if descending:
        return or_(created < a_created, and_(created == a_created, ident < a_id))
    return or_(created > a_created, and_(created == a_created, ident > a_id))


def _ordering(created: Any, ident: Any, descending: bool) -> tuple[Any, Any]:
    return (created.desc(), ident.desc()) if descending else (created.asc(), ident.asc())


def _unknown_cursor(cursor: str) -> InvalidInput:
    return InvalidInput(
        f"cursor {cursor!r} is not an item of this list",
        details=[Problem("/cursor", "exists", "unknown cursor")],
    )


_QUERIES: dict[tuple[Any, ...], Query] = {}


def _query(key: tuple[Any, ...], build: Callable[[], Select[Any]]) -> Query:
    """The compiled-once statement for `key` (a table and the shape of the filter)."""
    found = _QUERIES.get(key)
    if found is None:
        found = _QUERIES.setdefault(key, Query(build))
    return found


def _scope(table: type[Base], equal: Sequence[str], blueprint: bool) -> list[Any]:
    conds: list[Any] = [table.account_id == bindparam("account")]  # type: ignore[attr-defined]
    conds += [getattr(table, column) == bindparam("eq_" + column) for column in equal]
    if blueprint:
        conds.append(table.blueprint_id == bindparam("blueprint"))  # type: ignore[attr-defined]
    return conds


def _page_compiled(
    ctx: Ctx,
    table: type[T],
    request: PageRequest,
    equal: Mapping[str, Any],
    blueprint: str | None,
    descending: bool,
) -> tuple[list[dict[str, Any]], str]:
    """`page` for the common shape: account, equality filters, blueprint, cursor, order."""
    name: str = table.__tablename__
    shape = (tuple(sorted(equal)), bool(blueprint))
    values: dict[str, Any] = {"account": ctx.account_id, "take": request.take + 1}
    values.update({"eq_" + column: value for column, value in equal.items()})
    if blueprint:
        values["blueprint"] = blueprint
    created: Any = table.created_at  # type: ignore[attr-defined]
    ident: Any = table.id  # type: ignore[attr-defined]
    if request.cursor:
        anchor_query = _query(
            ("anchor", name, *shape),
            lambda: select(created, ident).where(
                *_scope(table, shape[0], shape[1]), ident == bindparam("cursor")
            ),
        )
        anchors = ctx.unit.rows(anchor_query, cursor=request.cursor, **values)
        if not anchors:
            raise _unknown_cursor(request.cursor)
        values["a_created"] = anchors[0]["created_at"]
        values["a_id"] = anchors[0]["id"]

    def build() -> Select[Any]:
        conds = _scope(table, shape[0], shape[1])
        if request.cursor:
            conds.append(
                _after(created, ident, bindparam("a_created"), bindparam("a_id"), descending)
            )
        columns = table.__table__.columns
        ordering = _ordering(created, ident, descending)
        return select(*columns).where(*conds).order_by(*ordering).limit(bindparam("take"))

    query = _query(("page", name, *shape, bool(request.cursor), descending), build)
    rows = ctx.unit.rows(query, **values)
    more = len(rows) > request.take
    rows = rows[: request.take]
    return rows, (rows[-1]["id"] if more and rows else "")


def read_owned(
    ctx: Ctx, table: type[Base], ref: str, *, field: str | None = None, **equal: Any
) -> dict[str, Any]:
    """The caller's row with id `ref` (or alias `@ref`) as a dict of its columns, for an output
    model: what `get_owned` finds, without an ORM object. `equal` narrows it to a parent."""
    by_alias = ref.startswith("@") and hasattr(table, "alias")
    name: str = table.__tablename__
    names = tuple(sorted(equal))

    def build() -> Select[Any]:
        column: Any = table.alias if by_alias else table.id  # type: ignore[attr-defined]
        conds = [*_scope(table, names, False), column == bindparam("ref")]
        return select(*table.__table__.columns).where(*conds)

    query = _query(("row", name, names, by_alias), build)
    values = {"eq_" + column: value for column, value in equal.items()}
    rows = ctx.unit.rows(query, account=ctx.account_id, ref=ref[1:] if by_alias else ref, **values)
    if not rows:
        raise _not_found(table, ref, field)
    return rows[0]


def _not_found(table: type[Base], ref: str, field: str | None) -> NotFound:
    what = _label(table)
    msg = f"{what} {ref!r} not found" + (f" (field {field})" if field else "")
    return NotFound(msg, details=[Problem(f"/{field}", "exists", msg)] if field else ())


def resolve_refs(ctx: Ctx, fields: dict[str, Any], refs: Mapping[str, type[Base]]) -> None:
    """Replace each given reference (id or @alias) with the id of the caller's row, or 404."""
    for key, table in refs.items():
        ref = fields.get(key)
        if ref:
            camel = key.split("_")[0] + "".join(p.title() for p in key.split("_")[1:])
            fields[key] = get_owned(ctx, table, ref, field=camel).id  # type: ignore[attr-defined]
        elif key in fields:
            fields[key] = None
