-- Controller leases (PostgreSQL): one row per controller role (today
-- "pipeline-controllers": the pipeline runner and the trigger controller).
-- The server holding an unexpired lease runs the role's controllers; other
-- servers on the same database stand by and take over when it expires or
-- is released. Times are milliseconds since the epoch.

CREATE TABLE controller_leases (
    name        TEXT   NOT NULL PRIMARY KEY,
    owner       TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL
);
