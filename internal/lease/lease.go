// Package lease is what the runners of leased rows share: package job's
// scheduled jobs and package subscriber's subscribers are rows of the
// store (db.LeasedTable) that a worker claims with a compare-and-set on
// their serial number and holds with a lease it renews while it works.
// The policies (what is due, retries, what a change stores) stay in those
// packages; this one has the loop that polls, the state read that creates
// a missing row, the renewal of a lease while work runs and the hand-back
// of a claim at shutdown.
package lease

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/winchester-go/winchester/db"
)

// Poll calls pass at once and then every interval until ctx is
// cancelled; a pass that takes longer than the interval is followed by
// the next one at once.
func Poll(ctx context.Context, interval time.Duration, pass func(ctx context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pass(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Load reads a row with read; when read reports db.ErrNotFound it creates
// the row with create (which returns no error when another worker created
// it meanwhile) and reads it again.
func Load[T any](ctx context.Context, read func(ctx context.Context) (T, error), create func(ctx context.Context) error) (T, error) {
	v, err := read(ctx)
	if errors.Is(err, db.ErrNotFound) {
		if err := create(ctx); err != nil {
			return v, err
		}
		v, err = read(ctx)
	}
	return v, err
}

// Hold runs work while holding a claim: every interval until work
// returns, it calls renew, which extends the lease. When renew reports
// the claim lost (an error matching db.ErrConflict: another worker took
// the row over, or it was changed under the claim), the context work runs
// with is cancelled and Hold reports lost. renew's other errors go to
// warn, unless the context is done, and renewal goes on. Hold returns
// once work has returned and renewal has stopped.
func Hold(ctx context.Context, interval time.Duration, renew func(ctx context.Context) error, warn func(err error),
	work func(ctx context.Context)) bool {
	var lost bool // written by the renewal, read once it has stopped
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-hctx.Done():
				return
			case <-t.C:
			}
			err := renew(hctx)
			if errors.Is(err, db.ErrConflict) {
				lost = true
				cancel()
				return
			}
			if err != nil && hctx.Err() == nil {
				warn(err)
			}
		}
	})
	func() {
		defer func() {
			close(stop)
			wg.Wait()
		}()
		work(hctx)
	}()
	return lost
}

// HandBack gives a claim back at shutdown, so that another worker takes
// the row over at once rather than when the lease runs out: it runs
// update (which stores the row without the claim) on a context that the
// cancellation of ctx does not reach. A claim already lost
// (db.ErrConflict) has nothing to give back: that is no error.
func HandBack(ctx context.Context, update func(ctx context.Context) error) error {
	if err := update(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, db.ErrConflict) {
		return err
	}
	return nil
}
