package cli

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s context not cancelled", what)
	}
}

func TestShutdownGrace(t *testing.T) {
	soft, hard, stop := Shutdown(t.Context(), 50*time.Millisecond, nil)
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitDone(t, soft, "soft")
	if got := context.Cause(soft); !errors.Is(got, ErrSignal) {
		t.Errorf("Cause(soft) = %v, want ErrSignal", got)
	}
	waitDone(t, hard, "hard")
	if got := context.Cause(hard); !errors.Is(got, ErrGraceExpired) {
		t.Errorf("Cause(hard) = %v, want ErrGraceExpired", got)
	}
}

func TestShutdownSecondSignal(t *testing.T) {
	soft, hard, stop := Shutdown(t.Context(), time.Hour, nil)
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitDone(t, soft, "soft")
	if hard.Err() != nil {
		t.Fatalf("hard cancelled after one signal: %v", context.Cause(hard))
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitDone(t, hard, "hard")
	if got := context.Cause(hard); !errors.Is(got, ErrGraceExpired) {
		t.Errorf("Cause(hard) = %v, want ErrGraceExpired", got)
	}
}

func TestShutdownStop(t *testing.T) {
	soft, hard, stop := Shutdown(context.Background(), time.Hour, nil)
	stop()
	if soft.Err() == nil || hard.Err() == nil {
		t.Errorf("after stop: soft %v, hard %v, want both cancelled", soft.Err(), hard.Err())
	}
}
