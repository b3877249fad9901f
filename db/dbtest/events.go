package dbtest

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

func exerciseEvents(t *testing.T, open OpenFunc) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		long := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
		tests := []struct {
			name string
			ts   time.Time
			val  stream.Value
		}{
			{"string", base, stream.String("aaaa-bbbb-cccc-dddd")},
			{"empty_string", base, stream.String("")},
			{"unicode_string", base, stream.String("grüße, 世界 🚀 \"quoted\" \\ \x01 tab\t")},
			{"long_string", base, stream.String(long)},
			{"int", base, stream.Int(42)},
			{"int_negative", base, stream.Int(-1024)},
			{"int_max", base, stream.Int(math.MaxInt64)},
			{"int_min", base, stream.Int(math.MinInt64)},
			{"float_integral", base, stream.Float(42.0)},
			{"float", base, stream.Float(20112.42)},
			{"float_tiny", base, stream.Float(5e-324)},
			{"float_huge", base, stream.Float(1.7976931348623157e308)},
			{"float_negative", base, stream.Float(-3.1415)},
			{"datetime_micro", base, stream.Datetime(time.Date(2014, 7, 1, 2, 30, 45, 453201000, time.UTC))},
			{"datetime_before_1970", time.Date(1969, 7, 20, 20, 17, 40, 1000, time.UTC), stream.Datetime(time.Date(1901, 12, 13, 20, 45, 52, 999999000, time.UTC))},
			{"datetime_far_future", time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), stream.Datetime(time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC))},
			{"datetime_epoch", time.Unix(0, 0), stream.Datetime(time.Unix(0, 0))},
			{"timerange", base, stream.TimeRange(time.Date(2014, 7, 8, 0, 0, 0, 27000, time.UTC), time.Date(2014, 7, 9, 0, 0, 0, 27000, time.UTC))},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ev := newEvent("rt-"+tc.name, "test.round.trip", tc.ts, map[string]stream.Value{"value": tc.val, "name 😀 with.dots": stream.String(tc.name)})
				save(t, s, ev)
				got, err := s.EventByMessageID(t.Context(), ev.MessageID)
				if err != nil {
					t.Fatalf("EventByMessageID(%q): %v", ev.MessageID, err)
				}
				if diff := cmp.Diff(ev, got.Event, cmpOpts); diff != "" {
					t.Errorf("stored event differs (-saved +read):\n%s", diff)
				}
				if got.Event.Traits["value"].Kind() != tc.val.Kind() {
					t.Errorf("kind = %s, want %s", got.Event.Traits["value"].Kind(), tc.val.Kind())
				}
				found, err := s.FindEvents(t.Context(), db.FindEventsParams{Traits: map[string]stream.Value{"value": tc.val}, EventType: "test.round.trip"})
				if err != nil {
					t.Fatalf("FindEvents(value=%v): %v", tc.val, err)
				}
				var mids []string
				for _, f := range found {
					mids = append(mids, f.Event.MessageID)
				}
				if !containsString(mids, ev.MessageID) {
					t.Errorf("FindEvents(value=%v) = %v, want it to include %s", tc.val, mids, ev.MessageID)
				}
			})
		}
	})

	t.Run("TimestampPrecision", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Sub-microsecond digits are dropped by normalisation before
		// storage; every microsecond survives.
		tss := []time.Time{
			time.Date(2014, 8, 1, 4, 57, 55, 42000, time.UTC),
			time.Date(2014, 8, 1, 4, 57, 55, 999999000, time.UTC),
			time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC),
			time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC),
			time.Date(2014, 8, 1, 12, 0, 0, 1000, time.FixedZone("CEST", 2*3600)),
		}
		for i, ts := range tss {
			ev := newEvent("ts-"+string(rune('a'+i)), "test.ts", ts, map[string]stream.Value{"when": stream.Datetime(ts)})
			save(t, s, ev)
			got, err := s.EventByMessageID(t.Context(), ev.MessageID)
			if err != nil {
				t.Fatalf("EventByMessageID: %v", err)
			}
			if !got.Event.Timestamp.Equal(ts) || got.Event.Timestamp.Location() != time.UTC {
				t.Errorf("timestamp %s read back as %s (want the same instant in UTC)", ts, got.Event.Timestamp)
			}
			if w := got.Event.Traits["when"].Time(); !w.Equal(ts) {
				t.Errorf("datetime trait %s read back as %s", ts, w)
			}
		}
	})

	t.Run("TypedValuesStayDistinct", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		save(t, s,
			newEvent("n-string", "test.n", base, map[string]stream.Value{"n": stream.String("42")}),
			newEvent("n-int", "test.n", base, map[string]stream.Value{"n": stream.Int(42)}),
			newEvent("n-float", "test.n", base, map[string]stream.Value{"n": stream.Float(42)}),
		)
		tests := []struct {
			name string
			val  stream.Value
			want []string
		}{
			{"string", stream.String("42"), []string{"n-string"}},
			{"int", stream.Int(42), []string{"n-int"}},
			{"float", stream.Float(42), []string{"n-float"}},
			{"other_int", stream.Int(43), nil},
			{"datetime", stream.Datetime(time.UnixMicro(42)), nil},
		}
		for _, tc := range tests {
			found, err := s.FindEvents(t.Context(), db.FindEventsParams{Traits: map[string]stream.Value{"n": tc.val}})
			if err != nil {
				t.Fatalf("FindEvents: %v", err)
			}
			if diff := cmp.Diff(tc.want, storedIDs(found), cmpOpts); diff != "" {
				t.Errorf("%s: FindEvents(n=%#v) (-want +got):\n%s", tc.name, tc.val.Interface(), diff)
			}
		}
	})

	t.Run("Duplicates", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		a := newEvent("dup-a", "test.dup", base, nil)
		b := newEvent("dup-b", "test.dup", base, nil)
		first := save(t, s, a, b)
		if first[0] == first[1] {
			t.Fatalf("two events got one id %d", first[0])
		}
		// Across calls: the second a is a duplicate even with other content.
		a2 := newEvent("dup-a", "test.other", at(time.Hour), map[string]stream.Value{"x": stream.Int(1)})
		c := newEvent("dup-c", "test.dup", base, nil)
		ids, err := s.SaveEvents(ctx, []stream.Event{a2, c})
		if err != nil {
			t.Fatalf("SaveEvents: %v", err)
		}
		if ids[0] != 0 || ids[1] == 0 {
			t.Errorf("SaveEvents([dup-a again, dup-c]) ids = %v, want [0, new id]", ids)
		}
		// Within one batch.
		d := newEvent("dup-d", "test.dup", base, nil)
		ids, err = s.SaveEvents(ctx, []stream.Event{d, c, d})
		if err != nil {
			t.Fatalf("SaveEvents: %v", err)
		}
		if ids[0] == 0 || ids[1] != 0 || ids[2] != 0 {
			t.Errorf("SaveEvents([dup-d, dup-c, dup-d]) ids = %v, want [new, 0, 0]", ids)
		}
		// Only real duplicates: other case, prefixes and equal content with
		// another message_id are new events.
		ids, err = s.SaveEvents(ctx, []stream.Event{
			newEvent("DUP-A", "test.dup", base, nil),
			newEvent("dup-", "test.dup", base, nil),
			newEvent("dup-a ", "test.dup", base, nil),
			newEvent("dup-e", "test.dup", base, nil),
		})
		if err != nil {
			t.Fatalf("SaveEvents: %v", err)
		}
		for i, id := range ids {
			if id == 0 {
				t.Errorf("event %d of the batch was taken for a duplicate", i)
			}
		}
		got, err := s.EventByMessageID(ctx, "dup-a")
		if err != nil {
			t.Fatalf("EventByMessageID: %v", err)
		}
		if got.ID != first[0] || got.Event.Type != "test.dup" {
			t.Errorf("dup-a = id %d type %s, want the first one (id %d, test.dup)", got.ID, got.Event.Type, first[0])
		}
		if n, err := s.CountEvents(ctx, db.FindEventsParams{}); err != nil || n != 8 {
			t.Errorf("CountEvents = %d, %v; want 8", n, err)
		}
	})

	t.Run("EventByMessageIDMissing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, err := s.EventByMessageID(t.Context(), "no-such-id")
		wantErr(t, "EventByMessageID(no-such-id)", err, db.ErrNotFound)
	})

	t.Run("EventTypes", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		got, err := s.EventTypes(t.Context())
		if err != nil {
			t.Fatalf("EventTypes: %v", err)
		}
		if len(got) != 0 {
			t.Errorf("EventTypes of an empty store = %v", got)
		}
		save(t, s,
			newEvent("t1", "compute.instance.exists", base, nil),
			newEvent("t2", "compute.instance.create.end", base, nil),
			newEvent("t3", "compute.instance.exists", base, nil),
			newEvent("t4", "a.first", base, nil),
		)
		got, err = s.EventTypes(t.Context())
		if err != nil {
			t.Fatalf("EventTypes: %v", err)
		}
		want := []string{"a.first", "compute.instance.create.end", "compute.instance.exists"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("EventTypes (-want +got):\n%s", diff)
		}
	})
}

func storedIDs(found []db.StoredEvent) []string {
	var out []string
	for _, f := range found {
		out = append(out, f.Event.MessageID)
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
