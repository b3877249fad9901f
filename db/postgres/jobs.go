package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
)

// scanJob reads a row of db.JobTable (its Columns).
func scanJob(row pgx.Row) (db.JobState, error) {
	var (
		j                          db.JobState
		lastEnd, updated           int64
		wStart, wEnd, lease, retry *int64
	)
	err := row.Scan(&j.Name, &j.SerialNo, &lastEnd, &wStart, &wEnd, &j.Attempts,
		&j.ClaimedBy, &lease, &retry, &j.LastError, &updated)
	if err != nil {
		return j, interpretError(err)
	}
	j.LastEnd = db.FromMicros(lastEnd)
	j.WindowStart, j.WindowEnd = optTime(wStart), optTime(wEnd)
	j.LeaseUntil, j.RetryAt = optTime(lease), optTime(retry)
	j.UpdatedAt = db.FromMicros(updated)
	return j, nil
}

// JobState implements db.JobStore.
func (o *ops) JobState(ctx context.Context, name string) (db.JobState, error) {
	return readLeased(ctx, o, jobRows, scanJob, name)
}

// JobStates implements db.JobStore.
func (o *ops) JobStates(ctx context.Context) ([]db.JobState, error) {
	return listLeased(ctx, o, jobRows, scanJob)
}

const insertJob = `INSERT INTO job (name, last_end, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`

// CreateJob implements db.JobStore.
func (o *ops) CreateJob(ctx context.Context, name string, start, now time.Time) (bool, error) {
	tag, err := o.q.Exec(ctx, insertJob, name, db.Micros(start), db.Micros(now))
	if err != nil {
		return false, fmt.Errorf("postgres: create job %q: %w", name, interpretError(err))
	}
	return tag.RowsAffected() == 1, nil
}

const insertJobRun = `
INSERT INTO job_run (job, window_start, window_end, status, attempt, worker, started_at, finished_at, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// pruneJobRuns deletes the runs of job $1 beyond its newest $2 (the id of
// the first run to go is the one at offset $2, newest first; none: NULL,
// and nothing is deleted). The index job_run_job serves both.
const pruneJobRuns = `
DELETE FROM job_run WHERE job = $1
   AND id <= (SELECT id FROM job_run WHERE job = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)`

// UpdateJob implements db.JobStore.
func (o *ops) UpdateJob(ctx context.Context, p db.UpdateJobParams) (db.JobState, error) {
	set := []any{db.Micros(p.LastEnd), optMicros(p.WindowStart), optMicros(p.WindowEnd), p.Attempts, p.ClaimedBy,
		optMicros(p.LeaseUntil), optMicros(p.RetryAt), p.LastError, db.Micros(p.Now)}
	return updateLeased(ctx, o, jobRows, scanJob, p.Name, p.SerialNo, set, func(q querier) error {
		for _, r := range p.Runs {
			if _, err := q.Exec(ctx, insertJobRun, r.Job, db.Micros(r.WindowStart), db.Micros(r.WindowEnd),
				r.Status.String(), r.Attempt, r.Worker, optMicros(r.StartedAt), db.Micros(r.FinishedAt), r.Error); err != nil {
				return interpretError(err)
			}
		}
		if len(p.Runs) > 0 && p.KeepRuns > 0 {
			if _, err := q.Exec(ctx, pruneJobRuns, p.Name, p.KeepRuns); err != nil {
				return fmt.Errorf("prune history: %w", interpretError(err))
			}
		}
		return nil
	})
}

// RenewJobLease implements db.JobStore.
func (o *ops) RenewJobLease(ctx context.Context, name string, serialNo int64, worker string, until time.Time) error {
	return o.renewLease(ctx, jobRows, name, serialNo, worker, until)
}

// scanJobRun reads a row of job_run (the columns of JobRuns).
func scanJobRun(row pgx.Row) (db.JobRun, error) {
	var (
		r           db.JobRun
		ws, we, fin int64
		started     *int64
		status      string
	)
	if err := row.Scan(&r.Job, &ws, &we, &status, &r.Attempt, &r.Worker, &started, &fin, &r.Error); err != nil {
		return r, interpretError(err)
	}
	var err error
	if r.Status, err = db.ParseJobRunStatus(status); err != nil {
		return r, err
	}
	r.WindowStart, r.WindowEnd, r.FinishedAt = db.FromMicros(ws), db.FromMicros(we), db.FromMicros(fin)
	r.StartedAt = optTime(started)
	return r, nil
}

// JobRuns implements db.JobStore.
func (o *ops) JobRuns(ctx context.Context, name string, limit int) ([]db.JobRun, error) {
	out, err := collect(scanJobRun)(o.q.Query(ctx, `
SELECT job, window_start, window_end, status, attempt, worker, started_at, finished_at, error
  FROM job_run WHERE job = $1 ORDER BY id DESC LIMIT $2`, name, limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: runs of job %q: %w", name, err)
	}
	return out, nil
}

var _ db.JobStore = (*ops)(nil)
