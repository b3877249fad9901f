package dbtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
)

// jobStore returns the store's db.JobStore, failing the test when the
// driver does not implement it (both drivers do).
func jobStore(t *testing.T, s db.Store) db.JobStore {
	t.Helper()
	js, ok := s.(db.JobStore)
	if !ok {
		t.Fatalf("%T does not implement db.JobStore", s)
	}
	return js
}

// newJob creates job name starting at base and returns its state.
func newJob(t *testing.T, js db.JobStore, name string) db.JobState {
	t.Helper()
	created, err := js.CreateJob(t.Context(), name, base, base)
	if err != nil || !created {
		t.Fatalf("CreateJob(%s) = %v, %v; want created", name, created, err)
	}
	j, err := js.JobState(t.Context(), name)
	if err != nil {
		t.Fatalf("JobState(%s): %v", name, err)
	}
	return j
}

func exerciseJobs(t *testing.T, open OpenFunc) {
	t.Run("CreateAndRead", func(t *testing.T) {
		t.Parallel()
		js := jobStore(t, open(t))
		ctx := t.Context()
		if _, err := js.JobState(ctx, "nightly"); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("JobState(unknown) = %v, want ErrNotFound", err)
		}
		j := newJob(t, js, "nightly")
		want := db.JobState{Name: "nightly", LastEnd: base, UpdatedAt: base}
		if diff := cmp.Diff(want, j); diff != "" {
			t.Errorf("new job (-want +got):\n%s", diff)
		}
		created, err := js.CreateJob(ctx, "nightly", at(time.Hour), at(time.Hour))
		if err != nil || created {
			t.Fatalf("CreateJob(existing) = %v, %v; want false, nil", created, err)
		}
		if j2, _ := js.JobState(ctx, "nightly"); !j2.LastEnd.Equal(base) {
			t.Errorf("CreateJob(existing) changed last_end to %v", j2.LastEnd)
		}
		newJob(t, js, "hourly")
		all, err := js.JobStates(ctx)
		if err != nil || len(all) != 2 || all[0].Name != "hourly" || all[1].Name != "nightly" {
			t.Fatalf("JobStates = %+v, %v; want hourly, nightly", all, err)
		}
	})

	t.Run("UpdateIsACompareAndSet", func(t *testing.T) {
		t.Parallel()
		js := jobStore(t, open(t))
		ctx := t.Context()
		j := newJob(t, js, "nightly")
		claim := db.UpdateJobParams{
			Name: "nightly", SerialNo: j.SerialNo, LastEnd: base,
			WindowStart: base, WindowEnd: at(5 * time.Minute), Attempts: 1,
			ClaimedBy: "w1", LeaseUntil: at(10 * time.Minute), RetryAt: at(time.Minute),
			LastError: "boom", Now: at(6 * time.Minute),
		}
		got, err := js.UpdateJob(ctx, claim)
		if err != nil {
			t.Fatalf("UpdateJob: %v", err)
		}
		want := db.JobState{Name: "nightly", SerialNo: 1, LastEnd: base, WindowStart: base, WindowEnd: at(5 * time.Minute),
			Attempts: 1, ClaimedBy: "w1", LeaseUntil: at(10 * time.Minute), RetryAt: at(time.Minute), LastError: "boom",
			UpdatedAt: at(6 * time.Minute)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("UpdateJob result (-want +got):\n%s", diff)
		}
		if read, _ := js.JobState(ctx, "nightly"); cmp.Diff(want, read) != "" {
			t.Errorf("stored state (-want +got):\n%s", cmp.Diff(want, read))
		}

		// The same serial again: another process won; nothing is written.
		stale := claim
		stale.ClaimedBy = "w2"
		stale.Runs = []db.JobRun{{Job: "nightly", WindowStart: base, WindowEnd: at(5 * time.Minute), Status: db.JobCompleted, Attempt: 1, FinishedAt: at(7 * time.Minute)}}
		_, err = js.UpdateJob(ctx, stale)
		wantErr(t, "UpdateJob(stale serial)", err, db.ErrConflict)
		if read, _ := js.JobState(ctx, "nightly"); read.ClaimedBy != "w1" || read.SerialNo != 1 {
			t.Errorf("after a lost CAS: claimed_by %q serial %d, want w1 1", read.ClaimedBy, read.SerialNo)
		}
		if runs, err := js.JobRuns(ctx, "nightly", 10); err != nil || len(runs) != 0 {
			t.Errorf("runs after a lost CAS = %v, %v; want none", runs, err)
		}

		_, err = js.UpdateJob(ctx, db.UpdateJobParams{Name: "nope", LastEnd: base, Now: base})
		wantErr(t, "UpdateJob(unknown)", err, db.ErrNotFound)

		// Zero times are stored as none.
		got, err = js.UpdateJob(ctx, db.UpdateJobParams{Name: "nightly", SerialNo: 1, LastEnd: at(5 * time.Minute), Now: at(8 * time.Minute)})
		if err != nil {
			t.Fatalf("UpdateJob(release): %v", err)
		}
		want = db.JobState{Name: "nightly", SerialNo: 2, LastEnd: at(5 * time.Minute), UpdatedAt: at(8 * time.Minute)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("released (-want +got):\n%s", diff)
		}
	})

	t.Run("RunsAreRecordedWithTheUpdate", func(t *testing.T) {
		t.Parallel()
		js := jobStore(t, open(t))
		ctx := t.Context()
		j := newJob(t, js, "nightly")
		runs := []db.JobRun{
			{Job: "nightly", WindowStart: base, WindowEnd: at(5 * time.Minute), Status: db.JobSkipped, FinishedAt: at(11 * time.Minute)},
			{Job: "nightly", WindowStart: at(5 * time.Minute), WindowEnd: at(10 * time.Minute), Status: db.JobFailed, Attempt: 1,
				Worker: "w1", StartedAt: at(10 * time.Minute), FinishedAt: at(11 * time.Minute), Error: "boom"},
		}
		j, err := js.UpdateJob(ctx, db.UpdateJobParams{Name: "nightly", SerialNo: j.SerialNo, LastEnd: at(5 * time.Minute),
			WindowStart: at(5 * time.Minute), WindowEnd: at(10 * time.Minute), Attempts: 1, RetryAt: at(12 * time.Minute),
			LastError: "boom", Now: at(11 * time.Minute), Runs: runs})
		if err != nil {
			t.Fatalf("UpdateJob: %v", err)
		}
		done := db.JobRun{Job: "nightly", WindowStart: at(5 * time.Minute), WindowEnd: at(10 * time.Minute), Status: db.JobCompleted,
			Attempt: 2, Worker: "w2", StartedAt: at(12 * time.Minute), FinishedAt: at(13 * time.Minute)}
		j, err = js.UpdateJob(ctx, db.UpdateJobParams{Name: "nightly", SerialNo: j.SerialNo, LastEnd: at(10 * time.Minute),
			Now: at(13 * time.Minute), Runs: []db.JobRun{done}})
		if err != nil {
			t.Fatalf("UpdateJob(completed): %v", err)
		}
		got, err := js.JobRuns(ctx, "nightly", 10)
		if err != nil {
			t.Fatalf("JobRuns: %v", err)
		}
		want := []db.JobRun{done, runs[1], runs[0]}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("JobRuns, newest first (-want +got):\n%s", diff)
		}
		if got, _ := js.JobRuns(ctx, "nightly", 1); len(got) != 1 || got[0].Status != db.JobCompleted {
			t.Errorf("JobRuns(limit 1) = %+v, want the completed run", got)
		}

		// A window completes once: a second completed run is refused and
		// the update with it.
		again := done
		again.Worker = "w3"
		_, err = js.UpdateJob(ctx, db.UpdateJobParams{Name: "nightly", SerialNo: j.SerialNo, LastEnd: at(10 * time.Minute),
			Now: at(14 * time.Minute), Runs: []db.JobRun{again}})
		wantErr(t, "UpdateJob(second completion)", err, db.ErrDuplicate)
		if read, _ := js.JobState(ctx, "nightly"); read.SerialNo != j.SerialNo {
			t.Errorf("serial after a refused completion = %d, want %d", read.SerialNo, j.SerialNo)
		}
	})

	t.Run("HistoryIsBoundedByKeepRuns", func(t *testing.T) {
		t.Parallel()
		js := jobStore(t, open(t))
		ctx := t.Context()
		window := func(name string, i int) db.JobRun {
			return db.JobRun{Job: name, WindowStart: at(time.Duration(i) * time.Minute), WindowEnd: at(time.Duration(i+1) * time.Minute),
				Status: db.JobCompleted, Attempt: 1, Worker: "w1", FinishedAt: at(time.Duration(i+1) * time.Minute)}
		}
		states := map[string]db.JobState{"nightly": newJob(t, js, "nightly"), "other": newJob(t, js, "other")}
		record := func(name string, keep int, runs ...db.JobRun) {
			t.Helper()
			j, err := js.UpdateJob(ctx, db.UpdateJobParams{Name: name, SerialNo: states[name].SerialNo, LastEnd: base,
				Now: base, Runs: runs, KeepRuns: keep})
			if err != nil {
				t.Fatalf("UpdateJob(%s, keep %d, %d runs): %v", name, keep, len(runs), err)
			}
			states[name] = j
		}
		runs := func(name string) []db.JobRun {
			t.Helper()
			got, err := js.JobRuns(ctx, name, 100)
			if err != nil {
				t.Fatalf("JobRuns(%s): %v", name, err)
			}
			return got
		}
		record("other", 0, window("other", 0))
		record("other", 0, window("other", 1))
		for i := range 7 {
			record("nightly", 3, window("nightly", i))
		}
		want := []db.JobRun{window("nightly", 6), window("nightly", 5), window("nightly", 4)}
		if diff := cmp.Diff(want, runs("nightly")); diff != "" {
			t.Errorf("runs kept with KeepRuns 3, newest first (-want +got):\n%s", diff)
		}
		if got := runs("other"); len(got) != 2 {
			t.Errorf("another job's runs = %d, want its 2 (pruning is per job)", len(got))
		}

		// An update that records no run leaves the history alone.
		record("nightly", 1)
		if got := runs("nightly"); len(got) != 3 {
			t.Errorf("runs after an update without runs = %d, want 3", len(got))
		}
		// KeepRuns 0 keeps every run.
		record("nightly", 0, window("nightly", 7))
		if got := runs("nightly"); len(got) != 4 {
			t.Errorf("runs with KeepRuns 0 = %d, want 4", len(got))
		}
		// Several runs recorded at once count, the newest (the last) kept.
		record("nightly", 1, window("nightly", 8), window("nightly", 9))
		if diff := cmp.Diff([]db.JobRun{window("nightly", 9)}, runs("nightly")); diff != "" {
			t.Errorf("runs kept with KeepRuns 1 (-want +got):\n%s", diff)
		}
	})

	t.Run("RenewLease", func(t *testing.T) {
		t.Parallel()
		js := jobStore(t, open(t))
		ctx := t.Context()
		j := newJob(t, js, "nightly")
		if err := js.RenewJobLease(ctx, "nightly", j.SerialNo, "", at(time.Hour)); !errors.Is(err, db.ErrConflict) {
			t.Errorf("RenewJobLease(unclaimed) = %v, want ErrConflict", err)
		}
		j, err := js.UpdateJob(ctx, db.UpdateJobParams{Name: "nightly", SerialNo: j.SerialNo, LastEnd: base,
			WindowStart: base, WindowEnd: at(5 * time.Minute), Attempts: 1, ClaimedBy: "w1", LeaseUntil: at(10 * time.Minute), Now: base})
		if err != nil {
			t.Fatalf("UpdateJob(claim): %v", err)
		}
		if err := js.RenewJobLease(ctx, "nightly", j.SerialNo, "w1", at(20*time.Minute)); err != nil {
			t.Fatalf("RenewJobLease: %v", err)
		}
		read, _ := js.JobState(ctx, "nightly")
		if !read.LeaseUntil.Equal(at(20*time.Minute)) || read.SerialNo != j.SerialNo {
			t.Errorf("after renewal: lease %v serial %d, want %v %d", read.LeaseUntil, read.SerialNo, at(20*time.Minute), j.SerialNo)
		}
		for _, tc := range []struct {
			name   string
			serial int64
			worker string
		}{{"another worker", j.SerialNo, "w2"}, {"stale serial", j.SerialNo - 1, "w1"}, {"unknown job", j.SerialNo, "w1"}} {
			name := "nightly"
			if tc.name == "unknown job" {
				name = "nope"
			}
			if err := js.RenewJobLease(ctx, name, tc.serial, tc.worker, at(time.Hour)); !errors.Is(err, db.ErrConflict) {
				t.Errorf("RenewJobLease(%s) = %v, want ErrConflict", tc.name, err)
			}
		}
	})

	t.Run("InsideATransaction", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		js := jobStore(t, s)
		ctx := t.Context()
		j := newJob(t, js, "nightly")
		errRollback := errors.New("roll back")
		err := s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			tjs := tx.(db.JobStore)
			if _, err := tjs.UpdateJob(ctx, db.UpdateJobParams{Name: "nightly", SerialNo: j.SerialNo, LastEnd: at(time.Hour), Now: base,
				Runs: []db.JobRun{{Job: "nightly", WindowStart: base, WindowEnd: at(time.Hour), Status: db.JobCompleted, Attempt: 1, FinishedAt: base}}}); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("InTx = %v", err)
		}
		if read, _ := js.JobState(ctx, "nightly"); read.SerialNo != j.SerialNo || !read.LastEnd.Equal(base) {
			t.Errorf("rolled back update is visible: %+v", read)
		}
		if runs, _ := js.JobRuns(ctx, "nightly", 10); len(runs) != 0 {
			t.Errorf("rolled back runs are visible: %+v", runs)
		}
	})

	t.Run("OneClaimWins", func(t *testing.T) {
		t.Parallel()
		js := jobStore(t, open(t))
		ctx := t.Context()
		j := newJob(t, js, "nightly")
		errs := race(workers, func(i int) error {
			_, err := js.UpdateJob(ctx, db.UpdateJobParams{Name: "nightly", SerialNo: j.SerialNo, LastEnd: base,
				WindowStart: base, WindowEnd: at(5 * time.Minute), Attempts: 1, ClaimedBy: string(rune('a' + i)),
				LeaseUntil: at(time.Hour), Now: base})
			return err
		})
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, db.ErrConflict), errors.Is(err, db.ErrAborted):
			default:
				t.Errorf("UpdateJob: %v", err)
			}
		}
		if won != 1 {
			t.Errorf("%d claims won, want exactly 1", won)
		}
	})
}
