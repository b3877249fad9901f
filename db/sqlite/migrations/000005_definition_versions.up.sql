-- Versioned trigger and pipeline definitions (live definitions): every
-- version holds the source texts of triggers.yaml and pipelines.yaml and
-- their digest; the newest version is the running one. A stream records
-- the version it was created under (0: before versions existed, or a
-- manager without versions), so that it fires, expires and runs its
-- pipelines under that version until it completes. Names are the same as
-- in the PostgreSQL driver's migration of the same number.
CREATE TABLE definition_version (
    version       INTEGER PRIMARY KEY,
    digest        TEXT NOT NULL,
    triggers      TEXT NOT NULL,
    trigger_file  TEXT NOT NULL DEFAULT '',
    pipelines     TEXT NOT NULL,
    pipeline_file TEXT NOT NULL DEFAULT '',
    source        TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
);

ALTER TABLE stream ADD COLUMN definition_version INTEGER NOT NULL DEFAULT 0;
