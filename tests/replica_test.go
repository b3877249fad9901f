package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/metrics/metricstest"
	"github.com/winchester-go/winchester/stream"
)

// TestReadReplica runs winchester serve and the operator's commands with
// database.read_url pointing at a real streaming replica of the test
// database (tests/replica.sh; TEST_REPLICA_URL). The subtests pause the
// replica's replay, so they run one after the other, and each has its own
// schema.
func TestReadReplica(t *testing.T) {
	bin := buildCommand(t, "winchester")
	t.Run("reads from the replica while ingest writes to the primary", func(t *testing.T) { testReplicaReads(t, bin) })
	t.Run("writes through the read URL are refused", testReplicaRefusesWrites)
	t.Run("replica down", func(t *testing.T) { testReplicaDown(t, bin) })
	t.Run("replica unreachable at start", func(t *testing.T) { testReplicaUnreachableAtStart(t, bin) })
	t.Run("commands", func(t *testing.T) { testReplicaCommands(t, bin) })
}

// replicaSchema makes a migrated schema on the primary and returns its
// URL and the URL of the same schema on the replica, once replayed there.
func replicaSchema(t *testing.T) (primary, replica string) {
	t.Helper()
	primary = dbtest.PostgresURL(t)
	s, err := postgres.Open(t.Context(), primary, db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("migrate the test schema: %v", err)
	}
	_ = s.Close()
	return primary, dbtest.ReplicaURL(t, primary)
}

// replicaEvents returns n events with message ids prefix-0…, of the
// sample trigger's type.
func replicaEvents(prefix string, n int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"message_id": "%s-%d", "event_type": "compute.instance.exists", "timestamp": "2026-01-16T00:05:00",`+
			` "instance_id": "i-%s-%d", "tenant_id": "t-1"}`, prefix, i, prefix, i%5)
	}
	b.WriteString("]")
	return b.String()
}

// postEvents posts events and fails unless all were stored.
func postEvents(base, body string, want int) error {
	resp, err := http.Post(base+"/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), fmt.Sprintf(`"stored":%d`, want)) {
		return fmt.Errorf("POST /v1/events = %d %s, want %d stored", resp.StatusCode, b, want)
	}
	return nil
}

// eventCount asks the API how many events it sees.
func eventCount(t *testing.T, base string) int64 {
	t.Helper()
	code, body := httpDo(t, "GET", base+"/v1/events?count=true&limit=1", nil)
	if code != 200 {
		t.Fatalf("GET /v1/events?count=true = %d %s", code, body)
	}
	var a struct {
		Count *int64 `json:"count"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.Count == nil {
		t.Fatalf("GET /v1/events?count=true = %s: no count (%v)", body, err)
	}
	return *a.Count
}

// primaryCount counts the events of the schema on the primary.
func primaryCount(t *testing.T, primary string) int64 {
	t.Helper()
	s, err := postgres.Open(t.Context(), primary, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.CountEvents(t.Context(), db.FindEventsParams{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// gauge returns the value of an unlabelled metric on /metrics.
func gauge(t *testing.T, base, name string) (float64, bool) {
	t.Helper()
	_, body := httpDo(t, "GET", base+"/metrics", nil)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s %q: %v", name, m[1], err)
	}
	return v, true
}

// readyReplica is the read_replica object of /readyz.
type readyReplica struct {
	Status     string   `json:"status"`
	InRecovery *bool    `json:"in_recovery"`
	LagSeconds *float64 `json:"lag_seconds"`
	Error      string   `json:"error"`
}

func readyz(t *testing.T, base string) (int, readyReplica) {
	t.Helper()
	code, body := httpDo(t, "GET", base+"/readyz", nil)
	var a struct {
		Status      string        `json:"status"`
		ReadReplica *readyReplica `json:"read_replica"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.ReadReplica == nil {
		t.Fatalf("GET /readyz = %d %s: no read_replica (%v)", code, body, err)
	}
	return code, *a.ReadReplica
}

// testReplicaReads: with the replica's replay paused, the API keeps
// answering what the replica has while events go on being stored on the
// primary; once replay resumes it shows them. Only the replica can give
// those stale answers: the primary has the new events all along.
func testReplicaReads(t *testing.T, bin string) {
	primary, replica := replicaSchema(t)
	cfg := copyEtc(t)
	p := startServe(t, bin, "-c", cfg, "--database-url", primary, "--read-url", replica, "--no-workers")
	if !strings.Contains(p.output(), `"msg":"reading from a replica"`) || !strings.Contains(p.output(), `"in_recovery":true`) {
		t.Errorf("serve's log does not say it reads from a replica in recovery:\n%s", p.output())
	}
	if err := postEvents(p.url, replicaEvents("seed", 3), 3); err != nil {
		t.Fatal(err)
	}
	dbtest.WaitReplayed(t, primary, replica)
	if n := eventCount(t, p.url); n != 3 {
		t.Fatalf("GET /v1/events counts %d events once the replica replayed the 3 stored, want 3", n)
	}

	resume := dbtest.PauseReplay(t, replica)
	const batches, perBatch = 20, 10
	posted := make(chan int, batches)
	ingestErr := make(chan error, 1)
	go func() {
		defer close(posted)
		for i := range batches {
			if err := postEvents(p.url, replicaEvents(fmt.Sprintf("b%d", i), perBatch), perBatch); err != nil {
				ingestErr <- err
				return
			}
			posted <- i
		}
	}()
	reads := 0
	for range posted {
		// The ingest goes on while these read.
		if n := eventCount(t, p.url); n != 3 {
			t.Errorf("GET /v1/events counts %d events while the replica's replay is paused, want the 3 it replayed", n)
		}
		code, body := httpDo(t, "GET", p.url+"/v1/events/b0-0", nil)
		if code != 404 {
			t.Errorf("GET /v1/events/b0-0 = %d %s while the replica's replay is paused, want 404", code, body)
		}
		reads++
	}
	select {
	case err := <-ingestErr:
		t.Fatalf("ingest: %v", err)
	default:
	}
	want := int64(3 + batches*perBatch)
	if n := primaryCount(t, primary); n != want {
		t.Fatalf("the primary holds %d events, want %d", n, want)
	}
	if n := eventCount(t, p.url); n != 3 {
		t.Errorf("GET /v1/events counts %d events after the ingest, replay paused, want 3", n)
	}
	t.Logf("%d reads during the ingest of %d events", reads, batches*perBatch)

	// The replica is behind, and says so once it has received WAL it has
	// not replayed (the lag is 0 while it has replayed all it received;
	// on a busy machine the WAL may take a moment to arrive).
	deadline := time.Now().Add(time.Minute)
	for {
		code, rr := readyz(t, p.url)
		if code != 200 || rr.Status != "ok" || rr.InRecovery == nil || !*rr.InRecovery || rr.LagSeconds == nil {
			t.Fatalf("/readyz = %d %+v, want 200, status ok, in recovery, a lag", code, rr)
		}
		lag, ok := gauge(t, p.url, "winchester_replica_lag_seconds")
		if !ok {
			t.Fatal("/metrics has no winchester_replica_lag_seconds")
		}
		if *rr.LagSeconds > 0 && lag > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a minute into the paused replay, /readyz says a lag of %vs and winchester_replica_lag_seconds %v, want both above 0", *rr.LagSeconds, lag)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if up, ok := gauge(t, p.url, "winchester_replica_up"); !ok || up != 1 {
		t.Errorf("winchester_replica_up = %v (present %v), want 1", up, ok)
	}
	_, metrics := httpDo(t, "GET", p.url+"/metrics", nil)
	metricstest.Check(t, metrics)
	// The API's read sessions are on the replica.
	sessions := queryInt(t, replica, `SELECT count(*) FROM pg_stat_activity WHERE application_name = '`+postgres.ReadApplicationName+`'`)
	if sessions == 0 {
		t.Errorf("the replica has no %s session", postgres.ReadApplicationName)
	}

	resume()
	deadline = time.Now().Add(time.Minute)
	for eventCount(t, p.url) != want {
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/events does not count %d events a minute after replay resumed", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := httpDo(t, "GET", p.url+"/v1/events/b0-0", nil); code != 200 {
		t.Errorf("GET /v1/events/b0-0 = %d %s after replay resumed, want 200", code, body)
	}
}

// queryInt runs a query of one integer on its own connection.
func queryInt(t *testing.T, rawURL, sql string) int64 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var n int64
	if err := conn.QueryRow(t.Context(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// testReplicaRefusesWrites: a store opened on the read URL cannot write,
// whatever it is asked: the replica refuses.
func testReplicaRefusesWrites(t *testing.T) {
	_, replica := replicaSchema(t)
	rs, err := postgres.Open(t.Context(), replica, db.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ev := stream.Event{MessageID: "w-1", Type: "compute.instance.exists", Timestamp: time.Date(2026, 1, 16, 0, 0, 0, 0, time.UTC),
		Traits: map[string]stream.Value{}}
	_, err = rs.SaveEvents(t.Context(), []stream.Event{ev})
	if err == nil || !strings.Contains(err.Error(), "read-only transaction") {
		t.Errorf("SaveEvents through the read URL: %v, want the server's refusal (read-only transaction)", err)
	}
	err = rs.InTx(t.Context(), func(ctx context.Context, tx db.Ops) error {
		_, err := tx.PurgeEvents(ctx, []int64{1})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "read-only transaction") {
		t.Errorf("PurgeEvents in a transaction through the read URL: %v, want the server's refusal", err)
	}
	if _, err := postgres.Open(t.Context(), replica, db.Options{ReadOnly: true, Migrate: true}); err == nil {
		t.Error("a read-only store opened with Migrate, want an error")
	}
}

// proxy forwards TCP connections to a server until stopped; a stopped
// proxy refuses connections and has cut the ones it carried, as a server
// that went down.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target}
	p.start("127.0.0.1:0")
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
			go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
		}
	}()
}

func (p *proxy) stop() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// via returns rawURL with its host and port replaced by the proxy's.
func (p *proxy) via(t *testing.T, rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.addr
	return u.String()
}

// testReplicaDown: when the replica goes away, the reads answer 503
// naming it (they do not fall back to the primary), readiness stays 200
// with the replica's state, ingest goes on, and reads come back with it.
func testReplicaDown(t *testing.T, bin string) {
	primary, replica := replicaSchema(t)
	ru, err := url.Parse(replica)
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, ru.Host)
	p := startServe(t, bin, "-c", copyEtc(t), "--database-url", primary, "--read-url", px.via(t, replica), "--no-workers")
	if err := postEvents(p.url, replicaEvents("d", 2), 2); err != nil {
		t.Fatal(err)
	}
	if code, body := httpDo(t, "GET", p.url+"/v1/streams", nil); code != 200 {
		t.Fatalf("GET /v1/streams = %d %s with the replica up", code, body)
	}

	px.stop()
	code, body := httpDo(t, "GET", p.url+"/v1/events", nil)
	if code != 503 || !strings.Contains(body, "read replica unavailable") {
		t.Errorf("GET /v1/events with the replica down = %d %s, want 503 naming the read replica", code, body)
	}
	code, body = httpDo(t, "GET", p.url+"/v1/streams/1", nil)
	if code != 503 || !strings.Contains(body, "read replica unavailable") {
		t.Errorf("GET /v1/streams/1 with the replica down = %d %s, want 503 naming the read replica", code, body)
	}
	code, body = httpDo(t, "GET", p.url+"/ui/streams", nil)
	if code != 503 {
		t.Errorf("GET /ui/streams with the replica down = %d, want 503:\n%s", code, body)
	}
	code, rr := readyz(t, p.url)
	if code != 200 || rr.Status != "unavailable" || rr.Error == "" {
		t.Errorf("/readyz with the replica down = %d %+v, want 200 (the primary answers) and the replica unavailable", code, rr)
	}
	if up, ok := gauge(t, p.url, "winchester_replica_up"); !ok || up != 0 {
		t.Errorf("winchester_replica_up = %v (present %v) with the replica down, want 0", up, ok)
	}
	if _, ok := gauge(t, p.url, "winchester_replica_lag_seconds"); ok {
		t.Error("winchester_replica_lag_seconds is exported while the replica does not answer")
	}
	if err := postEvents(p.url, replicaEvents("down", 2), 2); err != nil {
		t.Errorf("ingest with the replica down: %v", err)
	}

	px.start(px.addr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := httpDo(t, "GET", p.url+"/v1/events/down-0", nil)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/events/down-0 = %d %s 30 s after the replica came back, want 200", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, rr := readyz(t, p.url); code != 200 || rr.Status != "ok" {
		t.Errorf("/readyz after the replica came back = %d %+v, want status ok", code, rr)
	}
}

// testReplicaUnreachableAtStart: serve refuses to start with a read URL
// nothing answers, naming it.
func testReplicaUnreachableAtStart(t *testing.T, bin string) {
	primary := dbtest.PostgresURL(t)
	s, err := postgres.Open(t.Context(), primary, db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close()
	res := runBin(t, bin, nil, "serve", "-c", copyEtc(t), "--database-url", primary, "--no-workers", "--listen", "127.0.0.1:0",
		"--read-url", "postgres://postgres@"+closed+"/test?sslmode=disable&connect_timeout=5")
	if res.code == 0 || !strings.Contains(res.stderr, "open read replica") || !strings.Contains(res.stderr, "database.read_url") {
		t.Errorf("serve with an unreachable read URL: exit %d\n%s\nwant a failure naming the read replica", res.code, res.stderr)
	}
}

// testReplicaCommands: winchester events list/show and check read the
// replica given by --read-url (or database.read_url), and --read-url ”
// reads the primary.
func testReplicaCommands(t *testing.T, bin string) {
	primary, replica := replicaSchema(t)
	cfg := copyEtc(t)
	ps, err := postgres.Open(t.Context(), primary, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	save := func(id string) {
		t.Helper()
		ev := stream.Event{MessageID: id, Type: "compute.instance.exists", Timestamp: time.Date(2026, 1, 16, 0, 0, 0, 0, time.UTC),
			Traits: map[string]stream.Value{}}
		if _, err := ps.SaveEvents(t.Context(), []stream.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	save("before")
	dbtest.WaitReplayed(t, primary, replica)
	dbtest.PauseReplay(t, replica)
	save("after")

	list := func(readURL string) string {
		t.Helper()
		return mustRunBin(t, bin, nil, "events", "list", "-c", cfg, "--database-url", primary, "--read-url", readURL, "-o", "json").stdout
	}
	if out := list(replica); !strings.Contains(out, `"before"`) || strings.Contains(out, `"after"`) {
		t.Errorf("events list --read-url REPLICA, replay paused: want the event before the pause only:\n%s", out)
	}
	if out := list(""); !strings.Contains(out, `"before"`) || !strings.Contains(out, `"after"`) {
		t.Errorf("events list --read-url '': want both events, from the primary:\n%s", out)
	}
	res := runBin(t, bin, nil, "events", "show", "-c", cfg, "--database-url", primary, "--read-url", replica, "after")
	if res.code == 0 {
		t.Errorf("events show --read-url REPLICA after (not replayed yet): exit 0, want not found:\n%s", res.stdout)
	}
	if res := runBin(t, bin, nil, "explain", "event", "-c", cfg, "--database-url", primary, "--read-url", replica, "after"); res.code == 0 {
		t.Errorf("explain event --read-url REPLICA after (not replayed yet): exit 0, want not found:\n%s", res.stdout)
	}
	mustRunBin(t, bin, nil, "explain", "event", "-c", cfg, "--database-url", primary, "--read-url", "", "after")
	// database.read_url in the file does the same as the flag.
	withKey := copyEtc(t, "#database:", "database:\n    read_url: "+replica+"\n#database:")
	mustRunBin(t, bin, nil, "streams", "list", "-c", withKey, "--database-url", primary)
	ev := mustRunBin(t, bin, nil, "events", "list", "-c", withKey, "--database-url", primary, "-o", "json").stdout
	if strings.Contains(ev, `"after"`) {
		t.Errorf("events list with database.read_url: shows the event not replayed yet:\n%s", ev)
	}

	chk := mustRunBin(t, bin, nil, "check", "-c", cfg, "--database-url", primary, "--read-url", replica, "--connect")
	if !strings.Contains(chk.stdout, "in recovery") {
		t.Errorf("check --connect --read-url REPLICA does not report the replica in recovery:\n%s", chk.stdout)
	}
	// A read URL that is a primary is accepted with a warning.
	chk = mustRunBin(t, bin, nil, "check", "-c", cfg, "--database-url", primary, "--read-url", primary, "--connect")
	if !strings.Contains(chk.stdout+chk.stderr, "not a replica in recovery") {
		t.Errorf("check --connect --read-url PRIMARY does not warn that it is no replica:\n%s%s", chk.stdout, chk.stderr)
	}
}
