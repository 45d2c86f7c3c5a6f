-- Tracking schema (SQLite), modelled on MLflow's: experiments and their tags;
-- runs with params, tags, metric history and latest metrics; datasets, inputs
-- and input tags as MLflow's log-inputs; MLflow 3 model inputs and outputs as
-- rows of inputs. Booleans are stored as 0/1 (BOOLEAN has numeric affinity).
--
-- One deliberate departure from MLflow: a metric series (one key of one run)
-- has an integer id, latest_metrics.series_id, and metric history rows carry
-- that id instead of (run_uuid, key). History rows shrink to about a third,
-- which is what makes log-batch ingestion and history reads fast. The series
-- row also keeps its smallest step, its number of distinct steps and, while
-- they are few, the arithmetic runs its steps form (0, 1, 2, … is one run), so
-- step sampling of such series needs no scan of the history.

CREATE TABLE experiments (
    experiment_id     INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    artifact_location TEXT    NOT NULL DEFAULT '',
    lifecycle_stage   TEXT    NOT NULL DEFAULT 'active' CHECK (lifecycle_stage IN ('active', 'deleted')),
    creation_time     INTEGER NOT NULL DEFAULT 0,
    last_update_time  INTEGER NOT NULL DEFAULT 0
);

INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
VALUES (0, 'Default', '', 'active',
        CAST(unixepoch('subsec') * 1000 AS INTEGER), CAST(unixepoch('subsec') * 1000 AS INTEGER));

CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
    key           TEXT    NOT NULL,
    value         TEXT    NOT NULL,
    PRIMARY KEY (experiment_id, key)
) WITHOUT ROWID;

CREATE TABLE runs (
    run_uuid        TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL DEFAULT '',
    experiment_id   INTEGER NOT NULL REFERENCES experiments (experiment_id),
    user_id         TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL CHECK (status IN ('RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED')),
    start_time      INTEGER NOT NULL DEFAULT 0,
    end_time        INTEGER,
    deleted_time    INTEGER,
    artifact_uri    TEXT    NOT NULL DEFAULT '',
    lifecycle_stage TEXT    NOT NULL DEFAULT 'active' CHECK (lifecycle_stage IN ('active', 'deleted'))
) WITHOUT ROWID;

-- SearchRuns' default order within an experiment; lifecycle changes of a whole experiment.
CREATE INDEX runs_experiment_start_time ON runs (experiment_id, start_time DESC, run_uuid);

-- A narrow copy of what searches check for each candidate run: looking it up
-- is cheaper than reading the run's row.
CREATE INDEX runs_search ON runs (run_uuid, experiment_id, lifecycle_stage, start_time);

CREATE TABLE params (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;

-- Search filters such as params.alpha = '0.1' (the index also holds run_uuid).
CREATE INDEX params_key_value ON params (key, value);

CREATE TABLE tags (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;

CREATE INDEX tags_key_value ON tags (key, value);

-- One row per metric series: the latest point as MLflow's latest_metrics (the
-- largest (step, timestamp, value)), plus step statistics: step_segments
-- encodes the series' distinct steps as arithmetic runs, NULL once they need
-- too many runs, and one_point_per_step says whether every step holds one
-- point (then a history page at an offset starts at a computable step). A
-- NaN value is stored as 0 with is_nan set, as MLflow does.
CREATE TABLE latest_metrics (
    run_uuid    TEXT    NOT NULL REFERENCES runs (run_uuid),
    key         TEXT    NOT NULL,
    value       REAL    NOT NULL,
    timestamp   INTEGER NOT NULL,
    step        INTEGER NOT NULL,
    is_nan      BOOLEAN NOT NULL,
    min_step    INTEGER NOT NULL,
    step_count  INTEGER NOT NULL,
    step_segments BLOB,
    one_point_per_step BOOLEAN NOT NULL,
    series_id   INTEGER NOT NULL UNIQUE,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;

-- Search filters such as metrics.rmse < 0.5, and the ordered scan of one
-- metric's values that serves order_by on a metric (the index also holds
-- run_uuid, and is_nan so neither needs the table).
CREATE INDEX latest_metrics_key_value ON latest_metrics (key, value, is_nan);

-- Metric history, clustered by series and (step, timestamp, value): history
-- reads and step lookups are range scans, and identical points collapse on
-- the primary key. No foreign key: the series row is written in the same
-- transaction and never deleted, and a per-row check would only slow ingestion.
CREATE TABLE metrics (
    series_id INTEGER NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL    NOT NULL,
    is_nan    BOOLEAN NOT NULL,
    PRIMARY KEY (series_id, step, timestamp, value, is_nan)
) WITHOUT ROWID;

CREATE TABLE datasets (
    dataset_uuid        TEXT    NOT NULL PRIMARY KEY,
    experiment_id       INTEGER NOT NULL REFERENCES experiments (experiment_id),
    name                TEXT    NOT NULL,
    digest              TEXT    NOT NULL,
    dataset_source_type TEXT    NOT NULL DEFAULT '',
    dataset_source      TEXT    NOT NULL DEFAULT '',
    dataset_schema      TEXT    NOT NULL DEFAULT '',
    dataset_profile     TEXT    NOT NULL DEFAULT '',
    UNIQUE (experiment_id, name, digest)
);

-- Edges between runs and what they used or produced, as MLflow's inputs table:
-- (DATASET, dataset_uuid, RUN, run_uuid) for dataset inputs,
-- (RUN_INPUT, run_uuid, MODEL_INPUT, model_id) for MLflow 3 model inputs and
-- (RUN_OUTPUT, run_uuid, MODEL_OUTPUT, model_id) with a step for model outputs.
CREATE TABLE inputs (
    input_uuid       TEXT    NOT NULL UNIQUE,
    source_type      TEXT    NOT NULL,
    source_id        TEXT    NOT NULL,
    destination_type TEXT    NOT NULL,
    destination_id   TEXT    NOT NULL,
    step             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source_type, source_id, destination_type, destination_id)
);

-- Loading the dataset inputs of runs, and dataset search filters.
CREATE INDEX inputs_destination ON inputs (destination_type, destination_id, source_type);

CREATE TABLE input_tags (
    input_uuid TEXT NOT NULL REFERENCES inputs (input_uuid),
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (input_uuid, name)
) WITHOUT ROWID;

-- Planner statistics for a database that has never been analysed, so that
-- searches get from the start the plans they get on a loaded one: a param or
-- tag key with one value selects few runs, a key alone many, an experiment
-- many. ANALYZE (or PRAGMA optimize) replaces them with measured ones.
ANALYZE;
DELETE FROM sqlite_stat1;
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('runs', 'runs', '100000 1'),
    ('runs', 'runs_experiment_start_time', '100000 1000 1 1'),
    ('runs', 'runs_search', '100000 1 1 1 1'),
    ('params', 'params', '1000000 10 1'),
    ('params', 'params_key_value', '1000000 1000 10'),
    ('tags', 'tags', '1000000 10 1'),
    ('tags', 'tags_key_value', '1000000 1000 10'),
    ('latest_metrics', 'latest_metrics', '1000000 10 1'),
    ('latest_metrics', 'latest_metrics_key_value', '1000000 1000 1 1');
ANALYZE sqlite_schema;
