-- Model registry, with MLflow's tables and columns (mlflow/store/model_registry/dbmodels).
--
-- A deleted model version keeps its row with current_stage 'Deleted_Internal'
-- (as MLflow does), so version numbers are never reused. Foreign keys cascade
-- renames and deletes: registered_models → model_versions and
-- registered_model_tags; model_versions → model_version_tags and
-- registered_model_aliases.

CREATE TABLE registered_models (
	name              TEXT    NOT NULL PRIMARY KEY,
	creation_time     INTEGER NOT NULL,
	last_updated_time INTEGER NOT NULL,
	description       TEXT,
	user_id           TEXT
);

CREATE TABLE model_versions (
	name              TEXT    NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
	version           INTEGER NOT NULL,
	creation_time     INTEGER NOT NULL,
	last_updated_time INTEGER NOT NULL,
	description       TEXT,
	user_id           TEXT,
	current_stage     TEXT    NOT NULL DEFAULT 'None',
	source            TEXT,
	run_id            TEXT,
	run_link          TEXT,
	status            TEXT    NOT NULL DEFAULT 'READY',
	status_message    TEXT,
	storage_location  TEXT,
	model_id          TEXT,
	PRIMARY KEY (name, version)
);

-- Lineage: which versions a run produced.
CREATE INDEX model_versions_run_id ON model_versions (run_id);

CREATE TABLE registered_model_tags (
	name  TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
	key   TEXT NOT NULL,
	value TEXT,
	PRIMARY KEY (name, key)
);

CREATE TABLE model_version_tags (
	name    TEXT    NOT NULL,
	version INTEGER NOT NULL,
	key     TEXT    NOT NULL,
	value   TEXT,
	PRIMARY KEY (name, version, key),
	FOREIGN KEY (name, version) REFERENCES model_versions (name, version) ON UPDATE CASCADE ON DELETE CASCADE
);

CREATE TABLE registered_model_aliases (
	name    TEXT    NOT NULL,
	alias   TEXT    NOT NULL,
	version INTEGER NOT NULL,
	PRIMARY KEY (name, alias),
	FOREIGN KEY (name, version) REFERENCES model_versions (name, version) ON UPDATE CASCADE ON DELETE CASCADE
);
