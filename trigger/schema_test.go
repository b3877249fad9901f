package trigger_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

const managerSchema = `strict: true
events:
  test.*:
    traits:
      key: {type: string}
      size: {type: int, min: 1, max: 10, required: false}
      color: {type: string, values: [red, blue], required: false}
`

// TestManagerSchema: events that do not match their declaration are
// rejected with a reason naming the trait (or event_type for an
// undeclared type under strict) and never stored; the rest of the batch
// is stored and matched; on both stores.
func TestManagerSchema(t *testing.T) {
	schema, err := stream.ParseSchema("schema.yaml", []byte(managerSchema))
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range testStores {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			store := sc.open(t)
			m := poisonManager(t, store, stream.Limits{Schema: schema})
			ev := func(id, typ string, traits map[string]stream.Value) stream.Event {
				return stream.Event{MessageID: id, Type: typ, Timestamp: now.Add(-time.Minute), Traits: traits}
			}
			key := func(extra ...any) map[string]stream.Value {
				tr := map[string]stream.Value{"key": stream.String("a")}
				for i := 0; i+1 < len(extra); i += 2 {
					tr[extra[i].(string)] = extra[i+1].(stream.Value)
				}
				return tr
			}
			batch := []struct {
				ev    stream.Event
				field string // "" for a valid event
				msg   string
			}{
				{ev: ev("ok-1", "test.thing", key("size", stream.Int(3), "color", stream.String("red")))},
				{ev: ev("missing", "test.thing", map[string]stream.Value{"size": stream.Int(3)}), field: "key", msg: "required trait is missing"},
				{ev: ev("ok-2", "test.thing", key())},
				{ev: ev("wrong-type", "test.thing", key("size", stream.String("3"))), field: "size", msg: "must be of type int, not string"},
				{ev: ev("out-of-range", "test.thing", key("size", stream.Int(11))), field: "size", msg: "above the maximum 10"},
				{ev: ev("not-allowed", "test.thing", key("color", stream.String("green"))), field: "color", msg: "not one of the allowed values"},
				{ev: ev("undeclared", "other.thing", key()), field: "event_type", msg: "There is no event named other.thing"},
				{ev: ev("ok-last", "test.end", key("size", stream.Int(10)))},
			}
			events := make([]stream.Event, len(batch))
			for i, b := range batch {
				events[i] = b.ev
			}
			res, err := m.AddEvents(t.Context(), events)
			if err != nil {
				t.Fatal(err)
			}
			var validIDs []string
			for i, b := range batch {
				r := res[i]
				if b.field == "" {
					validIDs = append(validIDs, b.ev.MessageID)
					if r.Outcome != trigger.Stored || r.Matched != 1 {
						t.Errorf("%s: %s matched %d (%s); want stored and matched", b.ev.MessageID, r.Outcome, r.Matched, r.Reason)
					}
					continue
				}
				if r.Outcome != trigger.Rejected || !strings.Contains(r.Reason, "event field "+quote(b.field)+": ") || !strings.Contains(r.Reason, b.msg) || !errors.Is(r.Err, stream.ErrSchema) {
					t.Errorf("%s: %s %q (err %v); want rejected naming %q with %q", b.ev.MessageID, r.Outcome, r.Reason, r.Err, b.field, b.msg)
				}
			}
			checkStored(t, store, validIDs, "a")
		})
	}
}
