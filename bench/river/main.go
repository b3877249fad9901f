// Command river compares the throughput of Winchester's pipeline worker
// passes with River (github.com/riverqueue/river), a job queue on the same
// PostgreSQL, in one run: River is the anchor, not a dependency of the
// engine, which is why this program is a module of its own.
//
// Each round runs, one after the other on the same database server:
//
//   - base: BenchmarkPass of pipeline/pass_bench_test.go built from an
//     older checkout (-base; this checkout's file is copied there): one
//     worker over -n ready streams with the logger pipeline, by Pass
//     (base/pass) and by its Run loop (base/run);
//   - passes: the same benchmark built from this checkout (-tree);
//   - river: -n jobs of a no-op worker inserted (not timed), then a River
//     client started and timed until every job is completed.
//
// All run with synchronous_commit=on and count the statements their
// clients send through a counting proxy. The program prints each run and
// the medians, and the ratios to base and to river of each mode.
//
//	cd bench/river && go run . -base /path/to/older/checkout -rounds 3
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "river bench:", err)
		os.Exit(1)
	}
}

type options struct {
	databaseURL  string
	n            int
	rounds       int
	tree, base   string
	concurrency  int
	riverWorkers int
}

func run() error {
	var o options
	flag.StringVar(&o.databaseURL, "database-url", os.Getenv("TEST_DATABASE_URL"), "PostgreSQL URL (default $TEST_DATABASE_URL)")
	flag.IntVar(&o.n, "n", 10000, "ready streams per pass benchmark, jobs per River run")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of base, passes and river")
	flag.StringVar(&o.tree, "tree", "../..", "the checkout whose passes are measured")
	flag.StringVar(&o.base, "base", "", "an older checkout to compare with (optional)")
	flag.IntVar(&o.concurrency, "concurrency", 4, "worker_concurrency of the pass benchmarks")
	flag.IntVar(&o.riverWorkers, "river-workers", 1000, "River's MaxWorkers (the jobs it may hold at once, as a pass holds batch_size streams)")
	flag.Parse()
	if o.databaseURL == "" {
		return errors.New("no database URL: set TEST_DATABASE_URL or -database-url")
	}
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "river-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Each variant's run gives one or more named results: the pass
	// benchmark one per mode.
	type variant struct {
		name string
		run  func() (map[string]result, error)
	}
	var variants []variant
	if o.base != "" {
		bin, err := buildPassBench(ctx, o.base, o.tree, filepath.Join(tmp, "base.test"))
		if err != nil {
			return err
		}
		variants = append(variants, variant{"base", func() (map[string]result, error) { return runPassBench(ctx, bin, o) }})
	}
	bin, err := buildPassBench(ctx, o.tree, o.tree, filepath.Join(tmp, "passes.test"))
	if err != nil {
		return err
	}
	variants = append(variants, variant{"passes", func() (map[string]result, error) { return runPassBench(ctx, bin, o) }})
	variants = append(variants, variant{"river", func() (map[string]result, error) {
		r, err := runRiver(ctx, o)
		return map[string]result{"": r}, err
	}})

	results := map[string][]result{}
	var names []string
	for r := range o.rounds {
		for _, v := range variants {
			res, err := v.run()
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, v.name, err)
			}
			for _, mode := range slices.Sorted(maps.Keys(res)) {
				name := v.name + mode
				if r == 0 {
					names = append(names, name)
				}
				fmt.Printf("round %d %-12s %9.0f per s %8.4f statements per item\n", r+1, name, res[mode].perSecond, res[mode].statements)
				results[name] = append(results[name], res[mode])
			}
		}
	}
	med := map[string]result{}
	for _, name := range names {
		med[name] = median(results[name])
		fmt.Printf("median  %-12s %9.0f per s %8.4f statements per item\n", name, med[name].perSecond, med[name].statements)
	}
	for _, mode := range []string{"/pass", "/run"} {
		if o.base != "" {
			fmt.Printf("passes%s/base%s  %.2f (per round: %s)\n", mode, mode, med["passes"+mode].perSecond/med["base"+mode].perSecond,
				ratios(results["passes"+mode], results["base"+mode]))
		}
		fmt.Printf("passes%s/river %.2f (per round: %s)\n", mode, med["passes"+mode].perSecond/med["river"].perSecond,
			ratios(results["passes"+mode], results["river"]))
	}
	return nil
}

// result is one run: items (streams or jobs) per second and statements
// sent per item.
type result struct {
	perSecond, statements float64
}

func median(rs []result) result {
	ps := make([]float64, len(rs))
	ss := make([]float64, len(rs))
	for i, r := range rs {
		ps[i], ss[i] = r.perSecond, r.statements
	}
	slices.Sort(ps)
	slices.Sort(ss)
	return result{ps[len(ps)/2], ss[len(ss)/2]}
}

func ratios(a, b []result) string {
	s := ""
	for i := range a {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.2f", a[i].perSecond/b[i].perSecond)
	}
	return s
}

// buildPassBench builds the pipeline package's test binary of tree, with
// the pass benchmark file of from copied in (when they differ), so that
// both run the same benchmark.
func buildPassBench(ctx context.Context, tree, from, out string) (string, error) {
	const file = "pipeline/pass_bench_test.go"
	if tree != from {
		b, err := os.ReadFile(filepath.Join(from, file))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(tree, file), b, 0o644); err != nil {
			return "", err
		}
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", out, "./pipeline")
	cmd.Dir = tree
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build the pass benchmark of %s: %w", tree, err)
	}
	return out, nil
}

// benchLine is a result line of BenchmarkPass: mode, statements per
// stream, streams per second.
var benchLine = regexp.MustCompile(`BenchmarkPass/mode=(\w+)\S*\s+\d+\s+\d+ ns/op\s+([0-9.]+) statements/stream\s+([0-9.]+) streams/s`)

// runPassBench runs BenchmarkPass of a test binary once; the results are
// keyed "/pass" and "/run" by mode.
func runPassBench(ctx context.Context, bin string, o options) (map[string]result, error) {
	cmd := exec.CommandContext(ctx, bin, "-test.run=^$", "-test.bench=^BenchmarkPass$", "-test.benchtime=1x")
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(os.Environ(), "TEST_DATABASE_URL="+o.databaseURL,
		"WINCHESTER_BENCH_STREAMS="+strconv.Itoa(o.n), "WINCHESTER_BENCH_CONCURRENCY="+strconv.Itoa(o.concurrency))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", bin, err, out)
	}
	res := map[string]result{}
	for _, m := range benchLine.FindAllSubmatch(out, -1) {
		var r result
		r.statements, _ = strconv.ParseFloat(string(m[2]), 64)
		r.perSecond, _ = strconv.ParseFloat(string(m[3]), 64)
		res["/"+string(m[1])] = r
	}
	if len(res) != 2 {
		return nil, fmt.Errorf("%s: want results of modes pass and run in\n%s", bin, out)
	}
	return res, nil
}

// noopArgs are the arguments of the no-op job.
type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (*noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// runRiver inserts o.n no-op jobs in a fresh schema and times a River
// client working all of them.
func runRiver(ctx context.Context, o options) (result, error) {
	schema := fmt.Sprintf("river_bench_%d_%d", os.Getpid(), time.Now().UnixNano())
	admin, err := pgx.Connect(ctx, o.databaseURL)
	if err != nil {
		return result{}, err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		return result{}, err
	}
	defer admin.Exec(context.WithoutCancel(ctx), `DROP SCHEMA `+schema+` CASCADE`) //nolint:errcheck

	proxy, err := startStatementCounter(o.databaseURL, schema)
	if err != nil {
		return result{}, err
	}
	defer proxy.close()
	pool, err := pgxpool.New(ctx, proxy.url)
	if err != nil {
		return result{}, err
	}
	defer pool.Close()
	var sc string
	if err := pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&sc); err != nil || sc != "on" {
		return result{}, fmt.Errorf("synchronous_commit = %q (%v), want on", sc, err)
	}
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return result{}, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return result{}, fmt.Errorf("migrate river: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{})
	client, err := river.NewClient(driver, &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.riverWorkers}},
		Workers: workers,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return result{}, err
	}
	params := make([]river.InsertManyParams, o.n)
	for i := range params {
		params[i] = river.InsertManyParams{Args: noopArgs{}}
	}
	if _, err := client.InsertManyFast(ctx, params); err != nil {
		return result{}, fmt.Errorf("insert jobs: %w", err)
	}
	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{Kinds: []river.EventKind{river.EventKindJobCompleted}, ChanSize: o.n + 1})
	defer cancel()
	before := proxy.statements.Load()
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		return result{}, err
	}
	timeout := time.After(10 * time.Minute)
	for done := 0; done < o.n; {
		select {
		case <-events:
			done++
		case <-timeout:
			return result{}, fmt.Errorf("%d of %d jobs completed after 10 minutes", done, o.n)
		}
	}
	elapsed := time.Since(start)
	statements := proxy.statements.Load() - before
	if err := client.Stop(ctx); err != nil {
		return result{}, err
	}
	return result{perSecond: float64(o.n) / elapsed.Seconds(), statements: float64(statements) / float64(o.n)}, nil
}

// statementCounter is a TCP proxy in front of PostgreSQL that counts the
// statements clients send: Execute ('E') and simple Query ('Q') messages
// (the same counting as pipeline/pass_bench_test.go).
type statementCounter struct {
	url        string
	statements atomic.Int64
	ln         net.Listener
	target     string
	wg         sync.WaitGroup
}

func startStatementCounter(rawURL, schema string) (*statementCounter, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("synchronous_commit", "on")
	q.Set("sslmode", "disable")
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	c := &statementCounter{target: u.Host}
	if c.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	u.Host = c.ln.Addr().String()
	c.url = u.String()
	c.wg.Add(1)
	go c.serve()
	return c, nil
}

func (c *statementCounter) close() {
	_ = c.ln.Close()
	c.wg.Wait()
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

func (c *statementCounter) relay(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", c.target)
	if err != nil {
		return
	}
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
