"""The hash of a direct upload, noted when its bytes are first read: recorded only while the
file's row is as it was when the bytes were read, so a newer upload never gets an old hash."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openbotkit.engine import Engine
from openbotkit.services import file_content
from openbotkit.services.context import AccountScope
from openbotkit.settings import Settings
from openbotkit.store.tables import File

SHA = "ab" * 32


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """Noting a hash needs no model: an engine without the bundled ones."""
    eng = Engine(settings)
    yield eng
    eng.close()


def alice(engine: Engine) -> AccountScope:
    return AccountScope(engine.runtime, engine.ensure_account("alice"))


def direct_upload_read(engine: Engine, scope: AccountScope) -> tuple[str, int]:
    """A file whose content came straight to the store: size known, no hash; (id, updated_at)."""
    file_id = engine.execute("create_file", {"name": "a.txt"}, account="alice")["id"]
    with scope.transaction() as ctx:
        row = ctx.session.get(File, file_id)
        assert row is not None
        row.size, row.sha256, row.updated_at = 5, None, 1_000
    return file_id, 1_000


def hash_of(scope: AccountScope, file_id: str) -> str | None:
    with scope.transaction(write=False) as ctx:
        row = ctx.session.get(File, file_id)
        assert row is not None
        return row.sha256


def test_the_hash_is_noted_on_the_row_as_read(engine: Engine) -> None:
    scope = alice(engine)
    file_id, seen = direct_upload_read(engine, scope)
    with scope.transaction() as ctx:
        assert file_content.note_sha256(ctx, file_id, SHA, 5, seen)
    assert hash_of(scope, file_id) == SHA
    with scope.transaction() as ctx:  # a hash once noted stays
        assert not file_content.note_sha256(ctx, file_id, "cd" * 32, 5, seen)
    assert hash_of(scope, file_id) == SHA


@pytest.mark.parametrize(
    ("size", "updated_at"), [(5, 1_001), (6, 1_000)], ids=["updated-since", "other-size"]
)
def test_a_row_changed_since_the_read_gets_no_hash(
    engine: Engine, size: int, updated_at: int
) -> None:
    scope = alice(engine)
    file_id, seen = direct_upload_read(engine, scope)
    with scope.transaction() as ctx:  # e.g. a new direct upload, completed by a download
        row = ctx.session.get(File, file_id)
        assert row is not None
        row.size, row.updated_at = size, updated_at
    with scope.transaction() as ctx:
        assert not file_content.note_sha256(ctx, file_id, SHA, 5, seen)
    assert hash_of(scope, file_id) is None


def test_another_accounts_file_gets_no_hash(engine: Engine) -> None:
    scope = alice(engine)
    file_id, seen = direct_upload_read(engine, scope)
    with AccountScope(engine.runtime, engine.ensure_account("bob")).transaction() as ctx:
        assert not file_content.note_sha256(ctx, file_id, SHA, 5, seen)
    assert hash_of(scope, file_id) is None
