package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
)

const jobColumns = `name, serial_no, last_end, window_start, window_end, attempts,
  claimed_by, lease_until, retry_at, last_error, updated_at`

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

const selectJob = `SELECT ` + jobColumns + ` FROM job WHERE name = $1`

// JobState implements db.JobStore.
func (o *ops) JobState(ctx context.Context, name string) (db.JobState, error) {
	j, err := scanJob(o.q.QueryRow(ctx, selectJob, name))
	if err != nil {
		return j, fmt.Errorf("postgres: job %q: %w", name, err)
	}
	return j, nil
}

// JobStates implements db.JobStore.
func (o *ops) JobStates(ctx context.Context) ([]db.JobState, error) {
	rows, err := o.q.Query(ctx, `SELECT `+jobColumns+` FROM job ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: jobs: %w", interpretError(err))
	}
	defer rows.Close()
	var out []db.JobState
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: jobs: %w", interpretError(err))
	}
	return out, nil
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

const updateJob = `
UPDATE job SET serial_no = serial_no + 1, last_end = $3, window_start = $4, window_end = $5,
  attempts = $6, claimed_by = $7, lease_until = $8, retry_at = $9, last_error = $10, updated_at = $11
 WHERE name = $1 AND serial_no = $2
RETURNING ` + jobColumns

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
	var j db.JobState
	err := o.inTx(ctx, func(q querier) error {
		var err error
		j, err = scanJob(q.QueryRow(ctx, updateJob, p.Name, p.SerialNo, db.Micros(p.LastEnd),
			optMicros(p.WindowStart), optMicros(p.WindowEnd), p.Attempts, p.ClaimedBy,
			optMicros(p.LeaseUntil), optMicros(p.RetryAt), p.LastError, db.Micros(p.Now)))
		if errors.Is(err, db.ErrNotFound) {
			if _, serr := scanJob(q.QueryRow(ctx, selectJob, p.Name)); serr == nil {
				return db.ErrConflict
			}
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
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
	if err != nil {
		return db.JobState{}, fmt.Errorf("postgres: update job %q: %w", p.Name, err)
	}
	return j, nil
}

// RenewJobLease implements db.JobStore.
func (o *ops) RenewJobLease(ctx context.Context, name string, serialNo int64, worker string, until time.Time) error {
	tag, err := o.q.Exec(ctx, `UPDATE job SET lease_until = $4 WHERE name = $1 AND serial_no = $2 AND claimed_by = $3 AND claimed_by <> ''`,
		name, serialNo, worker, db.Micros(until))
	if err == nil && tag.RowsAffected() != 1 {
		err = db.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("postgres: renew lease of job %q: %w", name, interpretError(err))
	}
	return nil
}

// JobRuns implements db.JobStore.
func (o *ops) JobRuns(ctx context.Context, name string, limit int) ([]db.JobRun, error) {
	rows, err := o.q.Query(ctx, `
SELECT job, window_start, window_end, status, attempt, worker, started_at, finished_at, error
  FROM job_run WHERE job = $1 ORDER BY id DESC LIMIT $2`, name, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: runs of job %q: %w", name, interpretError(err))
	}
	defer rows.Close()
	var out []db.JobRun
	for rows.Next() {
		var (
			r           db.JobRun
			ws, we, fin int64
			started     *int64
			status      string
		)
		if err := rows.Scan(&r.Job, &ws, &we, &status, &r.Attempt, &r.Worker, &started, &fin, &r.Error); err != nil {
			return nil, fmt.Errorf("postgres: runs of job %q: %w", name, interpretError(err))
		}
		if r.Status, err = db.ParseJobRunStatus(status); err != nil {
			return nil, err
		}
		r.WindowStart, r.WindowEnd, r.FinishedAt = db.FromMicros(ws), db.FromMicros(we), db.FromMicros(fin)
		r.StartedAt = optTime(started)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: runs of job %q: %w", name, interpretError(err))
	}
	return out, nil
}

var _ db.JobStore = (*ops)(nil)
