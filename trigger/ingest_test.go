package trigger_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// Manager.IngestNotifications and IngestEvents: the pipelined ingest of
// many items in batches, against the workload of the benchmarks.

// pipelineBatch is the batch size of the tests: small, so that a few
// thousand notifications make many batches.
const pipelineBatch = 300

// clockFunc is a clock that calls a function.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// workloadChunk returns n notifications of the workload (sample
// definitions), with their distilled events.
func workloadChunk(t *testing.T, n int) ([]stream.Event, [][]byte) {
	t.Helper()
	src := newWorkloadSource(t, loadBenchDistiller(t), 1000, 2)
	var events []stream.Event
	var bodies [][]byte
	for len(events) < n {
		evs, bs := src.next(n - len(events))
		events, bodies = append(events, slices.Clone(evs)...), append(bodies, slices.Clone(bs)...)
	}
	return events, bodies
}

// errorsEqual compares Result.Err by message (the distiller's errors are
// new values each time).
var errorsEqual = cmp.Comparer(func(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
})

// TestIngestNotificationsMatchesAddNotifications ingests the workload
// through IngestNotifications (pipelined) and through AddNotifications
// called batch by batch, each into a store of its own at the same clock:
// the results and the tables written are the same. A notification that
// does not distil and one event outside the limits are among them.
func TestIngestNotificationsMatchesAddNotifications(t *testing.T) {
	t.Parallel()
	d := loadBenchDistiller(t)
	defs := loadBenchTriggers(t)
	events, bodies := workloadChunk(t, 1800)
	bodies[700] = []byte(`{"event_type": "compute.instance.update"}`) // no message_id
	clock := &benchClock{now: events[0].Timestamp.Add(6 * time.Hour)}
	piped, serial := openPostgresBench(t), openPostgresBench(t)
	mp := newBenchManager(t, piped, defs, clock, d)
	ms := newBenchManager(t, serial, defs, clock, d)

	got, err := mp.IngestNotifications(t.Context(), bodies, trigger.IngestOptions{BatchSize: pipelineBatch})
	if err != nil {
		t.Fatalf("IngestNotifications: %v", err)
	}
	var want []trigger.Result
	for lo := 0; lo < len(bodies); lo += pipelineBatch {
		res, err := ms.AddNotifications(t.Context(), bodies[lo:min(lo+pipelineBatch, len(bodies))])
		if err != nil {
			t.Fatalf("AddNotifications(%d…): %v", lo, err)
		}
		want = append(want, res...)
	}
	if diff := cmp.Diff(want, got, errorsEqual); diff != "" {
		t.Errorf("results differ (-AddNotifications +IngestNotifications):\n%s", diff)
	}
	if got[700].Outcome != trigger.Rejected {
		t.Errorf("result of the notification without message_id = %+v, want Rejected", got[700])
	}
	ws, gs := readTables(t, serial), readTables(t, piped)
	if ws.Streams == 0 || ws.Fired == 0 || ws.Open == ws.Streams {
		t.Fatalf("AddNotifications wrote %+v: want streams, some fired, some closed", ws)
	}
	if diff := cmp.Diff(ws, gs); diff != "" {
		t.Errorf("tables differ (-AddNotifications +IngestNotifications):\n%s", diff)
	}
	st, sp := ms.Stats(), mp.Stats()
	wantTotals, wantTriggers := st.Totals()
	gotTotals, gotTriggers := sp.Totals()
	if diff := cmp.Diff(wantTotals, gotTotals, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("counters differ (-AddNotifications +IngestNotifications):\n%s", diff)
	}
	if diff := cmp.Diff(wantTriggers, gotTriggers, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("per-trigger counters differ (-AddNotifications +IngestNotifications):\n%s", diff)
	}
}

// tables summarises what the ingest wrote in a PostgreSQL schema.
type tables struct {
	Events, Streams, Open, Fired, Links int64
	Hash                                string
}

func readTables(t *testing.T, bd *benchDB) tables {
	t.Helper()
	const summary = `
SELECT (SELECT count(*) FROM event), (SELECT count(*) FROM stream), (SELECT count(*) FROM stream WHERE open),
       (SELECT count(*) FROM stream WHERE fire_timestamp IS NOT NULL), (SELECT count(*) FROM stream_event),
       coalesce((SELECT md5(string_agg(concat_ws('/', s.name, s.dist_traits::text, s.first_event, s.last_event, s.expire_timestamp,
                                        s.fire_timestamp, s.fire_counts::text, s.open, s.state, s.created_at,
                                        (SELECT string_agg(e.message_id, ' ' ORDER BY e.message_id)
                                           FROM stream_event se JOIN event e ON e.id = se.event_id
                                          WHERE se.stream_id = s.id)),
                              ',' ORDER BY s.name, s.dist_traits::text, s.first_event, s.open))
          FROM stream s), '')`
	var r tables
	if err := bd.pool.QueryRow(context.Background(), summary).Scan(&r.Events, &r.Streams, &r.Open, &r.Fired, &r.Links, &r.Hash); err != nil {
		t.Fatalf("read tables: %v", err)
	}
	return r
}

// storedIDs returns the message ids of the events in the store.
func storedIDs(t *testing.T, bd *benchDB) []string {
	t.Helper()
	var ids []string
	if bd.pool != nil {
		rows, err := bd.pool.Query(context.Background(), `SELECT message_id FROM event ORDER BY message_id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	conn := openSQLiteSide(t, bd)
	rows, err := conn.QueryContext(context.Background(), `SELECT message_id FROM event ORDER BY message_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// openSQLiteSide opens a second connection to a SQLite store's file.
func openSQLiteSide(t *testing.T, bd *benchDB) *sql.DB {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+bd.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// refuseEvents makes the database refuse, with an error of its own, any
// event whose message id starts with "refuse-".
func refuseEvents(t *testing.T, bd *benchDB) {
	t.Helper()
	ctx := context.Background()
	if bd.pool != nil {
		for _, s := range []string{
			`CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
			 BEGIN RAISE EXCEPTION 'event % refused', NEW.message_id; END $$`,
			`CREATE TRIGGER refuse_event BEFORE INSERT ON event FOR EACH ROW
			 WHEN (NEW.message_id LIKE 'refuse-%') EXECUTE FUNCTION refuse_event()`,
		} {
			if _, err := bd.pool.Exec(ctx, s); err != nil {
				t.Fatalf("refuse events: %v", err)
			}
		}
		return
	}
	_, err := openSQLiteSide(t, bd).ExecContext(ctx, `CREATE TRIGGER refuse_event BEFORE INSERT ON event
		WHEN NEW.message_id LIKE 'refuse-%' BEGIN SELECT RAISE(ABORT, 'event refused'); END`)
	if err != nil {
		t.Fatalf("refuse events: %v", err)
	}
}

// TestIngestFailureInMiddleBatch: when the database refuses the second
// of three batches, the first stays committed and its results are
// returned; nothing of the second or third is stored, and the error names
// the failed batch.
func TestIngestFailureInMiddleBatch(t *testing.T) {
	t.Parallel()
	d := loadBenchDistiller(t)
	defs := loadBenchTriggers(t)
	events, bodies := workloadChunk(t, 3*pipelineBatch)
	events[pipelineBatch+10].MessageID = "refuse-" + events[pipelineBatch+10].MessageID
	for _, drv := range benchDrivers() {
		t.Run(drv.name, func(t *testing.T) {
			t.Parallel()
			for _, kind := range []string{"events", "notifications"} {
				bd := drv.open(t)
				refuseEvents(t, bd)
				m := newBenchManager(t, bd, defs, &benchClock{now: events[0].Timestamp}, d)
				opts := trigger.IngestOptions{BatchSize: pipelineBatch}
				var res []trigger.Result
				var err error
				if kind == "events" {
					res, err = m.IngestEvents(t.Context(), events, opts)
				} else {
					bs := slices.Clone(bodies)
					bs[pipelineBatch+10] = refusedBody(t, bodies[pipelineBatch+10])
					res, err = m.IngestNotifications(t.Context(), bs, opts)
				}
				want := fmt.Sprintf("%s %d to %d: ", kind, pipelineBatch, 2*pipelineBatch-1)
				if err == nil || !startsWith(err.Error(), want) {
					t.Fatalf("Ingest %s: error %v, want one starting with %q", kind, err, want)
				}
				if len(res) != pipelineBatch {
					t.Fatalf("Ingest %s: %d results, want those of the first batch (%d)", kind, len(res), pipelineBatch)
				}
				var ids []string
				for i, r := range res {
					if r.Outcome != trigger.Stored || r.MessageID != events[i].MessageID {
						t.Fatalf("Ingest %s: result %d = %+v, want %s stored", kind, i, r, events[i].MessageID)
					}
					ids = append(ids, r.MessageID)
				}
				slices.Sort(ids)
				if diff := cmp.Diff(ids, storedIDs(t, bd)); diff != "" {
					t.Errorf("Ingest %s: stored events are not those of the first batch (-want +got):\n%s", kind, diff)
				}
			}
		})
	}
}

// refusedBody is body with its message_id prefixed with "refuse-".
func refusedBody(t *testing.T, body []byte) []byte {
	t.Helper()
	const key = `"message_id":"`
	out := bytes.Replace(body, []byte(key), []byte(key+"refuse-"), 1)
	if bytes.Equal(out, body) {
		t.Fatalf("no %s in %s", key, body)
	}
	return out
}

func startsWith(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }

// TestIngestCancelMidStream cancels the context while the second batch
// is being written (when its transaction reads the clock): the first
// batch is committed and its results returned, the error is the
// cancellation, and nothing of the later batches is stored.
func TestIngestCancelMidStream(t *testing.T) {
	t.Parallel()
	defs := loadBenchTriggers(t)
	events, _ := workloadChunk(t, 4*pipelineBatch)
	for _, drv := range benchDrivers() {
		t.Run(drv.name, func(t *testing.T) {
			t.Parallel()
			bd := drv.open(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			reads := 0
			clock := clockFunc(func() time.Time {
				if reads++; reads == 2 {
					cancel()
				}
				return events[0].Timestamp
			})
			m := newBenchManager(t, bd, defs, clock, nil)
			res, err := m.IngestEvents(ctx, events, trigger.IngestOptions{BatchSize: pipelineBatch})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("IngestEvents: error %v, want context.Canceled", err)
			}
			if len(res) != pipelineBatch {
				t.Fatalf("IngestEvents: %d results, want those of the first batch (%d)", len(res), pipelineBatch)
			}
			var ids []string
			for i, r := range res {
				if r.Outcome != trigger.Stored {
					t.Fatalf("result %d = %+v, want stored", i, r)
				}
				ids = append(ids, r.MessageID)
			}
			slices.Sort(ids)
			if diff := cmp.Diff(ids, storedIDs(t, bd)); diff != "" {
				t.Errorf("stored events are not those of the first batch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIngestDuplicatesAcrossBatches: an event repeated in a later batch
// (and twice within it) is a Duplicate there, stored once; events stored
// before the call are Duplicates too.
func TestIngestDuplicatesAcrossBatches(t *testing.T) {
	t.Parallel()
	defs := loadBenchTriggers(t)
	events, _ := workloadChunk(t, 3*pipelineBatch)
	for _, drv := range benchDrivers() {
		t.Run(drv.name, func(t *testing.T) {
			t.Parallel()
			bd := drv.open(t)
			m := newBenchManager(t, bd, defs, &benchClock{now: events[0].Timestamp}, nil)
			if _, err := m.AddEvents(t.Context(), events[:1]); err != nil {
				t.Fatal(err)
			}
			in := slices.Clone(events)
			// The last event of batch 1 again at the start of batch 2,
			// and the first of batch 2 again as the last of batch 2 and
			// in batch 3.
			last1 := pipelineBatch - 1
			in = slices.Insert(in, pipelineBatch, events[last1])
			in[2*pipelineBatch-1] = events[pipelineBatch]
			in[2*pipelineBatch+5] = events[pipelineBatch]
			res, err := m.IngestEvents(t.Context(), in, trigger.IngestOptions{BatchSize: pipelineBatch})
			if err != nil {
				t.Fatalf("IngestEvents: %v", err)
			}
			if len(res) != len(in) {
				t.Fatalf("%d results for %d events", len(res), len(in))
			}
			dup := map[int]bool{0: true, pipelineBatch: true, 2*pipelineBatch - 1: true, 2*pipelineBatch + 5: true}
			seen := map[string]bool{}
			for i, r := range res {
				want := trigger.Stored
				if dup[i] {
					want = trigger.Duplicate
				}
				if r.Outcome != want || r.MessageID != in[i].MessageID {
					t.Errorf("result %d = %s %s, want %s %s", i, r.Outcome, r.MessageID, want, in[i].MessageID)
				}
				seen[in[i].MessageID] = true
			}
			if got := len(storedIDs(t, bd)); got != len(seen) {
				t.Errorf("%d events stored, want %d (each once)", got, len(seen))
			}
		})
	}
}
