"""Units of work: compiled reads return what the ORM returns, a Session opens only when asked,
and concurrent writers of one process all get through."""

from __future__ import annotations

import threading
from pathlib import Path

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

    def write() -> None:
        try:
            for i in range(15):
                engine.execute("create_bot", {"name": f"bot {i}"})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert len(engine.execute("list_bots", {"take": 100})["items"]) == 100
        assert len(engine.execute("list_bots", {"take": 100, "order": "asc"})["items"]) == 100
    finally:
        engine.close()


def test_dispose_closes_the_reader_connections(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with store.unit(write=False) as unit:
        assert unit.rows(BOT_ROW, id="nothing") == []
    store.dispose()
    # A store used after dispose opens new connections, as SQLAlchemy's engines do.
    with store.unit(write=False) as unit:
        assert unit.rows(BOT_ROW, id="nothing") == []
    store.dispose()
