package job

import (
	"context"
	"fmt"
	"time"
)

// Func is a job's work: it must do what falls in the window (start, end]
// and nothing else, and honour ctx (cancelled at the time limit, when the
// claim is lost, or at shutdown). A returned error fails the run, which
// is retried with backoff. A window may run more than once when a worker
// dies after the work but before recording it (at least once), so the
// work should be idempotent for its window.
type Func func(ctx context.Context, start, end time.Time) error

// CatchUp says what happens to the windows a job missed while nothing ran
// it (all workers were down).
type CatchUp int

// Catch-up policies.
const (
	// CatchUpAll runs every missed window, one after the other.
	CatchUpAll CatchUp = iota + 1
	// CatchUpLatest runs one window covering the whole gap.
	CatchUpLatest
	// CatchUpSkip records the missed windows as skipped and runs only the
	// most recent one.
	CatchUpSkip
)

var catchUpNames = map[CatchUp]string{CatchUpAll: "all", CatchUpLatest: "latest", CatchUpSkip: "skip"}

// String returns the configuration name of c.
func (c CatchUp) String() string {
	if n, ok := catchUpNames[c]; ok {
		return n
	}
	return fmt.Sprintf("CatchUp(%d)", int(c))
}

// ParseCatchUp reads a catch-up policy name: all, latest or skip.
func ParseCatchUp(name string) (CatchUp, error) {
	for c, n := range catchUpNames {
		if n == name {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown catch_up %q (want all, latest or skip)", name)
}

// Defaults of a job's settings.
const (
	// DefaultTimeout is a run's time limit.
	DefaultTimeout = 30 * time.Minute
	// DefaultMaxRetries is how many times a failed window is run again
	// before the job gives up on it and moves on.
	DefaultMaxRetries = 3
	// DefaultRetryBackoff is the delay before the first retry; it doubles
	// with every further one.
	DefaultRetryBackoff = 30 * time.Second
	// DefaultCatchUp is the catch-up policy.
	DefaultCatchUp = CatchUpLatest
	// DefaultKeepHistory is how many runs of a job the history keeps.
	DefaultKeepHistory = 1000
)

// Definition is a configured job.
type Definition struct {
	Name     string
	Schedule Schedule
	Func     Func
	// Disabled jobs are never run (and keep no state).
	Disabled bool
	// Timeout is a run's time limit (0: DefaultTimeout).
	Timeout time.Duration
	// MaxRetries is how many times a failed window is run again; after
	// that the run is recorded as given up and the job goes on with its
	// next window. 0: DefaultMaxRetries; negative: no retries.
	MaxRetries int
	// RetryBackoff is the delay before the first retry (0:
	// DefaultRetryBackoff); it doubles with every further retry.
	RetryBackoff time.Duration
	// CatchUp is the policy for missed windows (0: DefaultCatchUp).
	CatchUp CatchUp
	// KeepHistory is how many of the job's newest runs the history keeps
	// (0: DefaultKeepHistory): recording a run deletes the older ones in
	// the same transaction.
	KeepHistory int
}

func (d Definition) withDefaults() Definition {
	if d.Timeout <= 0 {
		d.Timeout = DefaultTimeout
	}
	switch {
	case d.MaxRetries == 0:
		d.MaxRetries = DefaultMaxRetries
	case d.MaxRetries < 0:
		d.MaxRetries = 0
	}
	if d.RetryBackoff <= 0 {
		d.RetryBackoff = DefaultRetryBackoff
	}
	if d.CatchUp == 0 {
		d.CatchUp = DefaultCatchUp
	}
	if d.KeepHistory <= 0 {
		d.KeepHistory = DefaultKeepHistory
	}
	return d
}
