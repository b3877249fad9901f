// Package job runs scheduled jobs: work configured with a crontab schedule
// that must run once per window across every worker process sharing a
// database, as StoryBoard's cron plugins did with run(start_time,
// end_time), but durable and shared.
//
// # Windows
//
// A job's schedule cuts time into windows (start, end], each ending at a
// scheduled time and starting where the one before ended, so windows never
// overlap and leave no gap. The first window starts when a runner first
// sees the job. A window is due once its end has passed. The job's Func
// receives the window and must limit itself to it.
//
// After downtime several windows may be due at once; the catch-up policy
// decides: CatchUpAll runs them one by one, CatchUpLatest runs one window
// covering the whole gap, CatchUpSkip records the missed windows as one
// skipped run and runs only the most recent one.
//
// # Claiming: once per window across processes
//
// Each job has one row in the store (db.JobStore) holding the end of the
// last window done with, the current window, its attempts, the claim
// (worker and lease) and a serial number. Every change is a
// compare-and-set on the serial, as with streams:
//
//	last window done ──▶ due? ──CAS: claim (worker, lease)──▶ running
//	      ▲                                                    │ │ │
//	      │  CAS: completed (history row) ◀────────── success ─┘ │ │
//	      │  CAS: given up after max retries ◀── failure ────────┘ │
//	      │                  └─▶ CAS: retry at now+backoff ──▶ due again
//	      └── lease lapsed (worker died): any runner claims it again ─┘
//
// In detail:
//
//   - A runner reads the row, computes the due window and claims it with a
//     compare-and-set that sets the window, the attempt, itself and a
//     lease. Of several runners that read the same row, one wins; the
//     others get db.ErrConflict and drop the window.
//   - While the work runs, the runner renews the lease every third of it.
//     A renewal that finds the row changed cancels the work: another
//     runner rescued the window.
//   - The outcome is recorded with a compare-and-set on the serial of the
//     claim, together with a history row: completed (the next window
//     starts at this one's end), failed (retried after a backoff that
//     doubles per attempt) or given up (after MaxRetries; the job goes on
//     with its next window and the history keeps the error). A runner
//     whose claim was taken over meanwhile loses that compare-and-set and
//     drops its outcome.
//   - A runner that dies leaves its claim to lapse; any runner then claims
//     the same window again (the dead attempt counts). A window is
//     therefore run at least once and completed exactly once: the history
//     refuses a second completion of a window (a unique index), and the
//     row only moves forward by compare-and-set. Work that has side
//     effects should be idempotent for its window.
//   - At shutdown a running window is cancelled and handed back at once,
//     without counting the attempt.
//   - The history is bounded: the transaction that records a run deletes
//     the job's runs beyond its newest KeepHistory. The refusal of a
//     second completion needs only the newest windows' rows: the row
//     never moves back to a window older than those.
//
// Time comes from the runner's Clock, so tests run a day of windows on a
// virtual clock.
package job
