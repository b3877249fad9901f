package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// moduleRoot returns the directory of the main module (the checkout the
// server is built from).
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the winchester module: run from the checkout")
	}
	return filepath.Dir(mod), nil
}

// build builds winchester and winchester_db from the checkout at root into dir.
func build(ctx context.Context, root, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/winchester", "./cmd/winchester_db")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build winchester: %w\n%s", err, out)
	}
	return nil
}

// database is the soak's own PostgreSQL database.
type database struct {
	name, url         string
	adminURL          string
	synchronousCommit string // as the soak's sessions see it
	fsync             string
	autovacuum        string
}

// createDatabase creates a database of its own on the server of adminURL,
// with synchronous_commit set to syncCommit for every session, and reads
// back the settings a session of it runs with.
func createDatabase(ctx context.Context, adminURL, syncCommit string) (*database, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	d := &database{name: fmt.Sprintf("winchester_soak_%s_%d", time.Now().UTC().Format("20060102150405"), os.Getpid()), adminURL: adminURL}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", redact(adminURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{d.name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database %s: %w", d.name, err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s SET synchronous_commit = %s", pgx.Identifier{d.name}.Sanitize(), quoteLiteral(syncCommit))); err != nil {
		return nil, errors.Join(fmt.Errorf("set synchronous_commit: %w", err), d.drop(context.WithoutCancel(ctx)))
	}
	u.Path = "/" + d.name
	d.url = u.String()
	if err := d.readSettings(ctx); err != nil {
		return nil, errors.Join(err, d.drop(context.WithoutCancel(ctx)))
	}
	if d.synchronousCommit != syncCommit {
		return nil, errors.Join(fmt.Errorf("synchronous_commit is %q in the soak database, not %q", d.synchronousCommit, syncCommit), d.drop(context.WithoutCancel(ctx)))
	}
	return d, nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// readSettings reads synchronous_commit and fsync as a new session of the
// database sees them (the server reads the database's settings the same way).
func (d *database) readSettings(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.url)
	if err != nil {
		return fmt.Errorf("connect %s: %w", redact(d.url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.QueryRow(ctx, "SELECT current_setting('synchronous_commit'), current_setting('fsync'), current_setting('autovacuum')").Scan(&d.synchronousCommit, &d.fsync, &d.autovacuum); err != nil {
		return fmt.Errorf("read settings: %w", err)
	}
	return nil
}

// vacuumLoop runs VACUUM ANALYZE on the tables ingest and the workers
// churn, every interval until ctx ends, as autovacuum would; failures are
// reported and the loop goes on.
func (d *database) vacuumLoop(ctx context.Context, every time.Duration, w io.Writer) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := d.vacuum(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintln(w, "soak: vacuum:", err)
		}
	}
}

func (d *database) vacuum(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.url)
	if err != nil {
		return fmt.Errorf("connect %s: %w", redact(d.url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, table := range []string{"stream", "stream_event", "event"} {
		if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			return fmt.Errorf("vacuum analyze %s: %w", table, err)
		}
	}
	return nil
}

func (d *database) drop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.adminURL)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", d.name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.name, err)
	}
	return nil
}

// redact hides the password of a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// The soak's trigger: a stream per instance that fires one second after
// its second compute.instance.exists event and expires five seconds after
// its last event otherwise, so that streams keep completing within seconds
// of their events and their deadlines fall during the soak. Timestamps are
// set to the sending time, so the deadlines are wall-clock times.
const soakTriggers = `- name: soak
  distinguished_by:
  - instance_id
  expiration: "$last + 5s"
  fire_delay: 1
  fire_pipeline: soak_fire
  expire_pipeline: soak_expire
  match_criteria:
  - event_type: compute.instance.*
  fire_criteria:
  - event_type: compute.instance.exists
    number: 2
`

const soakPipelines = `soak_fire:
    - logger
soak_expire:
    - logger
`

// serverConfig is what the soak's winchester.yaml says.
type serverConfig struct {
	databaseURL string
	listen      string
	workers     int
	amqp        *amqpTarget // nil: no consumer
}

// writeConfig writes winchester.yaml, its trigger and pipeline files and a
// copy of the checkout's event definitions into dir and returns the path
// of winchester.yaml. Pipelines log at info, below the configured level,
// so the logger handler costs little.
func writeConfig(root, dir string, c serverConfig) (string, error) {
	defs, err := os.ReadFile(filepath.Join(root, "etc", "event_definitions.yaml"))
	if err != nil {
		return "", fmt.Errorf("event definitions: %w", err)
	}
	var y bytes.Buffer
	fmt.Fprintf(&y, "database:\n  url: %q\n", c.databaseURL)
	fmt.Fprintf(&y, "log_level: warning\nstatistics_period: 60\n")
	fmt.Fprintf(&y, "pipeline_worker_batch_size: 1000\npipeline_worker_delay: 200ms\n")
	fmt.Fprintf(&y, "distiller_config: event_definitions.yaml\ntrigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\n")
	fmt.Fprintf(&y, "pipeline_handlers:\n  logger: logger\n")
	fmt.Fprintf(&y, "serve:\n  workers: %d\n", c.workers)
	fmt.Fprintf(&y, "http:\n  listen: %q\n", c.listen)
	if c.amqp != nil {
		fmt.Fprintf(&y, "consumers:\n  - name: soak\n    url: %q\n    exchange: %q\n    queue: %q\n    binding_keys: [%s]\n",
			c.amqp.url, c.amqp.exchange, c.amqp.queue, routingKey)
	}
	files := map[string][]byte{
		"winchester.yaml":        y.Bytes(),
		"triggers.yaml":          []byte(soakTriggers),
		"pipelines.yaml":         []byte(soakPipelines),
		"event_definitions.yaml": defs,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return "", fmt.Errorf("write %s: %w", name, err)
		}
	}
	return filepath.Join(dir, "winchester.yaml"), nil
}

// freeListen returns a 127.0.0.1 address with a port free at the time of
// the call.
func freeListen() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// server is the running winchester serve process.
type server struct {
	cmd     *exec.Cmd
	base    string // http://host:port
	logPath string
	exited  chan error
}

// startServer migrates the database with winchester_db and starts
// winchester serve, then waits until /readyz answers 200.
func startServer(ctx context.Context, bin, cfgPath, listen string) (*server, error) {
	dir := filepath.Dir(cfgPath)
	if out, err := exec.CommandContext(ctx, filepath.Join(bin, "winchester_db"), "-c", cfgPath, "upgrade", "head").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("winchester_db upgrade head: %w\n%s", err, out)
	}
	logPath := filepath.Join(dir, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("serve log: %w", err)
	}
	cmd := exec.Command(filepath.Join(bin, "winchester"), "serve", "-c", cfgPath, "-n", "soak")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start winchester serve: %w", err)
	}
	s := &server{cmd: cmd, base: "http://" + listen, logPath: logPath, exited: make(chan error, 1)}
	go func() {
		s.exited <- cmd.Wait()
		logf.Close()
	}()
	deadline := time.Now().Add(90 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-s.exited:
			s.exited <- err
			return nil, fmt.Errorf("winchester serve exited before it was ready (%v); log: %s\n%s", err, logPath, tail(logPath))
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), s.stop())
		case <-time.After(100 * time.Millisecond):
		}
		if ready(ctx, client, s.base+"/readyz") {
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, errors.Join(fmt.Errorf("winchester serve not ready after 90 s; log: %s\n%s", logPath, tail(logPath)), s.stop())
		}
	}
}

func ready(ctx context.Context, client *http.Client, u string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGTERM and waits for the process to exit (it drains within
// its shutdown_grace), killing it after a minute.
func (s *server) stop() error {
	select {
	case err := <-s.exited:
		s.exited <- err
		return fmt.Errorf("winchester serve had exited (%v); log: %s\n%s", err, s.logPath, tail(s.logPath))
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop winchester serve: %w", err)
	}
	select {
	case err := <-s.exited:
		s.exited <- err
		if err != nil {
			return fmt.Errorf("winchester serve: %w; log: %s\n%s", err, s.logPath, tail(s.logPath))
		}
		return nil
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		return fmt.Errorf("winchester serve did not stop within a minute of SIGTERM; killed")
	}
}

// running reports an error when the process has exited.
func (s *server) running() error {
	select {
	case err := <-s.exited:
		s.exited <- err
		return fmt.Errorf("winchester serve exited (%v); log: %s\n%s", err, s.logPath, tail(s.logPath))
	default:
		return nil
	}
}

// tail returns the last lines of a log file for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
