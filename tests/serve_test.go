package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/metrics/metricstest"
	"github.com/winchester-go/winchester/stream"
)

// copyEtc copies the sample configuration to a temporary directory, with
// replacements applied to winchester.yaml, and returns the config path.
func copyEtc(t *testing.T, replace ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"winchester.yaml", "triggers.yaml", "pipelines.yaml", "event_definitions.yaml"} {
		data, err := os.ReadFile(filepath.Join(etcDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "winchester.yaml" {
			data = []byte(strings.NewReplacer(replace...).Replace(string(data)))
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "winchester.yaml")
}

// serveProcess is a running winchester serve.
type serveProcess struct {
	cmd  *exec.Cmd
	url  string
	done chan error
	mu   sync.Mutex
	log  bytes.Buffer
}

func (p *serveProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// startServe starts winchester serve on a free port and waits until it
// listens.
func startServe(t *testing.T, bin string, args ...string) *serveProcess {
	t.Helper()
	p := &serveProcess{done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct {
				Msg     string `json:"msg"`
				Address string `json:"address"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "http: listening" {
				addr <- rec.Address
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	select {
	case a := <-addr:
		p.url = "http://" + a
	case err := <-p.done:
		t.Fatalf("winchester serve exited before listening (%v):\n%s", err, p.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("winchester serve did not listen within a minute:\n%s", p.output())
	}
	return p
}

func httpDo(t *testing.T, method, url string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServe drives winchester serve end to end; the subtests share one
// build of the binary.
func TestServe(t *testing.T) {
	bin := buildCommand(t, "winchester")
	t.Run("quick start", func(t *testing.T) { t.Parallel(); testServeQuickStart(t, bin) })
	t.Run("SIGKILL loses no acknowledged event", func(t *testing.T) { t.Parallel(); testServeSIGKILL(t, bin) })
	t.Run("out-of-date schema", func(t *testing.T) { t.Parallel(); testServeRefusesOutOfDateSchema(t, bin) })
}

// testServeQuickStart is the README's quick start: serve on the SQLite
// default, POST etc/notifications.json, watch the sample trigger fire in
// the API, in winchester streams list and in /metrics; SIGTERM exits 0.
func testServeQuickStart(t *testing.T, bin string) {
	cfg := copyEtc(t, "pipeline_worker_delay: 10", "pipeline_worker_delay: 0.1")
	p := startServe(t, bin, "-c", cfg, "--keep-completed")

	sample, err := os.Open(filepath.Join(etcDir, "notifications.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer sample.Close()
	code, body := httpDo(t, "POST", p.url+"/v1/notifications", sample)
	if code != 200 || !strings.Contains(body, `"stored":3`) {
		t.Fatalf("POST etc/notifications.json = %d %s", code, body)
	}
	fired := `winchester_streams_processed_total{action="fire",result="ok",trigger="test_trigger"} 1`
	deadline := time.Now().Add(time.Minute)
	for {
		_, metrics := httpDo(t, "GET", p.url+"/metrics", nil)
		if strings.Contains(metrics, fired) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s after a minute:\n%s\nlog:\n%s", fired, metrics, p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, metrics := httpDo(t, "GET", p.url+"/metrics", nil)
	handled := `winchester_handler_duration_seconds_count{handler="logger",op="handle_events",pipeline="test_pipeline",trigger="test_trigger"} 1`
	if !strings.Contains(metrics, handled) {
		t.Errorf("/metrics lacks %s:\n%s", handled, metrics)
	}
	// The built-in jobs run beside the workers: their lag is reported and
	// the API lists them.
	if behind := `winchester_job_behind_seconds{job="rescue_stale_claims"}`; !strings.Contains(metrics, behind) {
		t.Errorf("/metrics lacks %s:\n%s", behind, metrics)
	}
	metricstest.Check(t, metrics)
	code, body = httpDo(t, "GET", p.url+"/v1/jobs", nil)
	if code != 200 || !strings.Contains(body, `"name":"rescue_stale_claims"`) {
		t.Errorf("GET /v1/jobs = %d %s, want the built-in jobs", code, body)
	}
	code, body = httpDo(t, "GET", p.url+"/v1/streams?state=completed&trigger=test_trigger", nil)
	if code != 200 || !strings.Contains(body, `"state":"completed"`) {
		t.Errorf("GET /v1/streams = %d %s, want the completed stream", code, body)
	}
	list := mustRunBin(t, bin, nil, "streams", "list", "-c", cfg, "--state", "completed")
	if !strings.Contains(list.stdout, "test_trigger") {
		t.Errorf("winchester streams list shows no completed test_trigger stream:\n%s", list.stdout)
	}
	if !strings.Contains(p.output(), `"action":"fire"`) {
		t.Errorf("the log does not show the stream firing:\n%s", p.output())
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("winchester serve exited with %v after SIGTERM, want 0:\n%s", err, p.output())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("winchester serve did not stop after SIGTERM:\n%s", p.output())
	}
	if !strings.Contains(p.output(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", p.output())
	}
}

// testServeSIGKILL kills serve with SIGKILL while clients are POSTing and
// finds every event it acknowledged stored.
func testServeSIGKILL(t *testing.T, bin string) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			var url string
			var open func() (db.Store, error)
			switch driver {
			case "sqlite":
				path := filepath.Join(t.TempDir(), "kill.db")
				url = "sqlite:///" + path
				open = func() (db.Store, error) {
					return sqlite.Open(context.Background(), "sqlite://"+path, db.Options{})
				}
			case "postgres":
				url = dbtest.PostgresURL(t)
				s, err := postgres.Open(t.Context(), url, db.Options{Migrate: true})
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				open = func() (db.Store, error) { return postgres.Open(context.Background(), url, db.Options{}) }
			}
			cfg := copyEtc(t)
			p := startServe(t, bin, "-c", cfg, "--database-url", url, "--no-workers")

			const clients = 8
			var mu sync.Mutex
			var acked []string
			ctx, stop := context.WithCancel(t.Context())
			defer stop()
			var wg sync.WaitGroup
			for c := range clients {
				wg.Go(func() {
					for i := 0; ctx.Err() == nil; i++ {
						id := fmt.Sprintf("kill-%d-%d", c, i)
						ev := fmt.Sprintf(`{"message_id": %q, "event_type": "compute.instance.update", "timestamp": %q, "instance_id": "i-%d"}`,
							id, stream.FormatTime(time.Now().UTC()), i%5)
						req, err := http.NewRequestWithContext(ctx, "POST", p.url+"/v1/events", strings.NewReader(ev))
						if err != nil {
							return
						}
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							return // killed
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == 200 {
							mu.Lock()
							acked = append(acked, id)
							mu.Unlock()
						}
					}
				})
			}
			deadline := time.Now().Add(time.Minute)
			for {
				mu.Lock()
				n := len(acked)
				mu.Unlock()
				if n >= 200 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("only %d events acknowledged in a minute:\n%s", n, p.output())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-p.done
			stop()
			wg.Wait()

			store, err := open()
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			for _, id := range acked {
				if _, err := store.EventByMessageID(t.Context(), id); err != nil {
					t.Errorf("acknowledged event %s not stored after SIGKILL: %v", id, err)
				}
			}
			t.Logf("%d acknowledged events, all stored", len(acked))
		})
	}
}

// testServeRefusesOutOfDateSchema: on PostgreSQL serve does not migrate;
// it names the command that does.
func testServeRefusesOutOfDateSchema(t *testing.T, bin string) {
	url := dbtest.PostgresURL(t)
	cfg := copyEtc(t)
	res := runBin(t, bin, nil, "serve", "-c", cfg, "--database-url", url, "--listen", "127.0.0.1:0")
	if res.code == 0 || !strings.Contains(res.stderr, "winchester_db") {
		t.Errorf("serve on an empty schema: exit %d\n%s\nwant a failure naming winchester_db", res.code, res.stderr)
	}
}
