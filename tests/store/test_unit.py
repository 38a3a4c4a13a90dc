"""Units of work: compiled reads return what the ORM returns, a Session opens only when asked,
and concurrent writers of one process all get through."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select

from openbotkit.engine import Engine
from openbotkit.services import crud
from openbotkit.services.context import Ctx
from openbotkit.settings import Settings
from openbotkit.store import Store
from openbotkit.store.tables import Bot
from openbotkit.store.unit import Query

BOT_ROW = Query(lambda: select(*Bot.__table__.columns).where(Bot.id == bindparam("id")))


def test_compiled_reads_return_what_the_orm_returns(engine: Engine) -> None:
    """JSON, booleans, big integers and text come back with the ORM's values and types."""
    created = engine.execute(
        "create_bot",
        {
            "name": "Ünïcode \u2603",
            "meta": {"nested": {"list": [1, 2.5, None, True]}, "big": 2**62},
            "privacy": True,
            "moderation": False,
        },
    )
    with engine.store.unit(write=False) as unit:
        (row,) = unit.rows(BOT_ROW, id=created["id"])
    with engine.store.session(write=False) as session:
        orm = session.get(Bot, created["id"])
        assert orm is not None
        expected = {col.key: getattr(orm, col.key) for col in Bot.__table__.columns}
    assert row == expected
    assert row["privacy"] is True and row["moderation"] is False
    assert row["meta"] == {"nested": {"list": [1, 2.5, None, True]}, "big": 2**62}


def test_a_read_unit_opens_a_session_only_when_asked(engine: Engine) -> None:
    bot = engine.execute("create_bot", {"name": "one"})["id"]
    account = engine.local_account_id()
    with engine.store.unit(write=False) as unit:
        ctx = Ctx(engine.runtime, unit, account)
        assert crud.read_owned(ctx, Bot, bot)["name"] == "one"
        assert not unit.session_open
        # A service that needs ORM objects gets them, reading the same data.
        assert crud.get_owned(ctx, Bot, bot).name == "one"
        assert crud.read_owned(ctx, Bot, bot)["name"] == "one"
        assert unit.session_open


def test_pages_and_fetches_by_alias_and_cursor_match_across_paths(engine: Engine) -> None:
    """The compiled page and the SQLAlchemy page (taken with a meta filter) agree."""
    for i in range(7):
        engine.execute("create_bot", {"name": f"b{i}", "alias": f"b{i}", "meta": {"k": "v"}})
    compiled, filtered = [], []
    for out, extra in ((compiled, {}), (filtered, {"meta": {"k": "v"}})):
        cursor = ""
        while True:
            page = engine.execute("list_bots", {"take": 3, "cursor": cursor, **extra})
            out += [item["id"] for item in page["items"]]
            cursor = page["cursor"]
            if not cursor:
                break
    assert compiled == filtered and len(compiled) == 7
    fetched = engine.execute("fetch_bot", {"botId": "@b3"})
    assert fetched["name"] == "b3" and fetched["meta"] == {"k": "v"}


def test_concurrent_writers_of_one_process_all_commit(tmp_path: Path) -> None:
    """Threads writing one SQLite file at once queue in the process instead of failing."""
    engine = Engine(Settings(home=tmp_path))
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for i in range(15):
                engine.execute("create_bot", {"name": f"bot {thread}-{i}"})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        written = {f"bot {t}-{i}" for t in range(8) for i in range(15)}
        newest_first = all_bots(engine, "desc")
        oldest_first = all_bots(engine, "asc")
        # Every one of the 120 writes, once, read back in pages (a page holds at most 100), in
        # either order.
        for listed in (newest_first, oldest_first):
            assert len(listed) == 120 and {b["name"] for b in listed} == written
            assert len({b["id"] for b in listed}) == 120
        times = [b["createdAt"] for b in oldest_first]
        assert times == sorted(times)
        assert [b["createdAt"] for b in newest_first] == sorted(times, reverse=True)
    finally:
        engine.close()


def all_bots(engine: Engine, order: str) -> list[dict[str, Any]]:
    """Every bot, page after page."""
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = engine.execute("list_bots", {"take": 100, "order": order, "cursor": cursor})
        items += page["items"]
        if not page["items"] or not page.get("cursor"):
            return items
        cursor = page["cursor"]


def test_dispose_closes_the_reader_connections(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with store.unit(write=False) as unit:
        assert unit.rows(BOT_ROW, id="nothing") == []
    store.dispose()
    # A store used after dispose opens new connections, as SQLAlchemy's engines do.
    with store.unit(write=False) as unit:
        assert unit.rows(BOT_ROW, id="nothing") == []
    store.dispose()
