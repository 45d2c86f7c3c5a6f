-- Monitoring windows (SQLite): one row per model version per closed window
-- of a deployment, written by the monitor's finisher.
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

CREATE TABLE monitor_windows (
    id            TEXT    NOT NULL PRIMARY KEY,
    deployment    TEXT    NOT NULL,
    model_version TEXT    NOT NULL,
    start_ms      INTEGER NOT NULL,
    end_ms        INTEGER NOT NULL,
    rows          INTEGER NOT NULL,
    requests      INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    dataset_drift BOOLEAN NOT NULL DEFAULT 0,
    drift_share   REAL    NOT NULL DEFAULT 0,
    summary       TEXT    NOT NULL,
    quality       TEXT
) WITHOUT ROWID;

CREATE INDEX monitor_windows_deployment ON monitor_windows (deployment, start_ms);

CREATE TABLE monitor_window_profiles (
    id       TEXT NOT NULL PRIMARY KEY REFERENCES monitor_windows (id) ON DELETE CASCADE,
    profiles TEXT NOT NULL
) WITHOUT ROWID;
