package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
)

// runBenchArgs runs the root command with args and returns its standard
// output and error streams.
func runBenchArgs(t *testing.T, args ...string) (string, string) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("winchester %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String()
}

func TestBenchGenerate(t *testing.T) {
	t.Parallel()
	defs := filepath.Join("..", "..", "etc", "event_definitions.yaml")
	tests := []struct {
		name     string
		args     []string
		wantKind string
	}{
		{name: "notifications", args: []string{"bench", "generate", "--instances", "4", "--days", "2", "--seed", "9"}, wantKind: "notifications"},
		{name: "events", args: []string{"bench", "generate", "--instances", "4", "--days", "2", "--seed", "9", "--events", "--definitions", defs}, wantKind: "events"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out1, err1 := runBenchArgs(t, tc.args...)
			out2, _ := runBenchArgs(t, tc.args...)
			if out1 != out2 {
				t.Errorf("two runs of %v differ", tc.args)
			}
			lines := strings.Count(out1, "\n")
			if want := tc.wantKind + ": " + strconv.Itoa(lines) + "\n"; err1 != want {
				t.Errorf("stderr = %q, want %q", err1, want)
			}
			if lines == 0 {
				t.Errorf("%v wrote nothing", tc.args)
			}
			file := filepath.Join(t.TempDir(), "out.jsonl")
			runBenchArgs(t, append(tc.args, "-o", file)...)
		})
	}
}

func TestBenchIngest(t *testing.T) {
	t.Parallel()
	etc := filepath.Join("..", "..", "etc")
	for _, mode := range []string{"events", "notifications"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			args := []string{"bench", "ingest", "--instances", "20", "--days", "2", "--batch", "50",
				"--definitions", filepath.Join(etc, "event_definitions.yaml"), "--triggers", filepath.Join(etc, "triggers.yaml"),
				"--database-url", "sqlite:///" + filepath.Join(t.TempDir(), "w.db")}
			if mode == "notifications" {
				args = append(args, "--notifications")
			}
			out, _ := runBenchArgs(t, args...)
			if !strings.Contains(out, "duplicates 0, rejected 0") || !strings.Contains(out, mode+"/s") {
				t.Errorf("bench ingest output:\n%s\nwant no duplicates or rejections and a rate in %s/s", out, mode)
			}
		})
	}
}

func TestRetryBlips(t *testing.T) {
	t.Parallel()
	blip := fmt.Errorf("connection reset: %w", db.ErrUnavailable)
	tests := []struct {
		name        string
		errs        []error // returned by successive calls; then nil
		retryFor    time.Duration
		wantRetries int
		wantErr     error
	}{
		{name: "no blip", wantRetries: 0},
		{name: "two blips then success", errs: []error{blip, fmt.Errorf("busy: %w", db.ErrAborted)}, retryFor: time.Minute, wantRetries: 2},
		{name: "not a blip", errs: []error{errors.New("syntax error")}, retryFor: time.Minute, wantErr: errors.New("syntax error")},
		{name: "blips beyond retry-for", errs: []error{blip, blip, blip, blip, blip}, retryFor: 150 * time.Millisecond, wantErr: db.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			calls, notified := 0, 0
			retries, err := retryBlips(t.Context(), tc.retryFor, func() error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			}, func(error, time.Duration) { notified++ })
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("retryBlips = %v", err)
			case tc.wantErr != nil && (err == nil || !strings.Contains(err.Error(), tc.wantErr.Error()) && !errors.Is(err, tc.wantErr)):
				t.Fatalf("retryBlips = %v, want %v", err, tc.wantErr)
			case tc.wantErr == nil && (retries != tc.wantRetries || notified != tc.wantRetries):
				t.Errorf("retries = %d, notified %d, want %d", retries, notified, tc.wantRetries)
			}
		})
	}
}

// bench ingest survives database blips: while it runs, its PostgreSQL
// connections are terminated five times; the failed batches are retried
// until they are stored, and nothing is lost.
func TestBenchIngestSurvivesBlips(t *testing.T) {
	base := dbtest.PostgresURL(t)
	app := fmt.Sprintf("winchester_bench_blip_%d", time.Now().UnixNano())
	url := base + "&application_name=" + app
	if err := (postgres.Driver{}).Migrate(t.Context(), base, db.Head); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.WithoutCancel(t.Context()))
	stop := make(chan struct{})
	killed := make(chan int, 1)
	go func() {
		n := 0
		defer func() { killed <- n }()
		for n < 5 {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			var k int
			if err := admin.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&k); err == nil {
				n += k
			}
		}
	}()
	etc := filepath.Join("..", "..", "etc")
	out, errOut := runBenchArgs(t, "bench", "ingest", "--instances", "60", "--days", "2", "--batch", "5", "-o", "json", "--migrate=false",
		"--definitions", filepath.Join(etc, "event_definitions.yaml"), "--triggers", filepath.Join(etc, "triggers.yaml"),
		"--database-url", url)
	close(stop)
	n := <-killed
	var sum benchIngestJSON
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("bench ingest -o json printed %q: %v", out, err)
	}
	t.Logf("%d connections terminated, %d retries", n, sum.Retries)
	if sum.Stored+sum.Duplicates != sum.Items || sum.Rejected != 0 {
		t.Errorf("stored %d + duplicates %d != %d items (rejected %d)\n%s", sum.Stored, sum.Duplicates, sum.Items, sum.Rejected, errOut)
	}
	if n > 0 && sum.Retries == 0 {
		t.Errorf("%d connections terminated but no batch retried", n)
	}
	if sum.Retries > 0 && !strings.Contains(errOut, "retrying in") {
		t.Errorf("retries not reported on stderr:\n%s", errOut)
	}
}
