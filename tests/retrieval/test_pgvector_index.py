"""PostgreSQL's search index: the graph walk's settings on pooled connections."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from openbotkit.retrieval.pgvector_index import PgVectorIndex
from openbotkit.store import Store
from tests.pg import PostgresServer


def _ef(session: Any) -> str:
    return str(session.execute(text("SHOW hnsw.ef_search")).scalar())


def test_a_read_connection_keeps_the_walk_setting_and_is_not_told_twice(
    postgres_server: PostgresServer,
) -> None:
    store = Store(postgres_server.url())
    store.migrate()
    index = PgVectorIndex()
    sent: list[str] = []
    event.listen(store.read_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    with store.session(write=False) as session:
        index._walk_until(session, 123)
        index._walk_until(session, 123)  # already so on this connection: no round trip
        assert _ef(session) == "123"
        index._walk_until(session, 150)
        assert _ef(session) == "150"
    assert sum("set_config" in s for s in sent) == 2
    store.dispose()


def test_inside_a_transaction_the_setting_is_always_sent(postgres_server: PostgresServer) -> None:
    """A rollback undoes what a transaction set, so nothing set there is taken as kept."""
    store = Store(postgres_server.url())
    store.migrate()
    index = PgVectorIndex()

    class Abort(Exception):
        pass

    with pytest.raises(Abort), store.session() as session:
        index._walk_until(session, 77)
        assert _ef(session) == "77"
        connection = session.connection().connection.dbapi_connection
        raise Abort
    with store.write_engine.connect() as conn:
        assert conn.connection.dbapi_connection is connection  # the pool's only connection
        assert conn.execute(text("SHOW hnsw.ef_search")).scalar() != "77"
    with store.session() as session:
        index._walk_until(session, 77)
        assert _ef(session) == "77"
    store.dispose()
