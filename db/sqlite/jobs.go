package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/winchester-go/winchester/db"
)

// scanJob reads a row of db.JobTable (its Columns).
func scanJob(sc scanner) (db.JobState, error) {
	var (
		j                          db.JobState
		lastEnd, updated           int64
		wStart, wEnd, lease, retry sql.NullInt64
	)
	if err := sc.Scan(&j.Name, &j.SerialNo, &lastEnd, &wStart, &wEnd, &j.Attempts,
		&j.ClaimedBy, &lease, &retry, &j.LastError, &updated); err != nil {
		return j, err
	}
	j.LastEnd = db.FromMicros(lastEnd)
	j.WindowStart, j.WindowEnd = nullTime(wStart), nullTime(wEnd)
	j.LeaseUntil, j.RetryAt = nullTime(lease), nullTime(retry)
	j.UpdatedAt = db.FromMicros(updated)
	return j, nil
}

// JobState implements db.JobStore.
func (o ops) JobState(ctx context.Context, name string) (db.JobState, error) {
	return readLeased(ctx, o, jobRows, scanJob, name)
}

// JobStates implements db.JobStore.
func (o ops) JobStates(ctx context.Context) ([]db.JobState, error) {
	return listLeased(ctx, o, jobRows, scanJob)
}

// CreateJob implements db.JobStore.
func (o ops) CreateJob(ctx context.Context, name string, start, now time.Time) (bool, error) {
	res, err := o.exec(ctx, `INSERT INTO job (name, last_end, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		name, db.Micros(start), db.Micros(now))
	if err != nil {
		return false, fmt.Errorf("sqlite: create job %q: %w", name, o.s.translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: create job %q: %w", name, o.s.translate(err))
	}
	return n == 1, nil
}

const insertJobRunSQL = `
INSERT INTO job_run (job, window_start, window_end, status, attempt, worker, started_at, finished_at, error)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// pruneJobRunsSQL deletes the runs of job ?1 beyond its newest ?2 (the id
// of the first run to go is the one at offset ?2, newest first; none:
// NULL, and nothing is deleted). The index job_run_job serves both.
const pruneJobRunsSQL = `
DELETE FROM job_run WHERE job = ?1
   AND id <= (SELECT id FROM job_run WHERE job = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)`

// UpdateJob implements db.JobStore.
func (o ops) UpdateJob(ctx context.Context, p db.UpdateJobParams) (db.JobState, error) {
	set := []any{db.Micros(p.LastEnd), timeArg(p.WindowStart), timeArg(p.WindowEnd), p.Attempts, p.ClaimedBy,
		timeArg(p.LeaseUntil), timeArg(p.RetryAt), p.LastError, db.Micros(p.Now)}
	return updateLeased(ctx, o, jobRows, scanJob, p.Name, p.SerialNo, set, func(o ops) error {
		for _, r := range p.Runs {
			if _, err := o.exec(ctx, insertJobRunSQL, r.Job, db.Micros(r.WindowStart), db.Micros(r.WindowEnd),
				r.Status.String(), r.Attempt, r.Worker, timeArg(r.StartedAt), db.Micros(r.FinishedAt), r.Error); err != nil {
				return o.s.translate(err)
			}
		}
		if len(p.Runs) > 0 && p.KeepRuns > 0 {
			if _, err := o.exec(ctx, pruneJobRunsSQL, p.Name, p.KeepRuns); err != nil {
				return fmt.Errorf("prune history: %w", o.s.translate(err))
			}
		}
		return nil
	})
}

// RenewJobLease implements db.JobStore.
func (o ops) RenewJobLease(ctx context.Context, name string, serialNo int64, worker string, until time.Time) error {
	return o.renewLease(ctx, jobRows, name, serialNo, worker, until)
}

// scanJobRun reads a row of job_run (the columns of JobRuns).
func scanJobRun(sc scanner) (db.JobRun, error) {
	var (
		r           db.JobRun
		ws, we, fin int64
		started     sql.NullInt64
		status      string
	)
	if err := sc.Scan(&r.Job, &ws, &we, &status, &r.Attempt, &r.Worker, &started, &fin, &r.Error); err != nil {
		return r, err
	}
	var err error
	if r.Status, err = db.ParseJobRunStatus(status); err != nil {
		return r, err
	}
	r.WindowStart, r.WindowEnd, r.FinishedAt = db.FromMicros(ws), db.FromMicros(we), db.FromMicros(fin)
	r.StartedAt = nullTime(started)
	return r, nil
}

// JobRuns implements db.JobStore.
func (o ops) JobRuns(ctx context.Context, name string, limit int) ([]db.JobRun, error) {
	out, err := collect(scanJobRun)(o.query(ctx, `
SELECT job, window_start, window_end, status, attempt, worker, started_at, finished_at, error
  FROM job_run WHERE job = ? ORDER BY id DESC LIMIT ?`, name, limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: runs of job %q: %w", name, o.s.translate(err))
	}
	return out, nil
}

var _ db.JobStore = ops{}
