-- Monitoring windows (PostgreSQL): one row per model version per closed
-- window of a deployment, written by the monitor's finisher.
--
-- monitor_windows holds what is queried (deployment, model version, the
-- window's bounds in milliseconds since the epoch, counts, the dataset
-- drift verdict) as columns and the rest of the summary (drift per feature,
-- prediction drift, data quality, latency) as JSON text. quality is the
-- mergeable live-quality state as JSON text (NULL until a label joins);
-- labels that arrive after the window was saved are merged into it.
-- monitor_window_profiles keeps the window's feature and prediction
-- profiles (their sketches, some tens of kilobytes per feature) apart, so
-- that listing windows does not read them; they go with their window.
-- Names use the "C" collation so that ordering is bytewise, as on SQLite.

CREATE TABLE monitor_windows (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    deployment    TEXT COLLATE "C" NOT NULL,
    model_version TEXT COLLATE "C" NOT NULL,
    start_ms      BIGINT  NOT NULL,
    end_ms        BIGINT  NOT NULL,
    rows          BIGINT  NOT NULL,
    requests      BIGINT  NOT NULL,
    errors        BIGINT  NOT NULL,
    dataset_drift BOOLEAN NOT NULL DEFAULT FALSE,
    drift_share   DOUBLE PRECISION NOT NULL DEFAULT 0,
    summary       TEXT    NOT NULL,
    quality       TEXT
);

CREATE INDEX monitor_windows_deployment ON monitor_windows (deployment, start_ms);

CREATE TABLE monitor_window_profiles (
    id       TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES monitor_windows (id) ON DELETE CASCADE,
    profiles TEXT NOT NULL
);
