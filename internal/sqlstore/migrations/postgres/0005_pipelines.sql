-- Pipelines (PostgreSQL): pipeline runs and their steps, the step cache, lineage
-- edges, and the triggers of continuous training with their events.
--
-- pipeline_runs holds one row per run with a snapshot of its spec text, so a
-- run resumes after a restart even if the file changed; it is listed newest
-- first per pipeline, by status (the controller's queue) and by trigger.
-- pipeline_steps holds the steps of a run, position keeping the plan's order.
-- pipeline_cache maps a step's cache key to the result it recorded, and is
-- also read newest first per (pipeline, step) to explain what changed.
-- lineage_edges links nodes (dataset versions, pipeline and step runs,
-- artifacts, model versions), each edge once per (from, to, relation); the
-- primary key answers walks down from a node, an index on the other end
-- walks up. triggers holds one row per trigger with its guardrails and
-- controller state; trigger_events holds what happened for each trigger,
-- stored before it is acknowledged, and survives the trigger's deletion as a
-- skipped record. A non-empty dedup_key is unique per trigger, so a retried
-- post or a rescanned dataset version makes no second event.
--
-- Times are milliseconds since the epoch (NULL when not yet); durations are
-- milliseconds; maps and lists (params, datasets, event ids, explanations,
-- outputs, metrics, cache inputs) and event payloads are JSON text. Booleans
-- are BOOLEAN. Ids, names and keys use the "C" collation so that ordering
-- is bytewise, as on SQLite. "trigger" is a keyword, hence trigger_name.

CREATE TABLE pipeline_runs (
    id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    pipeline         TEXT COLLATE "C" NOT NULL,
    spec_file        TEXT    NOT NULL DEFAULT '',
    project_dir      TEXT    NOT NULL DEFAULT '',
    spec             TEXT    NOT NULL DEFAULT '',
    params           TEXT    NOT NULL DEFAULT '{}',
    datasets         TEXT    NOT NULL DEFAULT '{}',
    status           TEXT    NOT NULL,
    trigger_name     TEXT COLLATE "C" NOT NULL DEFAULT '',
    cause            TEXT    NOT NULL DEFAULT '',
    event_ids        TEXT    NOT NULL DEFAULT '[]',
    inputs_key       TEXT    NOT NULL DEFAULT '',
    experiment_id    TEXT    NOT NULL DEFAULT '',
    mlflow_run_id    TEXT    NOT NULL DEFAULT '',
    error            TEXT    NOT NULL DEFAULT '',
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    owner            TEXT    NOT NULL DEFAULT '',
    explain          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT  NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
);

CREATE INDEX pipeline_runs_created ON pipeline_runs (created_at, id);
CREATE INDEX pipeline_runs_pipeline ON pipeline_runs (pipeline, created_at, id);
CREATE INDEX pipeline_runs_status ON pipeline_runs (status, created_at);
CREATE INDEX pipeline_runs_trigger ON pipeline_runs (trigger_name, created_at);

CREATE TABLE pipeline_steps (
    run_id        TEXT COLLATE "C" NOT NULL REFERENCES pipeline_runs (id) ON DELETE CASCADE,
    name          TEXT COLLATE "C" NOT NULL,
    position      BIGINT  NOT NULL,
    status        TEXT    NOT NULL,
    attempt       BIGINT  NOT NULL DEFAULT 0,
    cache_key     TEXT    NOT NULL DEFAULT '',
    cached_from   TEXT    NOT NULL DEFAULT '',
    explain       TEXT    NOT NULL DEFAULT '[]',
    mlflow_run_id TEXT    NOT NULL DEFAULT '',
    executor      TEXT    NOT NULL DEFAULT '',
    task_id       TEXT    NOT NULL DEFAULT '',
    handle        TEXT    NOT NULL DEFAULT '',
    exit_code     BIGINT,
    error         TEXT    NOT NULL DEFAULT '',
    outputs       TEXT    NOT NULL DEFAULT '{}',
    metrics       TEXT    NOT NULL DEFAULT '{}',
    started_at    BIGINT,
    finished_at   BIGINT,
    PRIMARY KEY (run_id, name)
);

CREATE TABLE pipeline_cache (
    key           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    pipeline      TEXT COLLATE "C" NOT NULL,
    step          TEXT COLLATE "C" NOT NULL,
    run_id        TEXT COLLATE "C" NOT NULL,
    mlflow_run_id TEXT    NOT NULL DEFAULT '',
    input         TEXT    NOT NULL,
    outputs       TEXT    NOT NULL DEFAULT '{}',
    metrics       TEXT    NOT NULL DEFAULT '{}',
    created_at    BIGINT  NOT NULL
);

CREATE INDEX pipeline_cache_step ON pipeline_cache (pipeline, step, created_at);

CREATE TABLE lineage_edges (
    from_kind  TEXT COLLATE "C" NOT NULL,
    from_id    TEXT COLLATE "C" NOT NULL,
    to_kind    TEXT COLLATE "C" NOT NULL,
    to_id      TEXT COLLATE "C" NOT NULL,
    relation   TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (from_kind, from_id, to_kind, to_id, relation)
);

CREATE INDEX lineage_edges_to ON lineage_edges (to_kind, to_id);

CREATE TABLE triggers (
    name                 TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    spec_file            TEXT    NOT NULL DEFAULT '',
    project_dir          TEXT    NOT NULL DEFAULT '',
    params               TEXT    NOT NULL DEFAULT '{}',
    pipeline             TEXT COLLATE "C" NOT NULL DEFAULT '',
    kind                 TEXT    NOT NULL,
    dataset              TEXT    NOT NULL DEFAULT '',
    cron                 TEXT    NOT NULL DEFAULT '',
    timezone             TEXT    NOT NULL DEFAULT '',
    event                TEXT    NOT NULL DEFAULT '',
    cooldown_ms          BIGINT  NOT NULL DEFAULT 0,
    batch_window_ms      BIGINT  NOT NULL DEFAULT 0,
    max_concurrent       BIGINT  NOT NULL DEFAULT 0,
    overlap              TEXT    NOT NULL DEFAULT '',
    dedup                BOOLEAN NOT NULL DEFAULT FALSE,
    max_failures         BIGINT  NOT NULL DEFAULT 0,
    paused               BOOLEAN NOT NULL DEFAULT FALSE,
    pause_reason         TEXT    NOT NULL DEFAULT '',
    consecutive_failures BIGINT  NOT NULL DEFAULT 0,
    dataset_cursor       BIGINT  NOT NULL DEFAULT 0,
    next_fire            BIGINT,
    last_fired           BIGINT,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);

CREATE TABLE trigger_events (
    id           BIGINT  GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    trigger_name TEXT COLLATE "C" NOT NULL,
    source       TEXT    NOT NULL DEFAULT '',
    subject      TEXT    NOT NULL DEFAULT '',
    payload      TEXT,
    dedup_key    TEXT COLLATE "C" NOT NULL DEFAULT '',
    status       TEXT    NOT NULL,
    run_id       TEXT COLLATE "C" NOT NULL DEFAULT '',
    reason       TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT  NOT NULL,
    decided_at   BIGINT
);

CREATE INDEX trigger_events_status ON trigger_events (trigger_name, status, id);
CREATE UNIQUE INDEX trigger_events_dedup ON trigger_events (trigger_name, dedup_key) WHERE dedup_key <> '';
