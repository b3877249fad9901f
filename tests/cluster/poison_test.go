package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// Environment of a poison ingester (besides envDB and envName).
const envPoisonRounds = "WINCHESTER_TEST_POISON_ROUNDS" // rounds of valid and poison events

// poisonRounds is the number of rounds each poison ingester feeds: a few
// in a plain go test, more with WINCHESTER_TEST_STREAMS (set by .ci/run).
func poisonRounds() int {
	if n, err := strconv.Atoi(os.Getenv("WINCHESTER_TEST_STREAMS")); err == nil && n > 0 {
		return max(3, n/1000)
	}
	return 3
}

// longKey returns a distinguishing value longer than a PostgreSQL index
// entry, random so that it does not compress.
func longKey(seed string) string {
	var b strings.Builder
	sum := sha256.Sum256([]byte(seed))
	for b.Len() < 20_000 {
		b.WriteString(hex.EncodeToString(sum[:]))
		sum = sha256.Sum256(sum[:])
	}
	return b.String()
}

// poisonBatch is one round of an ingester's input: valid events (some
// with a long distinguishing value, keys shared by every ingester) mixed
// with one event of every poison kind. field is "" for a valid event.
func poisonBatch(name string, round int) (events []stream.Event, fields []string) {
	ts := time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
	valid := func(i int) stream.Event {
		key := fmt.Sprintf("k-%d", (round+i)%5)
		if i%4 == 0 {
			key = longKey(key)
		}
		return stream.Event{MessageID: fmt.Sprintf("%s-r%d-v%d", name, round, i), Type: "test.valid", Timestamp: ts,
			Traits: map[string]stream.Value{"key": stream.String(key)}}
	}
	i := 0
	for _, pc := range dbtest.PoisonCases(fmt.Sprintf("%s-r%d-", name, round)) {
		events = append(events, valid(i), pc.Event)
		fields = append(fields, "", pc.Field)
		i++
	}
	return events, fields
}

// runPoisonIngester feeds its rounds in batches and checks every result:
// each valid event stored, each poison one rejected with a reason naming
// its field.
func runPoisonIngester() error {
	ctx := context.Background()
	store, err := db.Open(ctx, os.Getenv(envDB), db.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	defs, err := loadTriggers()
	if err != nil {
		return err
	}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
	if err != nil {
		return err
	}
	rounds, err := strconv.Atoi(os.Getenv(envPoisonRounds))
	if err != nil {
		return err
	}
	name := os.Getenv(envName)
	for round := range rounds {
		events, fields := poisonBatch(name, round)
		var res []trigger.Result
		for {
			res, err = mgr.AddEvents(ctx, events)
			if !errors.Is(err, db.ErrUnavailable) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("round %d: a mixed batch failed: %.300v", round, err)
		}
		for i, r := range res {
			switch {
			case fields[i] == "" && r.Outcome != trigger.Stored:
				return fmt.Errorf("round %d: valid event %s: %s (%.200s)", round, events[i].MessageID, r.Outcome, r.Reason)
			case fields[i] != "" && (r.Outcome != trigger.Rejected || !strings.Contains(r.Reason, fmt.Sprintf("event field %q", fields[i]))):
				return fmt.Errorf("round %d: poison event %d: %s %.200q, want rejected naming %q", round, i, r.Outcome, r.Reason, fields[i])
			}
		}
	}
	return nil
}

// TestPoisonIngesters runs four ingester processes at once, on SQLite and
// on PostgreSQL, each feeding batches that mix valid events with every
// poison kind (NUL, invalid UTF-8, NaN/Inf, over-long ids and types, zero
// values, missing fields): exactly the valid events are stored, each in
// the stream of its key, and each poison one is rejected with a reason
// naming its field (checked in the processes).
func TestPoisonIngesters(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) (db.Store, string)
	}{
		{"sqlite", func(t *testing.T) (db.Store, string) { return sqliteStore(t, "poison.db") }},
		{"postgres", pgStore},
	}
	const ingesters = 4
	rounds := poisonRounds()
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			store, url := sc.open(t)
			var hs []*helper
			for i := range ingesters {
				hs = append(hs, startHelper(t, "poison", envDB+"="+url, envName+"="+fmt.Sprintf("ing%d", i),
					envPoisonRounds+"="+strconv.Itoa(rounds)))
			}
			for _, h := range hs {
				h.wait(t, 2*time.Minute)
			}
			want := map[string]bool{}
			for i := range ingesters {
				for round := range rounds {
					events, fields := poisonBatch(fmt.Sprintf("ing%d", i), round)
					for j, ev := range events {
						if fields[j] == "" {
							want[ev.MessageID] = true
						}
					}
				}
			}
			found, err := store.FindEvents(t.Context(), db.FindEventsParams{})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range found {
				if !want[f.Event.MessageID] {
					t.Errorf("stored %.80q, which is not a valid event of the input", f.Event.MessageID)
				}
				delete(want, f.Event.MessageID)
			}
			for id := range want {
				t.Errorf("valid event %s was not stored", id)
			}
			// Every stored event is in the stream of its key: the streams
			// hold as many links as there are events.
			streams, err := store.FindStreams(t.Context(), db.FindStreamsParams{IncludeEvents: true})
			if err != nil {
				t.Fatal(err)
			}
			links := 0
			for _, f := range streams {
				for _, e := range f.Events {
					if f.Stream.DistinguishedBy["key"].Text() != e.Traits["key"].Text() {
						t.Errorf("event %s is in the stream of another key", e.MessageID)
					}
				}
				links += len(f.Events)
			}
			if links != len(found) {
				t.Errorf("%d events in streams, want the %d stored", links, len(found))
			}
		})
	}
}
