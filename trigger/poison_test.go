package trigger_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/internal/enginetest"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// randomText returns n bytes of hex that does not compress (a PostgreSQL
// index would take a compressible long key).
func randomText(seed string, n int) string {
	var b strings.Builder
	sum := sha256.Sum256([]byte(seed))
	for b.Len() < n {
		b.WriteString(hex.EncodeToString(sum[:]))
		sum = sha256.Sum256(sum[:])
	}
	return b.String()[:n]
}

const poisonTriggers = `
- name: by_key
  distinguished_by: [key]
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria:
  - event_type: "test.*"
  fire_criteria:
  - event_type: test.end
`

// testStores open each store a manager runs on: SQLite, PostgreSQL
// through its batch path and through the single-stream path.
var testStores = []struct {
	name string
	open func(t *testing.T) trigger.Store
}{
	{"sqlite", func(t *testing.T) trigger.Store { return enginetest.SQLite(t) }},
	{"postgres", func(t *testing.T) trigger.Store { return enginetest.Postgres(t) }},
	{"postgres-single", func(t *testing.T) trigger.Store { return singleStore{enginetest.Postgres(t)} }},
}

// TestManagerMixedBatch: a batch mixing valid events with every kind of
// invalid one stores exactly the valid ones, in their streams, and
// rejects each invalid one with a reason naming its field; on both
// stores, and through the batch path and the single-stream path.
func TestManagerMixedBatch(t *testing.T) {
	for _, sc := range testStores {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			store := sc.open(t)
			m := poisonManager(t, store, stream.Limits{KeyBytes: 50_000})
			longKey := randomText("long", 20_000) // longer than a btree entry, within the key limit
			valid := func(id, key string) stream.Event {
				return stream.Event{MessageID: id, Type: "test.thing", Timestamp: now.Add(-time.Minute),
					Traits: map[string]stream.Value{"key": stream.String(key)}}
			}
			type item struct {
				ev    stream.Event
				field string // "" for a valid event
			}
			var batch []item
			batch = append(batch, item{ev: valid("ok-1", "a")}, item{ev: valid("ok-2", longKey)})
			for _, pc := range dbtest.PoisonCases("poison-") {
				batch = append(batch, item{ev: pc.Event, field: pc.Field}, item{ev: valid("ok-after-"+pc.Name, "a")})
			}
			// Beyond the manager's limits, within what a store could keep.
			batch = append(batch,
				item{ev: valid(randomText("id", stream.DefaultMessageIDBytes+1), "a"), field: "message_id"},
				item{ev: valid("too-long-value", randomText("v", stream.DefaultTraitValueBytes+1)), field: "key"},
				item{ev: valid("too-long-key", randomText("k", 50_001)), field: "distinguished_by"},
				item{ev: valid("ok-last", longKey)},
			)
			events := make([]stream.Event, len(batch))
			for i, it := range batch {
				events[i] = it.ev
			}
			res, err := m.AddEvents(t.Context(), events)
			if err != nil {
				t.Fatalf("AddEvents(mixed batch) = %.300v; want results", err)
			}
			var validIDs []string
			for i, it := range batch {
				r := res[i]
				if it.field == "" {
					validIDs = append(validIDs, it.ev.MessageID)
					if r.Outcome != trigger.Stored || r.Matched != 1 {
						t.Errorf("event %d (%s): %s matched %d (%s); want stored and matched once", i, it.ev.MessageID, r.Outcome, r.Matched, r.Reason)
					}
					continue
				}
				if r.Outcome != trigger.Rejected || !strings.Contains(r.Reason, "event field "+quote(it.field)) {
					t.Errorf("event %d: %s %.200q; want rejected with a reason naming field %q", i, r.Outcome, r.Reason, it.field)
				}
			}
			checkStored(t, store, validIDs, longKey)
		})
	}
}

// poisonManager returns a manager of poisonTriggers over store.
func poisonManager(t *testing.T, store trigger.Store, limits stream.Limits) *trigger.Manager {
	t.Helper()
	defs, _, err := trigger.Parse("triggers.yaml", []byte(poisonTriggers))
	if err != nil {
		t.Fatal(err)
	}
	m, err := trigger.NewManager(store, defs, trigger.ManagerConfig{Clock: fixedClock{now}, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// quote is s as stream.FieldError shows a field.
func quote(s string) string { return fmt.Sprintf("%q", s) }

// checkStored asserts the store holds exactly the events validIDs, in two
// streams (key "a" and longKey).
func checkStored(t *testing.T, store trigger.Store, validIDs []string, longKey string) {
	t.Helper()
	s := store.(db.Ops)
	found, err := s.FindEvents(t.Context(), db.FindEventsParams{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range found {
		got[f.Event.MessageID] = true
	}
	if len(got) != len(validIDs) {
		t.Errorf("%d events stored, want the %d valid ones", len(got), len(validIDs))
	}
	for _, id := range validIDs {
		if !got[id] {
			t.Errorf("valid event %.60q was not stored", id)
		}
	}
	for _, key := range []string{"a", longKey} {
		dist := map[string]stream.Value{"key": stream.String(key)}
		st, err := s.OpenStream(t.Context(), "by_key", stream.Key(dist))
		if err != nil {
			t.Errorf("OpenStream(key of %d bytes) = %.300v", len(key), err)
			continue
		}
		evs, err := s.StreamEvents(t.Context(), st.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if !strings.HasPrefix(e.MessageID, "ok-") {
				t.Errorf("stream of key %.20q… holds %.60q, not a valid event", key, e.MessageID)
			}
		}
	}
}
