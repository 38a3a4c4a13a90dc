"""Full-text index of records (SQLite FTS5), kept in step with `records` by triggers.

The index is keyed by `records.key` (an INTEGER PRIMARY KEY, stable under VACUUM). Triggers
fire in the writing transaction, whichever process writes, and on cascaded deletes too,
so the lexical index can never disagree with the rows. PostgreSQL has its own (0003).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Porter stemming over unicode61 words with diacritics folded: what English BM25 expects.
STATEMENTS = [
    """CREATE VIRTUAL TABLE records_fts USING fts5(
        text, content='records', content_rowid='key',
        tokenize='porter unicode61 remove_diacritics 2')""",
    # Term statistics per dataset are read from here (see retrieval/index.py, lexical).
    "CREATE VIRTUAL TABLE records_fts_instance USING fts5vocab(records_fts, 'instance')",
    """CREATE TRIGGER records_fts_insert AFTER INSERT ON records BEGIN
        INSERT INTO records_fts(rowid, text) VALUES (new.key, new.text);
    END""",
    """CREATE TRIGGER records_fts_delete AFTER DELETE ON records BEGIN
        INSERT INTO records_fts(records_fts, rowid, text) VALUES ('delete', old.key, old.text);
    END""",
    """CREATE TRIGGER records_fts_update AFTER UPDATE OF text ON records BEGIN
        INSERT INTO records_fts(records_fts, rowid, text) VALUES ('delete', old.key, old.text);
        INSERT INTO records_fts(rowid, text) VALUES (new.key, new.text);
    END""",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in ("records_fts_update", "records_fts_delete", "records_fts_insert"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS records_fts_instance")
    op.execute("DROP TABLE IF EXISTS records_fts")
