"""Search on PostgreSQL: pgvector for record vectors (HNSW, cosine), full-text for records.

SQLite keeps vectors as float32 bytes and indexes text with FTS5 (0002); on PostgreSQL:
- `record_vectors.vector` becomes pgvector's `vector` (any dimension: embedders differ). HNSW
  needs a fixed dimension, so the index is a partial expression index per dimension; this
  revision creates the bundled model's (384), the index module adds others on first use.
- `records.tsv`, a stored generated tsvector (English stemming and stop words) with a GIN index.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUNDLED_DIMENSIONS = 384


def hnsw_index_sql(dimensions: int) -> str:
    """The HNSW index for vectors of one dimension (as pgvector_index.hnsw_index_sql)."""
    d = int(dimensions)
    return (
        f"CREATE INDEX IF NOT EXISTS ix_record_vectors_hnsw_{d} ON record_vectors "
        f"USING hnsw ((vector::vector({d})) vector_cosine_ops) WHERE vector_dims(vector) = {d}"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    # Nothing is stored yet when this runs (it follows the initial schema), so no rows convert.
    op.execute("ALTER TABLE record_vectors ALTER COLUMN vector TYPE vector USING NULL")
    op.execute(hnsw_index_sql(BUNDLED_DIMENSIONS))
    op.execute(
        "ALTER TABLE records ADD COLUMN tsv tsvector "
        "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
    )
    op.execute("CREATE INDEX ix_records_tsv ON records USING gin (tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_records_tsv")
    op.execute("ALTER TABLE records DROP COLUMN IF EXISTS tsv")
    op.execute("DELETE FROM record_vectors")
    op.execute("ALTER TABLE record_vectors ALTER COLUMN vector TYPE bytea USING NULL")
