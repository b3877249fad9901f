package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/job"
)

// Jobs are the scheduled jobs the API offers (the engine's; see
// winchester.Engine.NewJobsAPI).
type Jobs interface {
	// Statuses returns every job with its progress.
	Statuses(ctx context.Context) ([]job.Status, error)
	// Runs returns up to limit runs of a job, newest first;
	// db.ErrNotFound when there is no such job.
	Runs(ctx context.Context, name string, limit int) ([]db.JobRun, error)
	// RunNow and RunWindow are job.Runner's.
	RunNow(ctx context.Context, name string) (db.JobRun, error)
	RunWindow(ctx context.Context, name string, start, end time.Time) (db.JobRun, error)
}

func (s *Server) getJobs(w http.ResponseWriter, r *http.Request) {
	if readParams(w, r) == nil {
		return
	}
	st, err := s.jobs.Statuses(r.Context())
	if err != nil {
		s.queryFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": st})
}

func (s *Server) getJobHistory(w http.ResponseWriter, r *http.Request) {
	p := readParams(w, r, "limit")
	if p == nil {
		return
	}
	limit := p.limit()
	if p.failed(w) {
		return
	}
	name := r.PathValue("name")
	runs, err := s.jobs.Runs(r.Context(), name, limit)
	if errors.Is(err, db.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no job %q", name)
		return
	}
	if err != nil {
		s.queryFailed(w, r, err)
		return
	}
	views := make([]job.RunView, len(runs))
	for i, run := range runs {
		views[i] = job.ViewRun(run)
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": views})
}

// runJob runs a job's next due window, or the window of window_start and
// window_end, and answers with the recorded run once it ended.
func (s *Server) runJob(w http.ResponseWriter, r *http.Request) {
	p := readParams(w, r, "window_start", "window_end")
	if p == nil {
		return
	}
	start, end := p.time("window_start"), p.time("window_end")
	if p.failed(w) {
		return
	}
	if start.IsZero() != end.IsZero() {
		writeError(w, http.StatusBadRequest, "give both window_start and window_end, or neither (the next due window)")
		return
	}
	name := r.PathValue("name")
	var (
		run db.JobRun
		err error
	)
	if start.IsZero() {
		run, err = s.jobs.RunNow(r.Context(), name)
	} else {
		run, err = s.jobs.RunWindow(r.Context(), name, start, end)
	}
	switch {
	case errors.Is(err, job.ErrUnknownJob):
		writeError(w, http.StatusNotFound, "no job %q", name)
		return
	case errors.Is(err, job.ErrDisabled), errors.Is(err, job.ErrNotDue), errors.Is(err, job.ErrBusy),
		errors.Is(err, job.ErrWindow), errors.Is(err, job.ErrLost):
		writeError(w, http.StatusConflict, "%v", err)
		return
	case err != nil:
		s.queryFailed(w, r, err)
		return
	}
	s.log.Info("http: job run", "job", name, "window_start", run.WindowStart, "window_end", run.WindowEnd, "status", run.Status.String())
	writeJSON(w, http.StatusOK, job.ViewRun(run))
}
