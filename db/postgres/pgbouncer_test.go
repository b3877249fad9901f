package postgres_test

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
)

// TestExercisePgBouncer runs the storage suite through a real PgBouncer
// in pool_mode=transaction (each transaction may run on another server
// connection, and nothing of a session survives its transaction) with the
// exec modes such a pooler needs. In CI a missing pgbouncer fails the
// test; elsewhere it skips.
func TestExercisePgBouncer(t *testing.T) {
	addr := startPgBouncer(t)
	for _, mode := range []string{"exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			open := func(t *testing.T) db.Store {
				return openURL(t, withParam(t, throughBouncer(t, databases.URL(t), addr), "default_query_exec_mode", mode))
			}
			t.Run("Exercise", func(t *testing.T) {
				t.Parallel()
				dbtest.Exercise(t, open)
			})
			t.Run("Batch", func(t *testing.T) {
				t.Parallel()
				dbtest.ExerciseBatch(t, open)
			})
		})
	}
}

// throughBouncer returns rawURL with its host and port replaced by addr.
func throughBouncer(t *testing.T, rawURL, addr string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse test database URL: %v", err)
	}
	u.Host = addr
	return u.String()
}

// startPgBouncer starts PgBouncer in transaction pooling in front of the
// server of TEST_DATABASE_URL, on a port of its own on 127.0.0.1, with its
// configuration in a temporary directory, and stops it in t.Cleanup. It
// returns the address to connect to; every database name is passed
// through to the server.
func startPgBouncer(t *testing.T) string {
	t.Helper()
	server, err := pgx.ParseConfig(databases.URL(t)) // skips the test without a database
	if err != nil {
		t.Fatalf("parse test database URL: %v", err)
	}
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/pgbouncer"); serr == nil {
			bin, err = "/usr/sbin/pgbouncer", nil
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgbouncer is not installed but CI is set: the PgBouncer tests must run in CI (apt-get install pgbouncer; .ci/run does it)")
		}
		t.Skip("pgbouncer not installed (apt-get install pgbouncer): PgBouncer test skipped")
	}
	// PgBouncer refuses to run as root: it then switches to another user,
	// who must be able to read the configuration.
	var runAs []string
	if os.Geteuid() == 0 {
		name := "postgres"
		if _, err := user.Lookup(name); err != nil {
			name = "nobody"
		}
		runAs = []string{"-u", name}
	}
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	users := filepath.Join(dir, "users.txt")
	config := fmt.Sprintf(`[databases]
* = host=%s port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = 8
max_client_conn = 1000
server_idle_timeout = 10
`, server.Host, server.Port, port, users)
	if err := os.WriteFile(users, fmt.Appendf(nil, "%q \"\"\n", server.User), 0o644); err != nil {
		t.Fatal(err)
	}
	ini := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(ini, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd := exec.Command(bin, append(runAs, ini)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("pgbouncer output:\n%s", out.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return addr
		}
		select {
		case err := <-exited:
			t.Fatalf("pgbouncer exited at start (%v):\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer did not listen on %s within 15s:\n%s", addr, out.String())
		}
	}
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
