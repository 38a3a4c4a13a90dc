"""Lexical search on PostgreSQL: per-dataset postings and BM25 statistics kept by triggers.

BM25 with per-dataset term statistics needs, at query time, each query word's document
frequency in the dataset, the dataset's record count and total length, and for each record
holding a query word its term frequency and length. Reading those from the tsvectors meant
visiting every matching record (0.85 s at 50k records). Here they live in three tables that
triggers on `records` keep in the writing transaction (cascaded deletes included):

- `lexical_postings` (dataset, lexeme, record key, tf, length): the dataset's inverted index,
  read by an index-only scan of its primary key (which includes tf and length). A record's
  length is its count of distinct lexemes (`length(tsv)`): on the SciFact subset it ranks
  better than the word count (lexical nDCG@10 0.852 against 0.845, hybrid 0.898 against 0.889).
- `lexical_terms` (dataset, lexeme, slot, df) and `lexical_sizes` (dataset, slot, records,
  their total length as `words`): counters, summed over slots at query time.

Concurrent writers: a counter row is only ever changed by the transaction holding the advisory
lock (hashtext(dataset), slot); a writer takes the first free slot with a try-lock, which never
waits. So two workers writing one dataset update disjoint rows: no waits, no lost updates and no
deadlocks, whatever order their statements touch the words in. Deltas are summed, so a slot's
count may go negative; the sum over slots is exact.

Deleting a dataset (or its account) removes its rows at once (the records' triggers skip a
dataset that is gone). The GIN index on `records.tsv` has no reader left and is dropped.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The counters' update for the records a statement changed, given `changed` as a SELECT of
# (dataset_id, tsv, sign); datasets deleted in this transaction are skipped.
_COUNT = """
    WITH changed AS ({changed}),
    slots AS MATERIALIZED (
        SELECT c.dataset_id, obk_lexical_slot(c.dataset_id) AS slot
        FROM (SELECT DISTINCT dataset_id FROM changed) AS c
        WHERE EXISTS (SELECT 1 FROM datasets AS d WHERE d.id = c.dataset_id)
    ),
    sizes AS (
        INSERT INTO lexical_sizes AS s (dataset_id, slot, docs, words)
        SELECT c.dataset_id, sl.slot, sum(c.sign), sum(c.sign * length(c.tsv))
        FROM changed AS c JOIN slots AS sl ON sl.dataset_id = c.dataset_id
        GROUP BY c.dataset_id, sl.slot
        ON CONFLICT (dataset_id, slot) DO UPDATE
        SET docs = s.docs + excluded.docs, words = s.words + excluded.words
    )
    INSERT INTO lexical_terms AS t (dataset_id, lexeme, slot, df)
    SELECT c.dataset_id, l.lexeme, sl.slot, sum(c.sign)
    FROM changed AS c JOIN slots AS sl ON sl.dataset_id = c.dataset_id,
        unnest(tsvector_to_array(c.tsv)) AS l(lexeme)
    GROUP BY c.dataset_id, l.lexeme, sl.slot
    HAVING sum(c.sign) <> 0
    ON CONFLICT (dataset_id, lexeme, slot) DO UPDATE SET df = t.df + excluded.df;
"""

_ADD_POSTINGS = """
    INSERT INTO lexical_postings (dataset_id, lexeme, record_key, tf, len)
    SELECT n.dataset_id, u.lexeme, n.key, greatest(cardinality(u.positions), 1), length(n.tsv)
    FROM {rows} AS n, unnest(n.tsv) AS u
    WHERE EXISTS (SELECT 1 FROM datasets AS d WHERE d.id = n.dataset_id);
"""

_DROP_POSTINGS = """
    DELETE FROM lexical_postings AS p
    USING {rows} AS o, unnest(tsvector_to_array(o.tsv)) AS l(lexeme)
    WHERE p.dataset_id = o.dataset_id AND p.lexeme = l.lexeme AND p.record_key = o.key;
"""

# An update matters when the words or the dataset changed.
_CHANGED_KEYS = """
    SELECT o.key FROM old_rows AS o JOIN new_rows AS n ON n.key = o.key
    WHERE (o.tsv, o.dataset_id) IS DISTINCT FROM (n.tsv, n.dataset_id)
"""

_OLD_CHANGED = f"(SELECT * FROM old_rows WHERE key IN ({_CHANGED_KEYS}))"
_NEW_CHANGED = f"(SELECT * FROM new_rows WHERE key IN ({_CHANGED_KEYS}))"
_UPDATE_DELTAS = (
    f"SELECT dataset_id, tsv, -1 AS sign FROM {_OLD_CHANGED} AS o "
    f"UNION ALL SELECT dataset_id, tsv, 1 AS sign FROM {_NEW_CHANGED} AS n"
)

STATEMENTS = [
    """CREATE TABLE lexical_postings (
        dataset_id varchar(40) NOT NULL,
        lexeme text NOT NULL,
        record_key bigint NOT NULL,
        tf integer NOT NULL,
        len integer NOT NULL,
        CONSTRAINT pk_lexical_postings PRIMARY KEY (dataset_id, lexeme, record_key)
            INCLUDE (tf, len)
    )""",
    """CREATE TABLE lexical_terms (
        dataset_id varchar(40) NOT NULL,
        lexeme text NOT NULL,
        slot integer NOT NULL,
        df bigint NOT NULL,
        CONSTRAINT pk_lexical_terms PRIMARY KEY (dataset_id, lexeme, slot) INCLUDE (df)
    )""",
    """CREATE TABLE lexical_sizes (
        dataset_id varchar(40) NOT NULL,
        slot integer NOT NULL,
        docs bigint NOT NULL,
        words bigint NOT NULL,
        CONSTRAINT pk_lexical_sizes PRIMARY KEY (dataset_id, slot)
    )""",
    # The first counter slot of the dataset no other open transaction holds (held until commit).
    """CREATE FUNCTION obk_lexical_slot(dataset text) RETURNS integer
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
        slot integer := 0;
    BEGIN
        LOOP
            IF pg_try_advisory_xact_lock(hashtext(dataset), slot) THEN
                RETURN slot;
            END IF;
            slot := slot + 1;
        END LOOP;
    END $$""",
    f"""CREATE FUNCTION obk_lexical_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {_ADD_POSTINGS.format(rows="new_rows")}
        {_COUNT.format(changed="SELECT dataset_id, tsv, 1 AS sign FROM new_rows")}
        RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION obk_lexical_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {_DROP_POSTINGS.format(rows="old_rows")}
        {_COUNT.format(changed="SELECT dataset_id, tsv, -1 AS sign FROM old_rows")}
        RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION obk_lexical_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS ({_CHANGED_KEYS}) THEN
            RETURN NULL;
        END IF;
        {_DROP_POSTINGS.format(rows=_OLD_CHANGED)}
        {_ADD_POSTINGS.format(rows=_NEW_CHANGED)}
        {_COUNT.format(changed=_UPDATE_DELTAS)}
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION obk_lexical_dataset_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM lexical_postings WHERE dataset_id IN (SELECT id FROM gone);
        DELETE FROM lexical_terms WHERE dataset_id IN (SELECT id FROM gone);
        DELETE FROM lexical_sizes WHERE dataset_id IN (SELECT id FROM gone);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER records_lexical_insert AFTER INSERT ON records
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION obk_lexical_inserted()""",
    """CREATE TRIGGER records_lexical_delete AFTER DELETE ON records
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION obk_lexical_deleted()""",
    """CREATE TRIGGER records_lexical_update AFTER UPDATE ON records
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION obk_lexical_updated()""",
    """CREATE TRIGGER datasets_lexical_delete AFTER DELETE ON datasets
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION obk_lexical_dataset_deleted()""",
    # What the records already stored hold (a database migrated with records in it).
    _ADD_POSTINGS.format(rows="records"),
    _COUNT.format(changed="SELECT dataset_id, tsv, 1 AS sign FROM records"),
    "DROP INDEX IF EXISTS ix_records_tsv",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE INDEX IF NOT EXISTS ix_records_tsv ON records USING gin (tsv)")
    op.execute("DROP TRIGGER IF EXISTS datasets_lexical_delete ON datasets")
    for name in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS records_lexical_{name} ON records")
    for name in ("inserted", "deleted", "updated", "dataset_deleted"):
        op.execute(f"DROP FUNCTION IF EXISTS obk_lexical_{name}()")
    op.execute("DROP FUNCTION IF EXISTS obk_lexical_slot(text)")
    for table in ("lexical_sizes", "lexical_terms", "lexical_postings"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
