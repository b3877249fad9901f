package trigger_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/internal/enginetest"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// fastClock runs 600x real time from t0 (10 minutes per second).
type fastClock struct {
	t0    time.Time
	start time.Time
	speed float64
	tick  atomic.Int64
}

// Now: t0 plus speed seconds per batch started.
func (c *fastClock) Now() time.Time {
	return c.t0.Add(time.Duration(c.tick.Load()) * time.Duration(c.speed) * time.Second)
}

type countingHandler struct {
	slog.Handler
	retries  *atomic.Int64
	redo     *atomic.Int64
	messages *sync.Map
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	switch {
	case strings.HasPrefix(r.Message, "retrying event batch"):
		h.retries.Add(1)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "error" {
				msg := a.Value.String()
				if i := strings.Index(msg, "ERROR: "); i >= 0 {
					msg = msg[i:]
				}
				if len(msg) > 90 {
					msg = msg[:90]
				}
				v, _ := h.messages.LoadOrStore(msg, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
			return true
		})
	case strings.HasPrefix(r.Message, "stream changed concurrently"):
		h.redo.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestConcurrentBatchesKeepInvariants runs concurrent batches with
// overlapping keys, duplicates and streams that expire within a batch,
// while claimers take streams, then checks that every event is in exactly
// the streams it belongs to, that no stream changed after its claim, that
// first/last/expiry and fire counts agree with the stream's events, that a
// key has at most one open stream, and that no batch failed.
// WINCHESTER_STRESS_SINGLE=1 runs it on the single-stream path.
func TestConcurrentBatchesKeepInvariants(t *testing.T) {
	t.Parallel()
	pg := enginetest.Postgres(t)
	var store trigger.Store = pg
	if os.Getenv("WINCHESTER_STRESS_SINGLE") != "" {
		store = singleStore{pg}
	}
	ctx := t.Context()
	t0 := time.Date(2014, 8, 1, 12, 0, 0, 0, time.UTC)
	clock := &fastClock{t0: t0, start: time.Now(), speed: float64(20)}
	var retries, redo atomic.Int64
	var msgs sync.Map
	logger := slog.New(countingHandler{retries: &retries, redo: &redo, messages: &msgs})
	defs, _, err := trigger.Parse("triggers.yaml", []byte(batchTriggers))
	if err != nil {
		t.Fatal(err)
	}
	m, err := trigger.NewManager(store, defs, trigger.ManagerConfig{Clock: clock, Logger: logger, MaxAttempts: 5})
	if err != nil {
		t.Fatal(err)
	}

	ingesters := 8
	batches := 40
	perBatch := 25
	nkeys := 6
	var (
		mu       sync.Mutex
		stored   = map[string]int{}
		dups     = map[string]int{}
		matched  = map[string]int{}
		types    = map[string]string{}
		failures []string
		nextID   atomic.Int64
		stop     atomic.Bool
	)
	// Claims: stream id → message ids linked at claim time.
	claims := map[int64][]string{}
	var claimMu sync.Mutex

	var wg sync.WaitGroup
	for g := range ingesters {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 42))
			for range batches {
				clock.tick.Add(1)
				now := clock.Now()
				var evs []stream.Event
				for range perBatch {
					var id string
					if n := nextID.Load(); n > 0 && r.IntN(10) == 0 {
						id = "m" + strconv.FormatInt(r.Int64N(n)+1, 10) // duplicate of a recent one
					} else {
						id = "m" + strconv.FormatInt(nextID.Add(1), 10)
					}
					typ := "compute.instance.update"
					switch r.IntN(6) {
					case 0:
						typ = "compute.instance.exists"
					case 1:
						typ = "image.upload"
					}
					off := time.Duration(r.IntN(30)-25) * time.Minute
					if r.IntN(15) == 0 {
						off = -time.Duration(100+r.IntN(100)) * time.Minute // old: moves $first back
					}
					evs = append(evs, instanceEvent(id, typ, "i-"+strconv.Itoa(r.IntN(nkeys)), now.Add(off)))
				}
				res, err := m.AddEvents(ctx, evs)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				mu.Lock()
				for i, rs := range res {
					switch rs.Outcome {
					case trigger.Stored:
						stored[rs.MessageID]++
						matched[rs.MessageID] = rs.Matched
						types[rs.MessageID] = evs[i].Type
					case trigger.Duplicate:
						dups[rs.MessageID]++
					}
				}
				mu.Unlock()
			}
		})
	}
	// Claimers: claim random open streams and ready ones (ReadyFor), like
	// workers, then read their events and complete them.
	var claimersWG sync.WaitGroup
	for c := range 3 {
		claimersWG.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c), 7))
			for !stop.Load() {
				now := stream.NormalizeTime(clock.Now())
				var cands []stream.Stream
				for _, a := range []db.Action{db.Fire, db.Expire} {
					ss, err := pg.ReadyStreams(ctx, db.ReadyParams{Action: a, Now: now, Limit: 5})
					if err == nil {
						cands = append(cands, ss...)
					}
				}
				found, err := pg.FindStreams(ctx, db.FindStreamsParams{State: stream.StateActive, Limit: 50})
				if err == nil && len(found) > 0 {
					for range 2 {
						cands = append(cands, found[r.IntN(len(found))].Stream)
					}
				}
				for _, s := range cands {
					claimed, err := pg.SetStreamState(ctx, db.SetStateParams{ID: s.ID, SerialNo: s.SerialNo, State: stream.StateFiring})
					if err != nil {
						continue
					}
					evs, err := pg.StreamEvents(ctx, claimed.ID)
					if err != nil {
						t.Errorf("stream events: %v", err)
						continue
					}
					var mids []string
					for _, e := range evs {
						mids = append(mids, e.MessageID)
					}
					sort.Strings(mids)
					claimMu.Lock()
					claims[claimed.ID] = mids
					claimMu.Unlock()
					if _, err := pg.SetStreamState(ctx, db.SetStateParams{ID: claimed.ID, SerialNo: claimed.SerialNo, State: stream.StateCompleted}); err != nil {
						t.Errorf("complete: %v", err)
					}
				}
				time.Sleep(time.Duration(r.IntN(5)) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	claimersWG.Wait()

	t.Logf("retried batches: %d, redone groups: %d, failed batches: %d", retries.Load(), redo.Load(), len(failures))
	msgs.Range(func(k, v any) bool {
		t.Logf("  retry cause x%d: %s", v.(*atomic.Int64).Load(), k)
		return true
	})
	for _, f := range failures {
		t.Errorf("batch failed: %s", f)
	}

	// Every stored event once.
	for mid, n := range stored {
		if n != 1 {
			t.Errorf("%s reported stored %d times", mid, n)
		}
	}
	found, err := pg.FindStreams(ctx, db.FindStreamsParams{IncludeEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]map[string]int{} // trigger → mid → streams
	openKeys := map[[2]string]int{}
	nStreams := map[string]int{}
	nReady := map[string]int{}
	for _, f := range found {
		s := f.Stream
		nStreams[s.Name]++
		if !s.FireTimestamp.IsZero() {
			nReady[s.Name]++
		}
		if links[s.Name] == nil {
			links[s.Name] = map[string]int{}
		}
		var mids []string
		var first, last time.Time
		for i, e := range f.Events {
			links[s.Name][e.MessageID]++
			mids = append(mids, e.MessageID)
			if i == 0 || e.Timestamp.Before(first) {
				first = e.Timestamp
			}
			if i == 0 || e.Timestamp.After(last) {
				last = e.Timestamp
			}
		}
		sort.Strings(mids)
		if s.Open {
			openKeys[[2]string{s.Name, s.Key}]++
		}
		if len(f.Events) == 0 {
			t.Errorf("stream %d (%s %s) has no events", s.ID, s.Name, s.State)
			continue
		}
		if !first.Equal(s.FirstEvent) || !last.Equal(s.LastEvent) {
			t.Errorf("stream %d: first/last %v/%v, events say %v/%v", s.ID, s.FirstEvent, s.LastEvent, first, last)
		}
		d, _ := m.Definition(s.Name)
		if exp, _ := d.Expire(time.Time{}, s.FirstEvent, s.LastEvent); !exp.Equal(s.ExpireTimestamp) {
			t.Errorf("stream %d: expire %v, want %v", s.ID, s.ExpireTimestamp, exp)
		}
		var counts []int
		for _, e := range f.Events {
			counts = d.FireCounts(e, counts)
		}
		should := d.Satisfied(counts)
		if s.FireTimestamp.IsZero() {
			if should {
				t.Errorf("stream %d (%s): satisfied by its events but no fire_timestamp", s.ID, s.Name)
			}
			if !slices.Equal(counts, s.FireCounts) {
				t.Errorf("stream %d (%s): fire counts %v, events say %v", s.ID, s.Name, s.FireCounts, counts)
			}
		} else if !should {
			t.Errorf("stream %d (%s): fire_timestamp set but events do not satisfy", s.ID, s.Name)
		}
		if at, ok := claims[s.ID]; ok && !slices.Equal(at, mids) {
			t.Errorf("stream %d (%s) changed after its claim: at claim %v, now %v", s.ID, s.Name, at, mids)
		}
	}
	for k, n := range openKeys {
		if n > 1 {
			t.Errorf("%d open streams for %v", n, k)
		}
	}
	var nStored, nLinksLast, nLinksFirst int
	for mid := range stored {
		nStored++
		wantLast := 0
		if strings.HasPrefix(types[mid], "compute.instance.") {
			wantLast = 1
		}
		if got := links["by_last"][mid]; got != wantLast {
			t.Errorf("%s (%s): in %d by_last streams, want %d", mid, types[mid], got, wantLast)
		}
		if got := links["by_first"][mid]; got != 1 {
			t.Errorf("%s: in %d by_first streams, want 1", mid, got)
		}
		if matched[mid] != wantLast+1 {
			t.Errorf("%s: Matched %d, want %d", mid, matched[mid], wantLast+1)
		}
		nLinksLast += wantLast
		nLinksFirst++
	}
	for name := range links {
		for mid := range links[name] {
			if stored[mid] == 0 {
				t.Errorf("%s linked to %s streams but never reported stored", mid, name)
			}
		}
	}
	totals, per := m.Stats().Snapshot(false)
	t.Logf("stored %d, duplicates %d; totals %v", nStored, len(dups), totals)
	if totals["saved_events"] != int64(nStored) {
		t.Errorf("saved_events %d, stored %d", totals["saved_events"], nStored)
	}
	for name, want := range map[string]int{"by_last": nLinksLast, "by_first": nLinksFirst} {
		c := per[name]
		t.Logf("%s: counters %v; streams %d, ready %d, links %d", name, c, nStreams[name], nReady[name], want)
		if c["added_events"] != int64(want) {
			t.Errorf("%s: added_events %d, linked events %d", name, c["added_events"], want)
		}
		if c["new_streams"] != int64(nStreams[name]) {
			t.Errorf("%s: new_streams %d, streams %d", name, c["new_streams"], nStreams[name])
		}
		if c["ready_to_fire"] != int64(nReady[name]) {
			t.Errorf("%s: ready_to_fire %d, streams with a fire_timestamp %d", name, c["ready_to_fire"], nReady[name])
		}
	}
}
