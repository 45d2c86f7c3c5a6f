-- Deployments (SQLite): named serving endpoints, their past generations and
-- the events recording each change.
--
-- deployments holds one row per deployment: its spec (what the user asked
-- for) and its slots (the model versions served, with their revisions) as
-- JSON text, its generation (every change is a compare-and-swap on it) and
-- the next revision number to allocate. deployment_history keeps every
-- replaced generation, so that a rollback finds what the primary served
-- before; it goes with its deployment. deployment_events records each
-- change (created, updated, promoted, rolled back, alias moved, deleted)
-- and outlives its deployment, so that a deleted deployment's story can
-- still be read; it is listed newest first per deployment and overall.
--
-- Times are milliseconds since the epoch; event details are JSON text
-- (NULL for none). Booleans are stored as 0/1.

CREATE TABLE deployments (
    name          TEXT    NOT NULL PRIMARY KEY,
    spec          TEXT    NOT NULL,
    slots         TEXT    NOT NULL,
    generation    INTEGER NOT NULL,
    next_revision INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE deployment_history (
    name          TEXT    NOT NULL REFERENCES deployments (name) ON DELETE CASCADE,
    generation    INTEGER NOT NULL,
    spec          TEXT    NOT NULL,
    slots         TEXT    NOT NULL,
    next_revision INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (name, generation)
) WITHOUT ROWID;

CREATE TABLE deployment_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment TEXT    NOT NULL,
    time       INTEGER NOT NULL,
    type       TEXT    NOT NULL,
    generation INTEGER NOT NULL,
    message    TEXT    NOT NULL DEFAULT '',
    automatic  BOOLEAN NOT NULL DEFAULT 0,
    details    TEXT
);

CREATE INDEX deployment_events_deployment ON deployment_events (deployment, id);
