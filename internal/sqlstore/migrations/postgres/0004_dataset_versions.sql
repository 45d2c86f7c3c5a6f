-- Dataset versions (PostgreSQL): mloop's versioned data, apart from MLflow's
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
-- tags and profiles are JSON text. Names, digests and paths use the "C"
-- collation so that ordering and prefix matches are bytewise, as on SQLite.

CREATE TABLE versioned_datasets (
    name              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    latest_version    BIGINT  NOT NULL DEFAULT 0,
    schema_yaml       TEXT,
    schema_updated_at BIGINT,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);

CREATE TABLE dataset_versions (
    dataset    TEXT COLLATE "C" NOT NULL REFERENCES versioned_datasets (name),
    version    BIGINT  NOT NULL,
    digest     TEXT COLLATE "C" NOT NULL,
    row_count  BIGINT  NOT NULL,
    byte_count BIGINT  NOT NULL,
    file_count BIGINT  NOT NULL,
    source     TEXT    NOT NULL DEFAULT '',
    user_id    TEXT    NOT NULL DEFAULT '',
    tags       TEXT    NOT NULL DEFAULT '{}',
    profile    TEXT,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (dataset, version),
    UNIQUE (dataset, digest)
);

CREATE TABLE dataset_version_files (
    dataset     TEXT COLLATE "C" NOT NULL,
    version     BIGINT  NOT NULL,
    path        TEXT COLLATE "C" NOT NULL,
    sha256      TEXT COLLATE "C" NOT NULL,
    size        BIGINT  NOT NULL,
    format      TEXT    NOT NULL,
    compression TEXT    NOT NULL DEFAULT '',
    row_count   BIGINT  NOT NULL,
    PRIMARY KEY (dataset, version, path),
    FOREIGN KEY (dataset, version) REFERENCES dataset_versions (dataset, version)
);

CREATE INDEX dataset_version_files_sha256 ON dataset_version_files (sha256);

CREATE INDEX datasets_digest ON datasets (digest);
