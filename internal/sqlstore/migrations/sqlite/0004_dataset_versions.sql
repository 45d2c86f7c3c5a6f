-- Dataset versions (SQLite): mloop's versioned data, apart from MLflow's
-- datasets table (the datasets runs log as inputs), which only gains an index
-- on digest here so that lineage from a version to the runs that logged its
-- digest is an index lookup.
--
-- versioned_datasets holds one row per dataset name: its newest version
-- number, which a push reads and advances while holding the row, and the
-- schema YAML set for it. dataset_versions holds immutable versions, unique
-- per (dataset, version) and per (dataset, digest), so pushing identical
-- content twice finds the first version. dataset_version_files lists each
-- version's files, whose bytes live content-addressed in the artifact store
-- under datasets/blobs/sha256/<2 hex>/<hex>; the index on sha256 answers
-- whether a blob is still referenced. Times are milliseconds since the epoch;
-- tags and profiles are JSON text.

CREATE TABLE versioned_datasets (
    name              TEXT    NOT NULL PRIMARY KEY,
    latest_version    INTEGER NOT NULL DEFAULT 0,
    schema_yaml       TEXT,
    schema_updated_at INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE dataset_versions (
    dataset    TEXT    NOT NULL REFERENCES versioned_datasets (name),
    version    INTEGER NOT NULL,
    digest     TEXT    NOT NULL,
    row_count  INTEGER NOT NULL,
    byte_count INTEGER NOT NULL,
    file_count INTEGER NOT NULL,
    source     TEXT    NOT NULL DEFAULT '',
    user_id    TEXT    NOT NULL DEFAULT '',
    tags       TEXT    NOT NULL DEFAULT '{}',
    profile    TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (dataset, version),
    UNIQUE (dataset, digest)
) WITHOUT ROWID;

CREATE TABLE dataset_version_files (
    dataset     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    path        TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    format      TEXT    NOT NULL,
    compression TEXT    NOT NULL DEFAULT '',
    row_count   INTEGER NOT NULL,
    PRIMARY KEY (dataset, version, path),
    FOREIGN KEY (dataset, version) REFERENCES dataset_versions (dataset, version)
) WITHOUT ROWID;

CREATE INDEX dataset_version_files_sha256 ON dataset_version_files (sha256);

CREATE INDEX datasets_digest ON datasets (digest);
