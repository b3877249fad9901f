package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/httpapi"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// browser starts one headless Chromium for the test and returns a tab's
// context. Without chromium on PATH the test is skipped, except in CI
// (CI set), where it fails: .ci/run installs Debian's chromium.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is not installed (apt-get install chromium): %v", err)
		}
		t.Skipf("chromium is not installed (apt-get install chromium); the browser tests need it: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // containers and root: Chromium's sandbox needs privileges they lack
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// artifacts returns the directory screenshots go to: under
// $WINCHESTER_ARTIFACTS when set (kept by CI), else a temporary one.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if base := os.Getenv("WINCHESTER_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, "console")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// run runs browser actions with a time bound, failing the test with what
// was being done.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs one browser action that returns a value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := value(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return strings.TrimSpace(value(t, ctx, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
}

func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	return value(t, ctx, "count "+sel, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
}

func jsString(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// TestBrowser drives the console in a real headless Chromium: log in,
// the overview's counts after a known ingest, a filter narrowing the
// streams list, a stream page, the reset button, and a screenshot of
// every page.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	dir := artifacts(t)
	b := setup(t, httpapi.Config{}, true)
	b.ingestKnown(t, writeToken)
	failed := b.fail(t, b.streamOf(t, "per_instance", "instance_id", "i-3"), "webhook https://billing.example/usage: 503 Service Unavailable")
	waiting := b.streamOf(t, "per_instance", "instance_id", "i-2")
	t.Logf("screenshots in %s", dir)
	// What this process's workers did, as they report it.
	for i, ok := range []bool{true, true, true, false} {
		b.met.ObserveAttempt(pipeline.Attempt{
			Action: db.Fire, Trigger: "per_instance", OK: ok, Duration: 40 * time.Millisecond,
			Stream: stream.Stream{FireTimestamp: time.Now().Add(-time.Duration(i+1) * 300 * time.Millisecond)},
		})
	}

	// Log in through the form; the browser keeps the cookie.
	run(t, ctx, "log in",
		chromedp.Navigate(b.url+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), adminToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("states")),
	)

	// The overview's counts are those of the known ingest.
	for sel, want := range map[string]string{"#count-active": "3", "#count-error": "1", "#count-total": "4", "#count-completed": "0"} {
		if got := text(t, ctx, sel); got != want {
			t.Errorf("overview %s = %q, want %q", sel, got, want)
		}
	}
	if got := text(t, ctx, "#outcomes"); !strings.Contains(strings.Join(strings.Fields(got), " "), "per_instance 3 0 1 0") {
		t.Errorf("overview's outcomes = %q, want per_instance with 3 fired, 0 expired, 1 errored", got)
	}
	if got := text(t, ctx, "#errors"); !strings.Contains(got, "503 Service Unavailable") {
		t.Errorf("overview's recent errors = %q, want the failed stream's error", got)
	}
	screenshot(t, ctx, dir, "overview")

	// A filter narrows the streams list.
	run(t, ctx, "open streams", chromedp.Navigate(b.url+"/ui/streams"), chromedp.WaitVisible(chromedp.ID("streams")))
	if n := count(t, ctx, "tr.stream"); n != 4 {
		t.Errorf("streams list has %d rows, want 4", n)
	}
	screenshot(t, ctx, dir, "streams")
	// The old page is marked, so the wait is for the new one.
	value(t, ctx, "mark the page", chromedp.Evaluate[bool](`document.body.dataset.old = "1"; true`))
	run(t, ctx, "filter by trigger",
		chromedp.SetValue(chromedp.ID("f-trigger"), "per_tenant"),
		chromedp.Click(chromedp.ID("apply")),
		chromedp.WaitNotPresent(chromedp.CSS("body[data-old]")),
		chromedp.WaitVisible(chromedp.ID("streams")),
	)
	loc := value(t, ctx, "read the location", chromedp.Location())
	if !strings.Contains(loc, "trigger=per_tenant") {
		t.Errorf("after filtering the page is %s, want the filter in the URL", loc)
	}
	if n := count(t, ctx, "tr.stream"); n != 1 {
		t.Errorf("filtered streams list has %d rows, want 1", n)
	}
	if got := text(t, ctx, "#streams"); !strings.Contains(got, "tenant_id=t-1") || strings.Contains(got, "instance_id") {
		t.Errorf("filtered streams list = %q, want only the per_tenant stream", got)
	}

	// A waiting stream's page: its events and what it waits for.
	run(t, ctx, "open a waiting stream", chromedp.Navigate(b.url+"/ui/streams/"+itoa(waiting.ID)), chromedp.WaitVisible(chromedp.ID("timeline")))
	if got := text(t, ctx, "#timeline"); !strings.Contains(got, "compute.instance.create.start") {
		t.Errorf("timeline = %q", got)
	}
	// Its explanation names the fire criterion it still misses.
	if got := text(t, ctx, "#left"); !strings.Contains(got, "waiting for 1 more compute.instance.exists") {
		t.Errorf("explanation says %q, want it waiting for 1 more compute.instance.exists", got)
	}
	if got := text(t, ctx, "#fire-criteria tr.unmet"); !strings.Contains(got, "compute.instance.exists") || !strings.Contains(got, "missing 1") {
		t.Errorf("unmet fire criterion row = %q, want compute.instance.exists missing 1", got)
	}
	screenshot(t, ctx, dir, "stream")

	// The reset button moves a stream in error to retry.
	run(t, ctx, "open the failed stream", chromedp.Navigate(b.url+"/ui/streams/"+itoa(failed.ID)), chromedp.WaitVisible(chromedp.ID("reset")))
	if got := text(t, ctx, "#state"); got != "error" {
		t.Fatalf("failed stream's state shows %q, want error", got)
	}
	screenshot(t, ctx, dir, "stream-error")
	run(t, ctx, "reset", chromedp.Click(chromedp.ID("reset")), chromedp.WaitVisible(chromedp.ID("notice")))
	if got := text(t, ctx, "#state"); got != "retry_fire" {
		t.Errorf("after reset the page shows state %q, want retry_fire", got)
	}
	if n := count(t, ctx, "#reset"); n != 0 {
		t.Errorf("after reset the page still has a reset button")
	}
	if got, err := b.store.StreamByID(t.Context(), failed.ID); err != nil || got.State != stream.StateRetryFire {
		t.Errorf("after reset the stored stream is %v (%v), want retry_fire", got.State, err)
	}

	run(t, ctx, "open events", chromedp.Navigate(b.url+"/ui/events"), chromedp.WaitVisible(chromedp.ID("events")))
	if n := count(t, ctx, "tr.event"); n != 4 {
		t.Errorf("events list has %d rows, want 4", n)
	}
	screenshot(t, ctx, dir, "events")
	run(t, ctx, "open an event", chromedp.Navigate(b.url+"/ui/events/m-2"), chromedp.WaitVisible(chromedp.ID("traits")))
	screenshot(t, ctx, dir, "event")
	run(t, ctx, "open triggers", chromedp.Navigate(b.url+"/ui/triggers"), chromedp.WaitVisible(chromedp.ID("jobs")))
	screenshot(t, ctx, dir, "triggers")
}
