-- Alert rules (SQLite): the rules, the evaluation state of each rule per
-- deployment and model version, the alerts with their state (firing,
-- resolved) and every delivery attempt of their actions.
--
-- Rules, states and alerts keep their full form as JSON text; the columns
-- are what is queried. Deleting a rule deletes its states; its alerts and
-- deliveries stay as history (the firing ones are marked resolved).

CREATE TABLE alert_rules (
    name       TEXT    NOT NULL PRIMARY KEY,
    rule       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE alert_states (
    rule          TEXT NOT NULL REFERENCES alert_rules (name) ON DELETE CASCADE,
    deployment    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    state         TEXT NOT NULL,
    PRIMARY KEY (rule, deployment, model_version)
) WITHOUT ROWID;

CREATE TABLE alerts (
    id            TEXT    NOT NULL PRIMARY KEY,
    rule          TEXT    NOT NULL,
    deployment    TEXT    NOT NULL,
    model_version TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    started_ms    INTEGER NOT NULL,
    resolved_ms   INTEGER,
    alert         TEXT    NOT NULL
) WITHOUT ROWID;

CREATE INDEX alerts_started ON alerts (started_ms);
CREATE INDEX alerts_rule ON alerts (rule, started_ms);
CREATE INDEX alerts_deployment ON alerts (deployment, started_ms);

CREATE TABLE alert_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id    TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    action      INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    error       TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    at_ms       INTEGER NOT NULL
);

CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id, id);
