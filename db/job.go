package db

import (
	"context"
	"fmt"
	"time"
)

// JobStore is the optional capability of storing scheduled jobs: one row
// per job holding its progress through its windows, guarded by a serial
// number like a stream's state_serial_no, and a history of runs. Both
// drivers implement it on their Store and on the Ops given to InTx;
// dbtest.Exercise specifies it. The policy (which window is due, claims,
// retries, catch-up) lives in package job: the store only compares and
// sets.
type JobStore interface {
	// JobState returns the state of job name; ErrNotFound when the job has
	// none yet.
	JobState(ctx context.Context, name string) (JobState, error)
	// JobStates returns the state of every job, by name.
	JobStates(ctx context.Context) ([]JobState, error)
	// CreateJob inserts the state of a new job, serial 0, whose first
	// window starts at start. created is false, and nothing is written,
	// when the job has a state already (another process created it).
	CreateJob(ctx context.Context, name string, start, now time.Time) (created bool, err error)
	// UpdateJob is the compare-and-set of every job change: if the job's
	// serial is p.SerialNo it stores p's fields, increments the serial and
	// inserts p.Runs into the history, all in one transaction, and returns
	// the state as now stored. ErrConflict when the serial differs (another
	// process changed the job), ErrNotFound when the job has no state. A
	// second completed run of the same window is refused with ErrDuplicate
	// (and nothing is written): the history itself keeps a window from
	// completing twice. With p.KeepRuns set, runs beyond the job's newest
	// p.KeepRuns are deleted in the same transaction.
	UpdateJob(ctx context.Context, p UpdateJobParams) (JobState, error)
	// RenewJobLease moves the lease of the job's current claim to until,
	// only if the job's serial is serialNo and worker holds the claim; the
	// serial is unchanged. ErrConflict otherwise: the claim was lost.
	RenewJobLease(ctx context.Context, name string, serialNo int64, worker string, until time.Time) error
	// JobRuns returns up to limit runs of job name, newest first.
	JobRuns(ctx context.Context, name string, limit int) ([]JobRun, error)
}

// JobState is the stored progress of a scheduled job. Windows are
// half-open intervals (start, end]: a job's windows follow each other
// without gap or overlap, each starting at the end of the one before.
type JobState struct {
	Name     string
	SerialNo int64
	// LastEnd is the end of the last window that is done with (completed,
	// given up or skipped): the next window starts here.
	LastEnd time.Time
	// WindowStart and WindowEnd are the window being run or waiting for a
	// retry; zero when there is none.
	WindowStart, WindowEnd time.Time
	// Attempts counts the runs of the current window so far.
	Attempts int
	// ClaimedBy is the worker running the current window ("" when none);
	// its claim holds until LeaseUntil.
	ClaimedBy  string
	LeaseUntil time.Time
	// RetryAt is the earliest time a failed window is run again.
	RetryAt time.Time
	// LastError is the error of the last failed run ("" after a success).
	LastError string
	UpdatedAt time.Time
}

// UpdateJobParams are the new values of a job (every mutable field; see
// JobState) and the runs to record with them.
type UpdateJobParams struct {
	Name     string
	SerialNo int64 // the serial read: the compare of the compare-and-set
	LastEnd  time.Time
	// WindowStart and WindowEnd are the current window (zero: none).
	WindowStart, WindowEnd time.Time
	Attempts               int
	ClaimedBy              string
	LeaseUntil             time.Time
	RetryAt                time.Time
	LastError              string
	Now                    time.Time
	Runs                   []JobRun
	// KeepRuns, when positive, bounds the job's history: once Runs are
	// inserted, the job's runs beyond the newest KeepRuns are deleted in
	// the same transaction. 0 keeps every run.
	KeepRuns int
}

// JobRun is one recorded run (or skip) of a job's window.
type JobRun struct {
	Job                    string
	WindowStart, WindowEnd time.Time
	Status                 JobRunStatus
	Attempt                int    // 1 for the first run of the window
	Worker                 string // "" for skipped windows
	StartedAt, FinishedAt  time.Time
	Error                  string
}

// JobRunStatus is the outcome of a recorded run, stored by name.
type JobRunStatus int

// Outcomes of job runs.
const (
	// JobCompleted: the run succeeded; the window is done.
	JobCompleted JobRunStatus = iota + 1
	// JobFailed: the run failed; the window is run again after a backoff.
	JobFailed
	// JobGaveUp: the run failed and no retries were left; the job moved
	// on to its next window.
	JobGaveUp
	// JobSkipped: the window was not run (catch-up policy skip).
	JobSkipped
)

var jobRunStatusNames = map[JobRunStatus]string{
	JobCompleted: "completed", JobFailed: "failed", JobGaveUp: "gave_up", JobSkipped: "skipped",
}

// String returns the stored name of s.
func (s JobRunStatus) String() string {
	if n, ok := jobRunStatusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("JobRunStatus(%d)", int(s))
}

// ParseJobRunStatus reads a stored status name.
func ParseJobRunStatus(name string) (JobRunStatus, error) {
	for s, n := range jobRunStatusNames {
		if n == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("db: unknown job run status %q", name)
}
