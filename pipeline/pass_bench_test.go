package pipeline_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// BenchmarkPass measures one worker over passStreams streams ready to
// fire (three events each) with the logger pipeline, on PostgreSQL with
// durable commits (synchronous_commit=on, whatever the test URL says). The
// worker has the daemon's defaults (batch size 1000, completed streams
// purged) and WINCHESTER_BENCH_CONCURRENCY slots (4 by default). Creating
// the streams is not timed. Two modes:
//
//   - mode=pass runs Pass until a pass finds nothing (each pass waits for
//     its streams before the next one claims);
//   - mode=run runs the worker's Run loop, as pipeline_worker does (a pass
//     claims again once its streams have started), until every stream is
//     fired.
//
// The store talks to PostgreSQL through a proxy that counts the
// statements the client sends (Execute and simple Query messages of the
// wire protocol, BEGIN and COMMIT included), so statements/stream counts
// every round trip of the timed part whatever the driver does.
//
// The file uses only APIs older than the batched passes, so that the same
// benchmark runs on an older checkout (bench/river compares two).
//
//	go test ./pipeline -run='^$' -bench=BenchmarkPass$ -benchtime=1x
func BenchmarkPass(b *testing.B) {
	for _, mode := range []string{"pass", "run"} {
		b.Run("mode="+mode, func(b *testing.B) { benchPass(b, mode == "run") })
	}
}

func benchPass(b *testing.B, useRun bool) {
	n := passStreams
	if v := os.Getenv("WINCHESTER_BENCH_STREAMS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	conc := 4
	if v := os.Getenv("WINCHESTER_BENCH_CONCURRENCY"); v != "" {
		conc, _ = strconv.Atoi(v)
	}
	proxy := startStatementCounter(b, dbtest.PostgresURL(b))
	store := openBenchStore(b, proxy.url)
	checkSynchronousCommit(b, proxy.url)
	now := time.Date(2014, 8, 1, 12, 0, 0, 0, time.UTC)
	defs, err := pipeline.Parse("pipelines.yaml", []byte(benchPipeline+": [logger]\n"), builtinRegistry())
	if err != nil {
		b.Fatal(err)
	}
	var (
		fired   atomic.Int64
		allDone = make(chan struct{}, 1)
		target  atomic.Int64
	)
	w, err := pipeline.NewWorker(store, defs,
		func(string) (string, string, bool) { return benchPipeline, benchPipeline, true },
		func(ctx context.Context, tx db.Ops, events []stream.Event) error {
			_, err := tx.SaveEvents(ctx, events)
			return err
		},
		pipeline.WorkerConfig{Name: "bench", Purge: true, Concurrency: conc, Clock: fixedClock(now), Logger: slog.New(slog.DiscardHandler),
			Delay: time.Hour, StatsPeriod: time.Hour,
			AttemptFunc: func(a pipeline.Attempt) {
				if a.OK && fired.Add(1) == target.Load() {
					allDone <- struct{}{}
				}
			}})
	if err != nil {
		b.Fatal(err)
	}
	var (
		elapsed    time.Duration
		statements int64
	)
	b.ResetTimer()
	for op := range b.N {
		b.StopTimer()
		createReadyInTx(b, store, op, now.Add(-time.Hour), n)
		fired.Store(0)
		target.Store(int64(n))
		before := proxy.statements.Load()
		b.StartTimer()
		start := time.Now()
		if useRun {
			runUntil(b, w, allDone)
		} else {
			passUntilEmpty(b, w)
		}
		elapsed += time.Since(start)
		b.StopTimer()
		statements += proxy.statements.Load() - before
		if got := fired.Load(); got != int64(n) {
			b.Fatalf("op %d: fired %d of %d streams", op, got, n)
		}
	}
	b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "streams/s")
	b.ReportMetric(float64(statements)/float64(b.N*n), "statements/stream")
}

// passUntilEmpty runs Pass until a pass finds nothing.
func passUntilEmpty(b *testing.B, w *pipeline.Worker) {
	for {
		res, err := w.Pass(context.Background(), context.Background())
		if err != nil {
			b.Fatalf("pass: %v", err)
		}
		if res.Stats.Errors != 0 {
			b.Fatalf("pass: %d errors", res.Stats.Errors)
		}
		if res.LoadedFire+res.LoadedExpire == 0 {
			return
		}
	}
}

// runUntil runs the worker's Run loop until done receives.
func runUntil(b *testing.B, w *pipeline.Worker, done <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Errorf("the streams were not fired within 10 minutes")
	}
	cancel()
	if err := <-stopped; err != nil {
		b.Fatalf("run: %v", err)
	}
}

// passStreams is the default number of ready streams of BenchmarkPass.
const passStreams = 10000

// createReadyInTx stores n streams of benchEventsPerStream events each,
// ready to fire since fired, in one transaction.
func createReadyInTx(b *testing.B, store db.Store, op int, fired time.Time, n int) {
	b.Helper()
	ctx := context.Background()
	events := make([]stream.Event, 0, n*benchEventsPerStream)
	for s := range n {
		for e := range benchEventsPerStream {
			events = append(events, stream.Event{
				MessageID: fmt.Sprintf("op%d-s%d-e%d", op, s, e),
				Type:      "compute.instance.update",
				Timestamp: fired.Add(time.Duration(e-benchEventsPerStream) * time.Minute),
				Traits: map[string]stream.Value{
					"instance_id": stream.String(fmt.Sprintf("op%d-i%d", op, s)),
					"memory_mb":   stream.Int(4096),
				},
			})
		}
	}
	err := store.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
		ids, err := tx.SaveEvents(ctx, events)
		if err != nil {
			return err
		}
		for s := range n {
			dist := map[string]stream.Value{"instance_id": events[s*benchEventsPerStream].Traits["instance_id"]}
			_, created, err := tx.CreateStream(ctx, db.NewStream{
				Name: benchTrigger, Key: stream.Key(dist), DistinguishedBy: dist,
				FirstEvent: events[s*benchEventsPerStream].Timestamp, LastEvent: events[(s+1)*benchEventsPerStream-1].Timestamp,
				ExpireTimestamp: fired.Add(24 * time.Hour), FireTimestamp: fired,
				EventIDs: ids[s*benchEventsPerStream : (s+1)*benchEventsPerStream], Now: fired,
			})
			if err != nil || !created {
				return fmt.Errorf("create stream %d: created=%v %v", s, created, err)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("create %d ready streams: %v", n, err)
	}
}

// checkSynchronousCommit fails unless sessions of rawURL commit durably.
func checkSynchronousCommit(b *testing.B, rawURL string) {
	b.Helper()
	conn, err := pgx.Connect(context.Background(), rawURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	var sc, fsync string
	if err := conn.QueryRow(context.Background(), `SELECT current_setting('synchronous_commit'), current_setting('fsync')`).Scan(&sc, &fsync); err != nil {
		b.Fatal(err)
	}
	if sc != "on" || fsync != "on" {
		b.Fatalf("synchronous_commit=%s fsync=%s, want both on", sc, fsync)
	}
	b.Logf("synchronous_commit=%s fsync=%s", sc, fsync)
}

// statementCounter is a TCP proxy in front of PostgreSQL that counts the
// statements clients send: Execute ('E') and simple Query ('Q') messages.
type statementCounter struct {
	url        string // the database URL through the proxy
	statements atomic.Int64
	ln         net.Listener
	target     string
	wg         sync.WaitGroup
}

func startStatementCounter(b *testing.B, rawURL string) *statementCounter {
	b.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("synchronous_commit", "on")
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	c := &statementCounter{target: u.Host}
	if c.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	u.Host = c.ln.Addr().String()
	c.url = u.String()
	c.wg.Add(1)
	go c.serve()
	b.Cleanup(func() {
		_ = c.ln.Close()
		c.wg.Wait()
	})
	return c
}

func (c *statementCounter) serve() {
	defer c.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		client, err := c.ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			c.relay(client)
		}()
	}
}

// relay copies one client connection to the server and back, counting
// the client's statements, until either side closes.
func (c *statementCounter) relay(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", c.target)
	if err != nil {
		return
	}
	defer server.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(client, server)
		_ = client.Close()
	}()
	defer func() { <-done }()
	defer server.Close()
	r := bufio.NewReaderSize(client, 64<<10)
	out := bufio.NewWriterSize(server, 64<<10)
	var hdr [5]byte
	// The startup message has no type byte.
	if _, err := io.ReadFull(r, hdr[1:]); err != nil {
		return
	}
	if !forward(r, out, hdr[1:], binary.BigEndian.Uint32(hdr[1:])) {
		return
	}
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		if hdr[0] == 'E' || hdr[0] == 'Q' {
			c.statements.Add(1)
		}
		if !forward(r, out, hdr[:], binary.BigEndian.Uint32(hdr[1:])) {
			return
		}
	}
}

// forward writes hdr and the rest of a message of length n (which counts
// its own four bytes) to out, flushing when the client has sent nothing
// more yet.
func forward(r *bufio.Reader, out *bufio.Writer, hdr []byte, n uint32) bool {
	if _, err := out.Write(hdr); err != nil {
		return false
	}
	if _, err := io.CopyN(out, r, int64(n)-4); err != nil {
		return false
	}
	if r.Buffered() == 0 {
		return out.Flush() == nil
	}
	return true
}
