package dbtest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

func exerciseFind(t *testing.T, open OpenFunc) {
	t.Run("Events", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		h := func(n int) time.Time { return at(time.Duration(n) * time.Hour) }
		// Ids 1..6 in this order (the stores start empty).
		ids := save(t, s,
			newEvent("e1", "type.a", h(1), map[string]stream.Value{"tenant": stream.String("t1"), "size": stream.Int(1)}),
			newEvent("e2", "type.b", h(2), map[string]stream.Value{"tenant": stream.String("t1"), "size": stream.Int(2)}),
			newEvent("e3", "type.a", h(3), map[string]stream.Value{"tenant": stream.String("t2"), "size": stream.Float(1)}),
			newEvent("e4", "type.a", h(4), map[string]stream.Value{"tenant": stream.String("t1"), "size": stream.Int(1)}),
			newEvent("e5", "type.c", h(5), nil),
			newEvent("e6", "type.a", h(6), map[string]stream.Value{"tenant": stream.String("t1")}),
		)
		hex := func(i int) string { return db.Mark{}.Format(ids[i]) }
		asc := func(i int) string { return db.Mark{Ascending: true}.Format(ids[i]) }
		tests := []struct {
			name  string
			p     db.FindEventsParams
			want  []string
			marks []string
		}{
			{name: "all_desc", p: db.FindEventsParams{}, want: []string{"e6", "e5", "e4", "e3", "e2", "e1"}},
			{name: "limit", p: db.FindEventsParams{Limit: 2}, want: []string{"e6", "e5"}, marks: []string{hex(5), hex(4)}},
			{name: "next_page_desc", p: db.FindEventsParams{Limit: 2, Mark: hex(4)}, want: []string{"e4", "e3"}, marks: []string{hex(3), hex(2)}},
			{name: "asc", p: db.FindEventsParams{Mark: "+", Limit: 2}, want: []string{"e1", "e2"}, marks: []string{asc(0), asc(1)}},
			{name: "next_page_asc", p: db.FindEventsParams{Mark: asc(1), Limit: 3}, want: []string{"e3", "e4", "e5"}, marks: []string{asc(2), asc(3), asc(4)}},
			{name: "forced_desc", p: db.FindEventsParams{Mark: "+-" + hex(2)}, want: []string{"e2", "e1"}, marks: []string{hex(1), hex(0)}},
			{name: "from_exclusive_to_inclusive", p: db.FindEventsParams{From: h(2), To: h(4)}, want: []string{"e4", "e3"}},
			{name: "from_only", p: db.FindEventsParams{From: h(5)}, want: []string{"e6"}},
			{name: "to_only", p: db.FindEventsParams{To: h(1)}, want: []string{"e1"}},
			{name: "type", p: db.FindEventsParams{EventType: "type.a"}, want: []string{"e6", "e4", "e3", "e1"}},
			{name: "unknown_type", p: db.FindEventsParams{EventType: "never.seen"}, want: nil},
			{name: "trait", p: db.FindEventsParams{Traits: map[string]stream.Value{"tenant": stream.String("t1")}}, want: []string{"e6", "e4", "e2", "e1"}},
			{name: "typed_trait", p: db.FindEventsParams{Traits: map[string]stream.Value{"size": stream.Int(1)}}, want: []string{"e4", "e1"}},
			{name: "two_traits", p: db.FindEventsParams{Traits: map[string]stream.Value{"size": stream.Int(1), "tenant": stream.String("t1")}}, want: []string{"e4", "e1"}},
			{name: "all_filters", p: db.FindEventsParams{From: h(1), To: h(6), EventType: "type.a", Traits: map[string]stream.Value{"tenant": stream.String("t1")}, Mark: "+", Limit: 5}, want: []string{"e4", "e6"}},
			{name: "missing_trait", p: db.FindEventsParams{Traits: map[string]stream.Value{"nope": stream.Int(1)}}, want: nil},
			{name: "past_the_end", p: db.FindEventsParams{Mark: "+" + hex(5)}, want: nil},
		}
		for _, tc := range tests {
			got, err := s.FindEvents(ctx, tc.p)
			if err != nil {
				t.Fatalf("%s: FindEvents: %v", tc.name, err)
			}
			if diff := cmp.Diff(tc.want, storedIDs(got), cmpOpts); diff != "" {
				t.Errorf("%s: FindEvents(%+v) (-want +got):\n%s", tc.name, tc.p, diff)
			}
			if tc.marks != nil {
				var marks []string
				for _, g := range got {
					marks = append(marks, g.Mark)
				}
				if diff := cmp.Diff(tc.marks, marks); diff != "" {
					t.Errorf("%s: marks (-want +got):\n%s", tc.name, diff)
				}
			}
			// Count: the same filters and mark bound, no limit.
			cp := tc.p
			cp.Limit = 0
			all, err := s.FindEvents(ctx, cp)
			if err != nil {
				t.Fatalf("%s: FindEvents: %v", tc.name, err)
			}
			n, err := s.CountEvents(ctx, tc.p)
			if err != nil || n != int64(len(all)) {
				t.Errorf("%s: CountEvents = %d, %v; want %d", tc.name, n, err, len(all))
			}
		}
		// Querying an unknown type writes nothing (D-23).
		types, err := s.EventTypes(ctx)
		if err != nil {
			t.Fatalf("EventTypes: %v", err)
		}
		if diff := cmp.Diff([]string{"type.a", "type.b", "type.c"}, types); diff != "" {
			t.Errorf("EventTypes after the queries (-want +got):\n%s", diff)
		}
		// Full events come back with their traits.
		got, err := s.FindEvents(ctx, db.FindEventsParams{Mark: "+", Limit: 1})
		if err != nil || len(got) != 1 {
			t.Fatalf("FindEvents = %v, %v", got, err)
		}
		wantEv := newEvent("e1", "type.a", h(1), map[string]stream.Value{"tenant": stream.String("t1"), "size": stream.Int(1)})
		if diff := cmp.Diff(db.StoredEvent{ID: ids[0], Event: wantEv, Mark: asc(0)}, got[0], cmpOpts); diff != "" {
			t.Errorf("FindEvents row (-want +got):\n%s", diff)
		}
		if _, err := s.FindEvents(ctx, db.FindEventsParams{Mark: "zz"}); err == nil {
			t.Errorf("FindEvents with mark %q succeeded, want an error", "zz")
		}
	})

	t.Run("Streams", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		h := func(n int) time.Time { return at(time.Duration(n) * time.Hour) }
		evIDs := save(t, s,
			newEvent("s1-b", "test.s", h(2), nil),
			newEvent("s1-a", "test.s", h(1), map[string]stream.Value{"x": stream.Int(1)}),
			newEvent("s3-a", "test.s", h(5), nil),
		)
		ids := []int64{
			create(t, s, streamSpec{name: "alpha", dist: dist42(), first: h(1), last: h(2), events: evIDs[:2]}),
			create(t, s, streamSpec{name: "beta", dist: map[string]stream.Value{"memory_mb": stream.Int(4096)}, first: h(3), last: h(4)}),
			create(t, s, streamSpec{name: "alpha", dist: map[string]stream.Value{"memory_mb": stream.String("4096")}, first: h(5), last: h(6), events: evIDs[2:]}),
			create(t, s, streamSpec{name: "gamma", first: h(7), last: h(8)}),
		}
		setState(t, s, ids[1], stream.StateFiring)
		setState(t, s, ids[1], stream.StateError)
		names := func(fs []db.FoundStream) []int64 {
			out := []int64{}
			for _, f := range fs {
				out = append(out, f.Stream.ID)
			}
			return out
		}
		hex := func(i int) string { return db.Mark{}.Format(ids[i]) }
		asc := func(i int) string { return db.Mark{Ascending: true}.Format(ids[i]) }
		tests := []struct {
			name  string
			p     db.FindStreamsParams
			want  []int64
			marks []string
		}{
			{name: "all_desc", p: db.FindStreamsParams{}, want: []int64{ids[3], ids[2], ids[1], ids[0]}},
			{name: "limit", p: db.FindStreamsParams{Limit: 2}, want: []int64{ids[3], ids[2]}, marks: []string{hex(3), hex(2)}},
			{name: "next_page_desc", p: db.FindStreamsParams{Limit: 2, Mark: hex(2)}, want: []int64{ids[1], ids[0]}, marks: []string{hex(1), hex(0)}},
			{name: "asc", p: db.FindStreamsParams{Mark: "+", Limit: 3}, want: []int64{ids[0], ids[1], ids[2]}, marks: []string{asc(0), asc(1), asc(2)}},
			{name: "next_page_asc", p: db.FindStreamsParams{Mark: asc(2)}, want: []int64{ids[3]}, marks: []string{asc(3)}},
			{name: "id", p: db.FindStreamsParams{StreamID: ids[2]}, want: []int64{ids[2]}},
			{name: "state", p: db.FindStreamsParams{State: stream.StateError}, want: []int64{ids[1]}},
			{name: "older_than", p: db.FindStreamsParams{OlderThan: h(3)}, want: []int64{ids[0]}},     // first_event < 3h
			{name: "younger_than", p: db.FindStreamsParams{YoungerThan: h(6)}, want: []int64{ids[3]}}, // last_event > 6h
			{name: "name", p: db.FindStreamsParams{Name: "alpha"}, want: []int64{ids[2], ids[0]}},
			{name: "dist_superset", p: db.FindStreamsParams{DistinguishedBy: map[string]stream.Value{"memory_mb": stream.Int(4096)}}, want: []int64{ids[1], ids[0]}},
			{name: "dist_typed", p: db.FindStreamsParams{DistinguishedBy: map[string]stream.Value{"memory_mb": stream.String("4096")}}, want: []int64{ids[2]}},
			{name: "dist_all_kinds", p: db.FindStreamsParams{DistinguishedBy: dist42()}, want: []int64{ids[0]}},
			{name: "dist_no_match", p: db.FindStreamsParams{DistinguishedBy: map[string]stream.Value{"memory_mb": stream.Float(4096)}}, want: []int64{}},
			{name: "combined", p: db.FindStreamsParams{Name: "alpha", State: stream.StateActive, OlderThan: h(9), YoungerThan: h(1), Mark: "+", Limit: 1}, want: []int64{ids[0]}},
		}
		for _, tc := range tests {
			got, err := s.FindStreams(ctx, tc.p)
			if err != nil {
				t.Fatalf("%s: FindStreams: %v", tc.name, err)
			}
			if diff := cmp.Diff(tc.want, names(got), cmpOpts); diff != "" {
				t.Errorf("%s: FindStreams (-want +got):\n%s", tc.name, diff)
			}
			if tc.marks != nil {
				var marks []string
				for _, g := range got {
					marks = append(marks, g.Mark)
				}
				if diff := cmp.Diff(tc.marks, marks); diff != "" {
					t.Errorf("%s: marks (-want +got):\n%s", tc.name, diff)
				}
			}
			for _, g := range got {
				if g.Events != nil {
					t.Errorf("%s: FindStreams without IncludeEvents returned events", tc.name)
				}
			}
			cp := tc.p
			cp.Limit = 0
			all, err := s.FindStreams(ctx, cp)
			if err != nil {
				t.Fatalf("%s: FindStreams: %v", tc.name, err)
			}
			n, err := s.CountStreams(ctx, tc.p)
			if err != nil || n != int64(len(all)) {
				t.Errorf("%s: CountStreams = %d, %v; want %d", tc.name, n, err, len(all))
			}
		}
		got, err := s.FindStreams(ctx, db.FindStreamsParams{Name: "alpha", IncludeEvents: true, Mark: "+"})
		if err != nil || len(got) != 2 {
			t.Fatalf("FindStreams(include events) = %v, %v", got, err)
		}
		if diff := cmp.Diff(streamByID(t, s, ids[0]), got[0].Stream, cmpOpts); diff != "" {
			t.Errorf("found stream differs from StreamByID (-want +got):\n%s", diff)
		}
		for i, want := range [][]string{{"s1-a", "s1-b"}, {"s3-a"}} {
			if diff := cmp.Diff(want, messageIDs(got[i].Events)); diff != "" {
				t.Errorf("events of found stream %d (-want +got):\n%s", i, diff)
			}
		}
		if tr := got[0].Events[0].Traits["x"]; !tr.Equal(stream.Int(1)) {
			t.Errorf("included event lost its traits: x = %v", tr)
		}
		if _, err := s.FindStreams(ctx, db.FindStreamsParams{Mark: "+g"}); err == nil {
			t.Errorf("FindStreams with mark %q succeeded, want an error", "+g")
		}
	})
}
