package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/winchester-go/winchester"
)

// Causes of the contexts returned by Shutdown.
var (
	// ErrSignal is the cause of the soft context: SIGINT or SIGTERM arrived.
	ErrSignal = errors.New("shutdown requested by signal")
	// ErrGraceExpired is the cause of the hard context: the grace period
	// after the first signal ran out, or a second signal arrived.
	ErrGraceExpired = errors.New("shutdown grace period over")
)

// Shutdown implements the two stop modes of a daemon. soft is cancelled
// (cause ErrSignal) on the first SIGINT or SIGTERM: stop taking new work.
// hard is cancelled (cause ErrGraceExpired) grace later, or at once on a
// second signal: cancel the work in flight. Both are cancelled when parent
// is. stop releases the signal handlers and must be called.
func Shutdown(parent context.Context, grace time.Duration, logger *slog.Logger) (soft, hard context.Context, stop func()) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hardCtx, cancelHard := context.WithCancelCause(parent)
	softCtx, cancelSoft := context.WithCancelCause(hardCtx)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var timer <-chan time.Time
		for {
			select {
			case <-done:
				return
			case <-hardCtx.Done():
				return
			case s := <-sigs:
				if softCtx.Err() == nil {
					logger.Info("shutting down: finishing work in flight", "signal", s.String(), "grace", grace.String())
					cancelSoft(ErrSignal)
					t := time.NewTimer(grace)
					defer t.Stop()
					timer = t.C
					continue
				}
				logger.Warn("second signal: cancelling work in flight", "signal", s.String())
				cancelHard(ErrGraceExpired)
				return
			case <-timer:
				logger.Warn("shutdown grace period over: cancelling work in flight", "grace", grace.String())
				cancelHard(ErrGraceExpired)
				return
			}
		}
	}()
	stop = func() {
		signal.Stop(sigs)
		select {
		case <-done:
		default:
			close(done)
		}
		<-finished
		cancelSoft(context.Canceled)
		cancelHard(context.Canceled)
	}
	return softCtx, hardCtx, stop
}

// RunDefinitions keeps a long-running process's live definitions current
// until ctx ends: it polls for new versions (Engine.RunDefinitions) and,
// on SIGHUP, reads the configured files again and applies them when
// definitions.source is files (invalid files are logged and change
// nothing). It returns nil when ctx is cancelled.
func RunDefinitions(ctx context.Context, eng *winchester.Engine, logger *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan error, 1)
	go func() { done <- eng.RunDefinitions(ctx) }()
	for {
		select {
		case err := <-done:
			return err
		case <-hup:
			if eng.Config.Definitions.Source != winchester.DefinitionsFromFiles {
				logger.Warn("SIGHUP ignored: definitions.source is not files; apply definitions with winchester definitions apply")
				continue
			}
			res, err := eng.ReloadFiles(ctx)
			if err != nil {
				logger.Error("SIGHUP: the definition files were not applied", "error", err)
				continue
			}
			logger.Info("SIGHUP: definition files read again", "version", res.Version, "new_version", res.Created,
				"changes", len(res.Changes))
		}
	}
}
