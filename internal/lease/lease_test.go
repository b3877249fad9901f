package lease

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
)

func TestPollRunsAtOnceAndUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var passes atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		Poll(ctx, time.Millisecond, func(ctx context.Context) {
			if passes.Add(1) == 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Poll did not return after its context was cancelled")
	}
	if n := passes.Load(); n != 3 {
		t.Errorf("Poll made %d passes, want 3 (none after the cancellation)", n)
	}
}

func TestLoad(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name               string
		stored             bool
		createErr, readErr error
		want               int
		wantErr            error
		wantCreates        int
	}{
		{name: "stored", stored: true, want: 1},
		{name: "created", want: 1, wantCreates: 1},
		{name: "create fails", createErr: boom, wantErr: boom, wantCreates: 1},
		{name: "read fails", readErr: boom, wantErr: boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stored, creates := tc.stored, 0
			read := func(context.Context) (int, error) {
				switch {
				case tc.readErr != nil:
					return 0, tc.readErr
				case !stored:
					return 0, fmt.Errorf("read: %w", db.ErrNotFound)
				}
				return 1, nil
			}
			create := func(context.Context) error {
				creates++
				if tc.createErr != nil {
					return tc.createErr
				}
				stored = true
				return nil
			}
			got, err := Load(t.Context(), read, create)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && got != tc.want) {
				t.Errorf("Load = %d, %v, want %d, %v", got, err, tc.want, tc.wantErr)
			}
			if creates != tc.wantCreates {
				t.Errorf("Load created %d times, want %d", creates, tc.wantCreates)
			}
		})
	}
}

func TestHoldRenewsUntilWorkReturns(t *testing.T) {
	var renewals atomic.Int32
	renew := func(context.Context) error { renewals.Add(1); return nil }
	lost := Hold(t.Context(), time.Millisecond, renew, func(err error) { t.Errorf("warned of %v", err) },
		func(ctx context.Context) {
			deadline := time.After(10 * time.Second)
			for renewals.Load() < 3 {
				select {
				case <-deadline:
					t.Error("the lease was not renewed while work ran")
					return
				case <-time.After(time.Millisecond):
				}
			}
		})
	if lost {
		t.Error("Hold reported the claim lost")
	}
	after := renewals.Load()
	time.Sleep(10 * time.Millisecond) // renewals would go on here if Hold left them running
	if n := renewals.Load(); n != after {
		t.Errorf("%d renewals after Hold returned", n-after)
	}
}

func TestHoldCancelsWorkWhenTheClaimIsLost(t *testing.T) {
	boom := errors.New("boom")
	var calls atomic.Int32
	renew := func(context.Context) error {
		if calls.Add(1) == 1 {
			return boom // retried
		}
		return fmt.Errorf("renew: %w", db.ErrConflict)
	}
	var warned []error
	lost := Hold(t.Context(), time.Millisecond, renew, func(err error) { warned = append(warned, err) },
		func(ctx context.Context) {
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Error("work was not cancelled when the claim was lost")
			}
		})
	if !lost {
		t.Error("Hold did not report the claim lost")
	}
	if len(warned) != 1 || !errors.Is(warned[0], boom) {
		t.Errorf("warned of %v, want [boom]", warned)
	}
}

func TestHoldQuietAfterCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	renew := func(ctx context.Context) error { return ctx.Err() }
	lost := Hold(ctx, time.Millisecond, renew, func(err error) { t.Errorf("warned of %v after the cancellation", err) },
		func(ctx context.Context) {
			cancel()
			time.Sleep(5 * time.Millisecond) // work that outlives its context a little
		})
	if lost {
		t.Error("Hold reported the claim lost at a cancellation")
	}
}

func TestHandBack(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		err     error
		wantErr error
	}{
		{name: "handed back"},
		{name: "already lost", err: fmt.Errorf("update: %w", db.ErrConflict)},
		{name: "fails", err: boom, wantErr: boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // shutdown
			var ctxErr error
			err := HandBack(ctx, func(ctx context.Context) error { ctxErr = ctx.Err(); return tc.err })
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("HandBack = %v, want %v", err, tc.wantErr)
			}
			if ctxErr != nil {
				t.Errorf("update ran on a cancelled context: %v", ctxErr)
			}
		})
	}
}
