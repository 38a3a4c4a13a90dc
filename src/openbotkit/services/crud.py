"""Account-scoped row access shared by every resource: lookup by id or @alias, keyset pages,
meta filters, alias uniqueness. Resource services add their own rules on top."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from openbotkit.errors import Conflict, InvalidInput, NotFound, Problem
from openbotkit.ids import new_id, now_ms
from openbotkit.retrieval.filters import meta_condition
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Base

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
        what = _label(table)
        msg = f"{what} {ref!r} not found" + (f" (field {field})" if field else "")
        raise NotFound(msg, details=[Problem(f"/{field}", "exists", msg)] if field else ())
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
    ctx.session.flush()


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
    default_order: str = "desc",
) -> tuple[list[dict[str, Any]], str]:
    """One page of the caller's rows, ordered by (created_at, id), after the row `cursor` names.

    Scoping by account, the meta and blueprintId filters and the cursor rules live here once for
    every list. Returns the rows and the next cursor: the last row's id, or "" after the last page.
    The rows are plain dicts of their columns (what an output model needs), not ORM objects:
    building and tracking those was half the cost of a list request.
    """
    created: InstrumentedAttribute[int] = table.created_at  # type: ignore[attr-defined]
    ident: InstrumentedAttribute[str] = table.id  # type: ignore[attr-defined]
    scope = [table.account_id == ctx.account_id, *where]  # type: ignore[attr-defined]
    blueprint = getattr(request, "blueprint_id", None)
    if blueprint:
        scope.append(table.blueprint_id == blueprint)  # type: ignore[attr-defined]
    conds = list(scope)
    meta: Mapping[str, Any] | None = getattr(request, "meta", None)
    for key, value in (meta or {}).items():
        conds.append(meta_condition(table.meta, key, value))  # type: ignore[attr-defined]
    descending = (request.order or default_order) == "desc"
    if request.cursor:
        anchor = ctx.session.execute(
            select(created, ident).where(*scope, ident == request.cursor)
        ).first()
        if anchor is None:
            raise InvalidInput(
                f"cursor {request.cursor!r} is not an item of this list",
                details=[Problem("/cursor", "exists", "unknown cursor")],
            )
        a_created, a_id = anchor
        if descending:
            conds.append(or_(created < a_created, and_(created == a_created, ident < a_id)))
        else:
            conds.append(or_(created > a_created, and_(created == a_created, ident > a_id)))
    ordering = (created.desc(), ident.desc()) if descending else (created.asc(), ident.asc())
    columns = table.__table__.columns
    query = select(*columns).where(*conds).order_by(*ordering).limit(request.take + 1)
    result = ctx.session.connection().execute(query)
    keys = tuple(result.keys())
    rows = [dict(zip(keys, row, strict=True)) for row in result]
    more = len(rows) > request.take
    rows = rows[: request.take]
    return rows, (rows[-1]["id"] if more and rows else "")


def resolve_refs(ctx: Ctx, fields: dict[str, Any], refs: Mapping[str, type[Base]]) -> None:
    """Replace each given reference (id or @alias) with the id of the caller's row, or 404."""
    for key, table in refs.items():
        ref = fields.get(key)
        if ref:
            camel = key.split("_")[0] + "".join(p.title() for p in key.split("_")[1:])
            fields[key] = get_owned(ctx, table, ref, field=camel).id  # type: ignore[attr-defined]
        elif key in fields:
            fields[key] = None
