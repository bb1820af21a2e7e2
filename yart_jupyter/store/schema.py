"""The store's tables, and the columns added since the first version (migrated on open)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    operation_id  TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    prompt        TEXT NOT NULL,
    messages      TEXT NOT NULL,
    seed          INTEGER,
    seed_given    INTEGER NOT NULL DEFAULT 0,
    aspect        TEXT,
    mime_type     TEXT,
    model_uri     TEXT,
    request_key   TEXT,
    submitted_at  REAL NOT NULL,
    finished_at   REAL,
    error         TEXT,
    model_version TEXT,
    image_file    TEXT,
    width         INTEGER,
    height        INTEGER,
    bytes         INTEGER,
    notebook      TEXT,
    idempotency_key TEXT,
    seen_running  REAL,
    seen_done     REAL,
    api           TEXT,
    revised_prompt TEXT
);
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
               "revised_prompt": "ALTER TABLE generations ADD COLUMN revised_prompt TEXT"}
_INDEXES = "CREATE UNIQUE INDEX IF NOT EXISTS generations_intent ON generations (idempotency_key)"
