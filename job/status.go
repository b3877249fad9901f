package job

import (
	"time"

	"github.com/winchester-go/winchester/db"
)

// Status is a job as operators see it (winchester jobs list, the HTTP
// API): its configuration and its stored progress.
type Status struct {
	Name       string `json:"name"`
	Schedule   string `json:"schedule,omitempty"`
	Handler    string `json:"handler,omitempty"`
	Enabled    bool   `json:"enabled"`
	Builtin    bool   `json:"builtin,omitempty"`
	Configured bool   `json:"configured"`
	// State is new (never seen by a runner), idle, running (claimed until
	// LeaseUntil), retry (a failed window waiting for RetryAt) or
	// disabled; " (not configured)" is added for jobs the database keeps
	// that the configuration no longer names.
	State       string     `json:"state"`
	LastEnd     *time.Time `json:"last_end,omitempty"`
	WindowStart *time.Time `json:"window_start,omitempty"`
	WindowEnd   *time.Time `json:"window_end,omitempty"`
	// NextEnd is the end of the next window of an idle job.
	NextEnd    *time.Time `json:"next_window_end,omitempty"`
	Attempts   int        `json:"attempts,omitempty"`
	ClaimedBy  string     `json:"claimed_by,omitempty"`
	LeaseUntil *time.Time `json:"lease_until,omitempty"`
	RetryAt    *time.Time `json:"retry_at,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
}

// SetState fills s's progress from st (the job's stored state) at now;
// sched (zero: unknown) gives an idle job's next window.
func (s *Status) SetState(st db.JobState, sched Schedule, now time.Time) {
	s.LastEnd, s.WindowStart, s.WindowEnd = optionalTime(st.LastEnd), optionalTime(st.WindowStart), optionalTime(st.WindowEnd)
	s.Attempts, s.ClaimedBy, s.LeaseUntil, s.RetryAt, s.LastError = st.Attempts, st.ClaimedBy, optionalTime(st.LeaseUntil), optionalTime(st.RetryAt), st.LastError
	switch {
	case st.ClaimedBy != "" && st.LeaseUntil.After(now):
		s.State = "running"
	case !st.WindowEnd.IsZero():
		s.State = "retry"
	default:
		s.State = "idle"
		if !sched.IsZero() {
			s.NextEnd = optionalTime(sched.Next(st.LastEnd))
		}
	}
}

// Behind returns how long the job's oldest undone window has been due at
// now (the window running or waiting for a retry, else the next one): 0
// when nothing is due.
func Behind(st db.JobState, sched Schedule, now time.Time) time.Duration {
	due := st.WindowEnd
	if due.IsZero() && !sched.IsZero() {
		due = sched.Next(st.LastEnd)
	}
	if due.IsZero() || !now.After(due) {
		return 0
	}
	return now.Sub(due)
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// RunView is the JSON form of a recorded run (winchester jobs history,
// the HTTP API).
type RunView struct {
	WindowStart time.Time  `json:"window_start"`
	WindowEnd   time.Time  `json:"window_end"`
	Status      string     `json:"status"`
	Attempt     int        `json:"attempt,omitempty"`
	Worker      string     `json:"worker,omitempty"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  time.Time  `json:"finished_at"`
	DurationMS  *int64     `json:"duration_ms,omitempty"`
	Error       string     `json:"error,omitempty"`
}

// ViewRun returns the JSON form of r.
func ViewRun(r db.JobRun) RunView {
	v := RunView{WindowStart: r.WindowStart, WindowEnd: r.WindowEnd, Status: r.Status.String(), Attempt: r.Attempt,
		Worker: r.Worker, StartedAt: optionalTime(r.StartedAt), FinishedAt: r.FinishedAt, Error: r.Error}
	if !r.StartedAt.IsZero() {
		ms := r.FinishedAt.Sub(r.StartedAt).Milliseconds()
		v.DurationMS = &ms
	}
	return v
}
