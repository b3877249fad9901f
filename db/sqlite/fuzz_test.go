package sqlite_test

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/stream"
)

// FuzzTraitRoundTrip stores events with arbitrary trait values and checks
// that they read back equal and that the typed SQL filter finds them (the
// filter compares inside SQLite's JSON, the read back decodes in Go: both
// must agree for every value).
func FuzzTraitRoundTrip(f *testing.F) {
	f.Add("aaaa-bbbb", int64(42), 42.0, int64(1406859023000550), "name")
	f.Add("", int64(math.MinInt64), 5e-324, int64(-62135596800000000), "with \"quotes\" and $.dots[0]")
	f.Add("grüße 🚀", int64(math.MaxInt64), 0.1, int64(0), "")
	f.Add("\x00nul", int64(-1), 1.7976931348623157e308, int64(253402300799999999), "ünï")
	f.Add("x", int64(0), -0.0, int64(-1), "n")
	f.Add("y", int64(9007199254740993), 0.30000000000000004, int64(1), "hard floats")
	f.Add("z", int64(1), 2.2250738585072011e-308, int64(2), "subnormal edge")
	f.Add("w", int64(2), 1e23, int64(3), "1e23")
	s, err := sqlite.Open(f.Context(), "sqlite://"+filepath.Join(f.TempDir(), "fuzz.db"), db.Options{Migrate: true})
	if err != nil {
		f.Fatalf("open: %v", err)
	}
	f.Cleanup(func() { s.Close() })
	n := 0
	f.Fuzz(func(t *testing.T, str string, i int64, fl float64, us int64, name string) {
		if math.IsNaN(fl) || math.IsInf(fl, 0) {
			t.Skip("NaN and infinities are not storable")
		}
		const minUs, maxUs = -62135596800000000, 253402300799999999 // years 1..9999
		if us < minUs || us > maxUs {
			t.Skip("datetime outside years 1..9999")
		}
		n++
		traits := map[string]stream.Value{
			"s:" + name: stream.String(str),
			"i:" + name: stream.Int(i),
			"f:" + name: stream.Float(fl),
			"d:" + name: stream.Datetime(time.UnixMicro(us)),
			"r:" + name: stream.TimeRange(time.UnixMicro(us), time.UnixMicro(us).Add(time.Hour)),
		}
		ts := time.UnixMicro(us).UTC()
		if ts.IsZero() { // the zero time means "no timestamp"
			ts = ts.Add(time.Microsecond)
		}
		ev := stream.Event{MessageID: fmt.Sprintf("fuzz-%d", n), Type: "fuzz", Timestamp: ts, Traits: traits}
		if stream.StorageLimits().CheckEvent(ev) != nil { // a NUL or invalid UTF-8: refused, never altered
			if _, err := s.SaveEvents(t.Context(), []stream.Event{ev}); !errors.Is(err, stream.ErrInvalidEvent) {
				t.Fatalf("SaveEvents(%q, %q) = %v, want stream.ErrInvalidEvent", name, str, err)
			}
			return
		}
		if _, err := s.SaveEvents(t.Context(), []stream.Event{ev}); err != nil {
			t.Fatalf("SaveEvents: %v", err)
		}
		got, err := s.EventByMessageID(t.Context(), ev.MessageID)
		if err != nil {
			t.Fatalf("EventByMessageID: %v", err)
		}
		if diff := cmp.Diff(ev, got.Event, cmp.Comparer(func(a, b stream.Value) bool { return a.Equal(b) })); diff != "" {
			t.Fatalf("read back differs (-saved +read):\n%s", diff)
		}
		for k, v := range traits {
			found, err := s.FindEvents(t.Context(), db.FindEventsParams{EventType: "fuzz", Traits: map[string]stream.Value{k: v}, Mark: "+" + fmt.Sprintf("%x", got.ID-1), Limit: 1})
			if err != nil {
				t.Fatalf("FindEvents(%q=%v): %v", k, v, err)
			}
			if len(found) != 1 || found[0].ID != got.ID {
				t.Errorf("FindEvents(%q=%#v) did not find the event", k, v.Interface())
			}
		}
	})
}
