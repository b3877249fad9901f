package dbtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// exercisePoison specifies what the stores do with input at the edges:
// events no store can keep are refused alike by every driver, with
// stream.ErrInvalidEvent and nothing written (the trigger manager checks
// events with stream.Limits before they reach a store, so its batches
// never carry one); distinguishing values of any length work.
func exercisePoison(t *testing.T, open OpenFunc) {
	t.Run("RefusedEvents", func(t *testing.T) {
		t.Parallel()
		exerciseRefusedEvents(t, open(t))
	})
	t.Run("LongestMessageID", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := noise(stream.MaxIndexedBytes)
		ids := save(t, s, newEvent(id, "test.long", base, map[string]stream.Value{"v": stream.String(noise(1 << 20))}))
		got, err := s.EventByMessageID(t.Context(), id)
		if err != nil || got.ID != ids[0] || got.Event.Traits["v"].Text() != noise(1<<20) {
			t.Fatalf("EventByMessageID(id of %d bytes) = %d, %.300v; want event %d with its 1 MiB trait", len(id), got.ID, err, ids[0])
		}
	})
	t.Run("LongKeys", func(t *testing.T) {
		t.Parallel()
		exerciseLongKeys(t, open(t))
	})
}

// PoisonCase is an event no store can keep, with the field its error
// names (stream.FieldError.Field).
type PoisonCase struct {
	Name  string
	Field string
	Event stream.Event
}

// PoisonCases returns an event of every kind no store can keep: NUL
// characters and invalid UTF-8 in each text field, NaN and infinite
// floats, a zero value, text too long for an index entry, and missing
// envelope fields. Message ids that are not themselves the poison start
// with prefix, so several sets can be stored side by side.
func PoisonCases(prefix string) []PoisonCase {
	tr := func(k string, v stream.Value) map[string]stream.Value { return map[string]stream.Value{k: v} }
	id := func(s string) string { return prefix + s }
	return []PoisonCase{
		{"NUL in message_id", "message_id", newEvent(id("bad\x00id"), "test.poison", base, nil)},
		{"NUL in event_type", "event_type", newEvent(id("p-2"), "test.\x00poison", base, nil)},
		{"NUL in trait name", "na\x00me", newEvent(id("p-3"), "test.poison", base, tr("na\x00me", stream.String("v")))},
		{"NUL in trait value", "name", newEvent(id("p-4"), "test.poison", base, tr("name", stream.String("va\x00lue")))},
		{"invalid UTF-8 in message_id", "message_id", newEvent(id("bad\xff\xfeid"), "test.poison", base, nil)},
		{"invalid UTF-8 in event_type", "event_type", newEvent(id("p-6"), "test.\xc3(", base, nil)},
		{"invalid UTF-8 in trait name", "na\xffme", newEvent(id("p-7"), "test.poison", base, tr("na\xffme", stream.String("v")))},
		{"invalid UTF-8 in trait value", "name", newEvent(id("p-8"), "test.poison", base, tr("name", stream.String("\xed\xa0\x80")))},
		{"NaN", "f", newEvent(id("p-9"), "test.poison", base, tr("f", stream.Float(math.NaN())))},
		{"+Inf", "f", newEvent(id("p-10"), "test.poison", base, tr("f", stream.Float(math.Inf(1))))},
		{"-Inf", "f", newEvent(id("p-11"), "test.poison", base, tr("f", stream.Float(math.Inf(-1))))},
		{"zero value", "z", newEvent(id("p-12"), "test.poison", base, tr("z", stream.Value{}))},
		{"message_id longer than an index entry", "message_id", newEvent(id(noise(stream.MaxIndexedBytes+1)), "test.poison", base, nil)},
		{"event_type longer than an index entry", "event_type", newEvent(id("p-14"), noise(stream.MaxIndexedBytes+1), base, nil)},
		{"empty message_id", "message_id", newEvent("", "test.poison", base, nil)},
		{"empty event_type", "event_type", newEvent(id("p-16"), "", base, nil)},
		{"no timestamp", "timestamp", stream.Event{MessageID: id("p-17"), Type: "test.poison", Traits: map[string]stream.Value{}}},
	}
}

// exerciseRefusedEvents: SaveEvents refuses a batch holding an event no
// store can keep, naming the event and the field, and writes nothing of
// it; CreateStream refuses such distinguishing values.
func exerciseRefusedEvents(t *testing.T, s db.Store) {
	ctx := t.Context()
	for i, tc := range PoisonCases("") {
		good := newEvent(fmt.Sprintf("good-%d", i), "test.poison", base, nil)
		_, err := s.SaveEvents(ctx, []stream.Event{good, tc.Event})
		var fe *stream.FieldError
		if !errors.Is(err, stream.ErrInvalidEvent) || !errors.As(err, &fe) || fe.Field != tc.Field {
			t.Errorf("SaveEvents(valid, %s) = %.300v; want stream.ErrInvalidEvent naming field %q", tc.Name, err, tc.Field)
		}
		if _, err := s.EventByMessageID(ctx, good.MessageID); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("after SaveEvents(valid, %s) failed, EventByMessageID(valid) = %v; want db.ErrNotFound (nothing written)", tc.Name, err)
		}
	}
	for _, bad := range []stream.Value{stream.String("a\x00b"), stream.String("\xff"), stream.Float(math.NaN())} {
		dist := map[string]stream.Value{"k": bad}
		_, _, err := s.CreateStream(ctx, db.NewStream{Name: "poison", Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: base, LastEvent: base, ExpireTimestamp: at(time.Hour), Now: base})
		if !errors.Is(err, stream.ErrInvalidEvent) {
			t.Errorf("CreateStream(distinguishing %v) = %v; want stream.ErrInvalidEvent", bad, err)
		}
	}
	if n, err := s.CountEvents(ctx, db.FindEventsParams{}); err != nil || n != 0 {
		t.Errorf("CountEvents after refused batches = %d, %v; want 0", n, err)
	}
}

// longDist returns distinguishing values whose key is far longer than a
// btree index entry may be (about 2.7 KB on PostgreSQL, after compression:
// the text is random, so it does not compress); keys built with different
// last bytes differ only at their end.
func longDist(n int, last string) map[string]stream.Value {
	return map[string]stream.Value{"instance_id": stream.String(noise(n) + last)}
}

// noise returns n bytes of printable text that does not compress, the same
// for every call.
func noise(n int) string {
	var b strings.Builder
	sum := sha256.Sum256([]byte("noise"))
	for b.Len() < n {
		b.WriteString(hex.EncodeToString(sum[:]))
		sum = sha256.Sum256(sum[:])
	}
	return b.String()[:n]
}

// exerciseLongKeys: streams whose distinguishing key is 100 KB long are
// created, found, refused as twins and closed like any other; two keys
// that differ only in their last byte are two streams.
func exerciseLongKeys(t *testing.T, s db.Store) {
	ctx := t.Context()
	distA, distB := longDist(100_000, "a"), longDist(100_000, "b")
	ids := save(t, s, newEvent("long-1", "test.long", base, nil), newEvent("long-2", "test.long", base, nil))
	createLong := func(dist map[string]stream.Value, events []int64) int64 {
		t.Helper()
		id, created, err := s.CreateStream(ctx, db.NewStream{Name: "long", Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: base, LastEvent: base, ExpireTimestamp: at(24 * time.Hour), EventIDs: events, Now: base})
		if err != nil || !created || id == 0 {
			t.Fatalf("CreateStream(key of %d bytes) = %d, %v, %.300v; want a new stream", len(stream.Key(dist)), id, created, err)
		}
		return id
	}
	a := createLong(distA, ids[:1])
	b := createLong(distB, ids[1:])
	if a == b {
		t.Fatalf("CreateStream of two keys that differ in their last byte returned one stream %d", a)
	}
	for _, tc := range []struct {
		dist map[string]stream.Value
		want int64
	}{{distA, a}, {distB, b}} {
		got, err := s.OpenStream(ctx, "long", stream.Key(tc.dist))
		if err != nil || got.ID != tc.want {
			t.Fatalf("OpenStream(long key) = %d, %.300v; want stream %d", got.ID, err, tc.want)
		}
		if diff := cmp.Diff(tc.dist, got.DistinguishedBy, cmpOpts); diff != "" {
			t.Errorf("OpenStream(long key) distinguishing values (-want +got):\n%s", diff)
		}
	}
	_, err := s.OpenStream(ctx, "long", stream.Key(longDist(100_000, "c")))
	wantErr(t, "OpenStream(long key never stored)", err, db.ErrNotFound)

	twin := db.NewStream{Name: "long", Key: stream.Key(distA), DistinguishedBy: distA,
		FirstEvent: base, LastEvent: base, ExpireTimestamp: at(24 * time.Hour), Now: base}
	if id, created, err := s.CreateStream(ctx, twin); err != nil || created {
		t.Fatalf("CreateStream(open long key again) = %d, %v, %.300v; want not created", id, created, err)
	}
	if err := s.CloseStream(ctx, a); err != nil {
		t.Fatalf("CloseStream(%d): %v", a, err)
	}
	if id := createLong(distA, nil); id == a {
		t.Fatalf("CreateStream(long key after close) = %d, the closed stream", id)
	}

	// The batch operations, where a store has them.
	err = s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
		bi, ok := tx.(db.BatchIngester)
		if !ok {
			return nil
		}
		keys := []db.StreamKey{{Name: "long", Key: stream.Key(distB)}, {Name: "long", Key: stream.Key(longDist(100_000, "d"))}}
		open, err := bi.OpenStreams(ctx, keys)
		if err != nil {
			t.Fatalf("OpenStreams(long keys): %.300v", err)
		}
		if len(open) != 1 || open[keys[0]].ID != b {
			t.Fatalf("OpenStreams(long keys) found %d streams; want only stream %d", len(open), b)
		}
		distD := longDist(100_000, "d")
		created, ok2, err := bi.CreateStreams(ctx, []db.BatchNewStream{
			{NewStream: db.NewStream{Name: "long", Key: stream.Key(distB), DistinguishedBy: distB,
				FirstEvent: base, LastEvent: base, ExpireTimestamp: at(24 * time.Hour), Now: base}},
			{NewStream: db.NewStream{Name: "long", Key: stream.Key(distD), DistinguishedBy: distD,
				FirstEvent: base, LastEvent: base, ExpireTimestamp: at(24 * time.Hour), Now: base}},
		})
		if err != nil || ok2[0] || !ok2[1] || created[1] == 0 {
			t.Fatalf("CreateStreams(taken long key, new long key) = %v, %v, %.300v; want [false true]", created, ok2, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
}
