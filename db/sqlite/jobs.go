package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/winchester-go/winchester/db"
)

const jobColumns = `name, serial_no, last_end, window_start, window_end, attempts,
  claimed_by, lease_until, retry_at, last_error, updated_at`

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

const selectJobSQL = `SELECT ` + jobColumns + ` FROM job WHERE name = ?`

// JobState implements db.JobStore.
func (o ops) JobState(ctx context.Context, name string) (db.JobState, error) {
	j, err := scanJob(o.queryRow(ctx, selectJobSQL, name))
	if err != nil {
		return j, fmt.Errorf("sqlite: job %q: %w", name, o.s.translate(err))
	}
	return j, nil
}

// JobStates implements db.JobStore.
func (o ops) JobStates(ctx context.Context) ([]db.JobState, error) {
	out, err := collect(scanJob)(o.query(ctx, `SELECT `+jobColumns+` FROM job ORDER BY name`))
	if err != nil {
		return nil, fmt.Errorf("sqlite: jobs: %w", o.s.translate(err))
	}
	return out, nil
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

const updateJobSQL = `
UPDATE job SET serial_no = serial_no + 1, last_end = ?, window_start = ?, window_end = ?,
  attempts = ?, claimed_by = ?, lease_until = ?, retry_at = ?, last_error = ?, updated_at = ?
 WHERE name = ? AND serial_no = ?
RETURNING ` + jobColumns

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
	var j db.JobState
	err := o.atomic(ctx, func(o ops) error {
		var err error
		j, err = scanJob(o.queryRow(ctx, updateJobSQL, db.Micros(p.LastEnd), timeArg(p.WindowStart), timeArg(p.WindowEnd),
			p.Attempts, p.ClaimedBy, timeArg(p.LeaseUntil), timeArg(p.RetryAt), p.LastError, db.Micros(p.Now),
			p.Name, p.SerialNo))
		if errors.Is(err, sql.ErrNoRows) {
			if _, serr := scanJob(o.queryRow(ctx, selectJobSQL, p.Name)); serr == nil {
				return db.ErrConflict
			}
			return db.ErrNotFound
		}
		if err != nil {
			return o.s.translate(err)
		}
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
	if err != nil {
		return db.JobState{}, fmt.Errorf("sqlite: update job %q: %w", p.Name, err)
	}
	return j, nil
}

// RenewJobLease implements db.JobStore.
func (o ops) RenewJobLease(ctx context.Context, name string, serialNo int64, worker string, until time.Time) error {
	res, err := o.exec(ctx, `UPDATE job SET lease_until = ? WHERE name = ? AND serial_no = ? AND claimed_by = ? AND claimed_by <> ''`,
		db.Micros(until), name, serialNo, worker)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err == nil && n != 1 {
		err = db.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlite: renew lease of job %q: %w", name, o.s.translate(err))
	}
	return nil
}

// JobRuns implements db.JobStore.
func (o ops) JobRuns(ctx context.Context, name string, limit int) ([]db.JobRun, error) {
	rows, err := o.query(ctx, `
SELECT job, window_start, window_end, status, attempt, worker, started_at, finished_at, error
  FROM job_run WHERE job = ? ORDER BY id DESC LIMIT ?`, name, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: runs of job %q: %w", name, o.s.translate(err))
	}
	defer rows.Close()
	var out []db.JobRun
	for rows.Next() {
		var (
			r           db.JobRun
			ws, we, fin int64
			started     sql.NullInt64
			status      string
		)
		if err := rows.Scan(&r.Job, &ws, &we, &status, &r.Attempt, &r.Worker, &started, &fin, &r.Error); err != nil {
			return nil, fmt.Errorf("sqlite: runs of job %q: %w", name, o.s.translate(err))
		}
		if r.Status, err = db.ParseJobRunStatus(status); err != nil {
			return nil, err
		}
		r.WindowStart, r.WindowEnd, r.FinishedAt = db.FromMicros(ws), db.FromMicros(we), db.FromMicros(fin)
		r.StartedAt = nullTime(started)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: runs of job %q: %w", name, o.s.translate(err))
	}
	return out, nil
}

var _ db.JobStore = ops{}
