-- MLflow 3 logged models, with MLflow's tables and columns
-- (mlflow/store/tracking/dbmodels/models.py: SqlLoggedModel and its tags,
-- params and metrics).
--
-- status holds MLflow's LoggedModelStatus value (PENDING, READY, FAILED);
-- the wire format spells it LOGGED_MODEL_<status>. A deleted model keeps its
-- row with lifecycle_stage 'deleted'. Tags, params and metrics go with their
-- model; metrics also go with the run that logged them. A NaN metric value is
-- stored as 0 with is_nan set, as run metrics are (SQLite cannot store
-- NaN).

CREATE TABLE logged_models (
	model_id                  TEXT NOT NULL PRIMARY KEY,
	experiment_id             INTEGER NOT NULL REFERENCES experiments (experiment_id) ON DELETE CASCADE,
	name                      TEXT NOT NULL,
	artifact_location         TEXT NOT NULL,
	creation_timestamp_ms     INTEGER NOT NULL,
	last_updated_timestamp_ms INTEGER NOT NULL,
	status                    TEXT NOT NULL CHECK (status IN ('PENDING', 'READY', 'FAILED')),
	lifecycle_stage           TEXT NOT NULL DEFAULT 'active' CHECK (lifecycle_stage IN ('active', 'deleted')),
	model_type                TEXT,
	source_run_id             TEXT,
	status_message            TEXT
);

-- Searches list the models of experiments, newest first.
CREATE INDEX logged_models_experiment ON logged_models (experiment_id, creation_timestamp_ms DESC);
-- Lineage: which models a run produced.
CREATE INDEX logged_models_source_run_id ON logged_models (source_run_id);

CREATE TABLE logged_model_tags (
	model_id  TEXT NOT NULL REFERENCES logged_models (model_id) ON DELETE CASCADE,
	tag_key   TEXT NOT NULL,
	tag_value TEXT NOT NULL,
	PRIMARY KEY (model_id, tag_key)
);

CREATE TABLE logged_model_params (
	model_id    TEXT NOT NULL REFERENCES logged_models (model_id) ON DELETE CASCADE,
	param_key   TEXT NOT NULL,
	param_value TEXT NOT NULL,
	PRIMARY KEY (model_id, param_key)
);

CREATE TABLE logged_model_metrics (
	model_id            TEXT NOT NULL REFERENCES logged_models (model_id) ON DELETE CASCADE,
	metric_name         TEXT NOT NULL,
	metric_timestamp_ms INTEGER NOT NULL,
	metric_step         INTEGER NOT NULL,
	metric_value        REAL NOT NULL,
	is_nan              BOOLEAN NOT NULL,
	run_id              TEXT NOT NULL REFERENCES runs (run_uuid) ON DELETE CASCADE,
	dataset_name        TEXT,
	dataset_digest      TEXT,
	PRIMARY KEY (model_id, metric_name, metric_timestamp_ms, metric_step, run_id)
);

CREATE INDEX logged_model_metrics_run_id ON logged_model_metrics (run_id);
