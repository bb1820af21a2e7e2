"""The store's tables in both backends, the columns added since the first version, and the schema version.

A local store is migrated column by column on open. A team store records its schema version in
``store_meta``: an older database is migrated forward on connect, and a package older than the
database refuses it (it would not know what the newer columns mean).
"""

#: The team store's schema version: raise it with each change to the PostgreSQL tables below.
SCHEMA_VERSION = 1

#: The ``generations`` table's columns, in order: (name, SQLite type, PostgreSQL type). Both backends'
#: tables are made from it, and ``yart store copy`` copies these.
GENERATION_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("operation_id", "TEXT PRIMARY KEY", "TEXT PRIMARY KEY"),
    ("status", "TEXT NOT NULL", "TEXT NOT NULL"),
    ("prompt", "TEXT NOT NULL", "TEXT NOT NULL"),
    ("messages", "TEXT NOT NULL", "TEXT NOT NULL"),
    ("seed", "INTEGER", "BIGINT"),
    ("seed_given", "INTEGER NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"),
    ("aspect", "TEXT", "TEXT"),
    ("mime_type", "TEXT", "TEXT"),
    ("model_uri", "TEXT", "TEXT"),
    ("request_key", "TEXT", "TEXT"),
    ("submitted_at", "REAL NOT NULL", "DOUBLE PRECISION NOT NULL"),
    ("finished_at", "REAL", "DOUBLE PRECISION"),
    ("error", "TEXT", "TEXT"),
    ("model_version", "TEXT", "TEXT"),
    ("image_file", "TEXT", "TEXT"),
    ("width", "INTEGER", "INTEGER"),
    ("height", "INTEGER", "INTEGER"),
    ("bytes", "INTEGER", "INTEGER"),
    ("notebook", "TEXT", "TEXT"),
    ("idempotency_key", "TEXT", "TEXT UNIQUE"),
    ("seen_running", "REAL", "DOUBLE PRECISION"),
    ("seen_done", "REAL", "DOUBLE PRECISION"),
    ("api", "TEXT", "TEXT"),
    ("revised_prompt", "TEXT", "TEXT"),
    ("owner", "TEXT", "TEXT"),
    ("host", "TEXT", "TEXT"),
)


def _generations(dialect: int) -> str:
    """``CREATE TABLE generations`` for one backend (1: SQLite, 2: PostgreSQL)."""
    body = ",\n".join(f"    {column[0]} {column[dialect]}" for column in GENERATION_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS generations (\n{body}\n);\n"


_SCHEMA = _generations(1) + """
CREATE INDEX IF NOT EXISTS generations_cache ON generations (request_key, status);
CREATE INDEX IF NOT EXISTS generations_time ON generations (submitted_at);
CREATE INDEX IF NOT EXISTS generations_status ON generations (status);
CREATE TABLE IF NOT EXISTS experiments (
    id          TEXT PRIMARY KEY,
    created_at  REAL NOT NULL,
    title       TEXT NOT NULL,
    axes        TEXT NOT NULL,
    items       TEXT NOT NULL,
    notebook    TEXT
);
"""
_MIGRATIONS = {"idempotency_key": "ALTER TABLE generations ADD COLUMN idempotency_key TEXT",
               "seen_running": "ALTER TABLE generations ADD COLUMN seen_running REAL",
               "seen_done": "ALTER TABLE generations ADD COLUMN seen_done REAL",
               "api": "ALTER TABLE generations ADD COLUMN api TEXT",
               "revised_prompt": "ALTER TABLE generations ADD COLUMN revised_prompt TEXT",
               "owner": "ALTER TABLE generations ADD COLUMN owner TEXT",
               "host": "ALTER TABLE generations ADD COLUMN host TEXT"}
_INDEXES = "CREATE UNIQUE INDEX IF NOT EXISTS generations_intent ON generations (idempotency_key)"

#: The team store (PostgreSQL), by version: each entry takes a database from the version before it.
#: Pictures are kept in the database (``images``), the folder's shared quota in ``quota_slots``.
PG_MIGRATIONS: dict[int, str] = {1: _generations(2) + """
CREATE INDEX IF NOT EXISTS generations_cache ON generations (request_key, status);
CREATE INDEX IF NOT EXISTS generations_time ON generations (submitted_at);
CREATE INDEX IF NOT EXISTS generations_status ON generations (status, owner);
CREATE TABLE IF NOT EXISTS experiments (
    id          TEXT PRIMARY KEY,
    created_at  DOUBLE PRECISION NOT NULL,
    title       TEXT NOT NULL,
    axes        TEXT NOT NULL,
    items       TEXT NOT NULL,
    notebook    TEXT
);
CREATE TABLE IF NOT EXISTS images (
    operation_id TEXT PRIMARY KEY REFERENCES generations (operation_id) ON DELETE CASCADE ON UPDATE CASCADE,
    data         BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS quota_slots (
    id       BIGSERIAL PRIMARY KEY,
    scope    TEXT NOT NULL,
    taken_at DOUBLE PRECISION NOT NULL,
    settled  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS quota_slots_scope ON quota_slots (scope, taken_at);
CREATE TABLE IF NOT EXISTS quota_blocks (
    scope    TEXT PRIMARY KEY,
    until_at DOUBLE PRECISION NOT NULL
);
-- One slot of a quota, taken in one round trip: (0, slot id) when the window has room, else (seconds
-- to wait, NULL). Serialised per scope; times are the database's clock, the one every process shares.
-- A slot counts from when it was taken until its request was answered (settled), then for a window
-- from the answer: the service counted it on arrival, somewhere in between. A slot never settled (its
-- process died) counts for p_hold seconds at most.
CREATE OR REPLACE FUNCTION yart_claim(p_scope TEXT, p_limit INTEGER, p_window DOUBLE PRECISION,
                                      p_spacing DOUBLE PRECISION, p_hold DOUBLE PRECISION,
                                      OUT wait DOUBLE PRECISION, OUT slot BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    now_at DOUBLE PRECISION;
    counted INTEGER;
    frees DOUBLE PRECISION;
    newest DOUBLE PRECISION;
    blocked DOUBLE PRECISION;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_scope));
    now_at := EXTRACT(EPOCH FROM clock_timestamp());
    wait := 0;
    slot := NULL;
    SELECT until_at INTO blocked FROM quota_blocks WHERE scope = p_scope;
    IF blocked IS NOT NULL THEN
        wait := GREATEST(wait, blocked - now_at);
    END IF;
    SELECT COUNT(*), MAX(taken_at) INTO counted, newest FROM quota_slots
     WHERE scope = p_scope AND taken_at > now_at - GREATEST(p_window, p_hold)
       AND (NOT settled OR taken_at > now_at - p_window);
    IF counted >= p_limit THEN
        -- the window frees up as its oldest settled slots expire; unsettled ones hold theirs
        SELECT taken_at INTO frees FROM quota_slots
         WHERE scope = p_scope AND settled AND taken_at > now_at - p_window
         ORDER BY taken_at OFFSET counted - p_limit LIMIT 1;
        wait := GREATEST(wait, COALESCE(frees + p_window - now_at, p_window / 4));
    END IF;
    IF p_spacing > 0 AND newest IS NOT NULL THEN
        wait := GREATEST(wait, newest + p_spacing - now_at);
    END IF;
    IF wait <= 0 THEN
        wait := 0;
        INSERT INTO quota_slots (scope, taken_at) VALUES (p_scope, now_at) RETURNING id INTO slot;
    END IF;
END $$;
"""}
