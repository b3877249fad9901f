-- Scheduled jobs (package job): one row per job with its progress through
-- its windows, changed only by compare-and-set on serial_no, and the
-- history of its runs. All times are epoch microseconds (UTC).
CREATE TABLE job (
    name         TEXT PRIMARY KEY,
    serial_no    INTEGER NOT NULL DEFAULT 0,
    last_end     INTEGER NOT NULL,
    window_start INTEGER,
    window_end   INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    claimed_by   TEXT NOT NULL DEFAULT '',
    lease_until  INTEGER,
    retry_at     INTEGER,
    last_error   TEXT NOT NULL DEFAULT '',
    updated_at   INTEGER NOT NULL
);

CREATE TABLE job_run (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    job          TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    window_end   INTEGER NOT NULL,
    status       TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    worker       TEXT NOT NULL DEFAULT '',
    started_at   INTEGER,
    finished_at  INTEGER NOT NULL,
    error        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX job_run_job ON job_run (job, id);
-- A window completes once.
CREATE UNIQUE INDEX job_run_completed ON job_run (job, window_start) WHERE status = 'completed';
