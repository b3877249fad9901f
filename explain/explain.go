package explain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// Store is the part of db.Store an Explainer reads.
type Store interface {
	StreamByID(ctx context.Context, id int64) (stream.Stream, error)
	StreamEvents(ctx context.Context, streamID int64) ([]stream.Event, error)
	EventByMessageID(ctx context.Context, messageID string) (db.StoredEvent, error)
	FindStreams(ctx context.Context, p db.FindStreamsParams) ([]db.FoundStream, error)
}

// Triggers gives the current trigger definitions, in order;
// *trigger.Manager and *trigger.Set are Triggers.
type Triggers interface {
	Definitions() []*trigger.Definition
}

// Config holds the optional collaborators of an Explainer.
type Config struct {
	// Clock tells "now" (is the expiry past, is the fire time due).
	// Default: the wall clock.
	Clock stream.Clock
	// DistillFunc converts raw notifications ((*trigger.Manager).Distill,
	// which counts nothing, is one). Without it Notification fails with
	// ErrNoDistiller.
	DistillFunc trigger.DistillFunc
}

// ErrNoDistiller: a notification was given but no distiller is configured.
var ErrNoDistiller = errors.New("explain: no distiller configured (set distiller_config)")

// Explainer explains streams and events. It only reads; it is safe for
// concurrent use.
type Explainer struct {
	store    Store
	triggers Triggers
	clock    stream.Clock
	distill  trigger.DistillFunc
}

// New returns an explainer over store and the current definitions of
// triggers.
func New(store Store, triggers Triggers, cfg Config) *Explainer {
	x := &Explainer{store: store, triggers: triggers, clock: cfg.Clock, distill: cfg.DistillFunc}
	if x.clock == nil {
		x.clock = stream.SystemClock{}
	}
	return x
}

// definition returns the current definition named name.
func (x *Explainer) definition(name string) *trigger.Definition {
	for _, d := range x.triggers.Definitions() {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// Stream explains the stream with the given id. It returns an error
// wrapping db.ErrNotFound when there is no such stream (completed streams
// are purged unless purge_completed_streams is false).
func (x *Explainer) Stream(ctx context.Context, id int64) (Stream, error) {
	s, err := x.store.StreamByID(ctx, id)
	if err != nil {
		return Stream{}, fmt.Errorf("stream %d: %w", id, err)
	}
	events, err := x.store.StreamEvents(ctx, id)
	if err != nil {
		return Stream{}, fmt.Errorf("events of stream %d: %w", id, err)
	}
	return StreamOf(s, events, x.definition(s.Name), x.clock.Now()), nil
}

// Event explains the stored event with the given message id. It returns
// an error wrapping db.ErrNotFound when no such event is stored.
func (x *Explainer) Event(ctx context.Context, messageID string) (Event, error) {
	se, err := x.store.EventByMessageID(ctx, messageID)
	if err != nil {
		return Event{}, fmt.Errorf("event %q: %w", messageID, err)
	}
	return x.explainEvent(ctx, se.Event, &se.Event)
}

// GivenEvent explains an event that need not be stored: whether each
// trigger would take it and into which stream. When an event with its
// message id is stored, the answer says so (the given event would be a
// duplicate, ignored) and names the streams the stored one went to.
func (x *Explainer) GivenEvent(ctx context.Context, ev stream.Event) (Event, error) {
	se, err := x.store.EventByMessageID(ctx, ev.MessageID)
	switch {
	case err == nil:
		return x.explainEvent(ctx, ev, &se.Event)
	case errors.Is(err, db.ErrNotFound):
		return x.explainEvent(ctx, ev, nil)
	default:
		return Event{}, fmt.Errorf("look up event %q: %w", ev.MessageID, err)
	}
}

// Notification distills a raw notification (Config.DistillFunc) and
// explains the event it gives, as GivenEvent. A notification the
// distiller drops is an error wrapping ErrBadInput that says why; without
// a distiller the error wraps ErrBadInput and ErrNoDistiller.
func (x *Explainer) Notification(ctx context.Context, body []byte) (Event, error) {
	if x.distill == nil {
		return Event{}, fmt.Errorf("%w: %w", ErrBadInput, ErrNoDistiller)
	}
	ev, err := x.distill(body)
	if err != nil {
		return Event{}, fmt.Errorf("%w: the distiller drops the notification: %v", ErrBadInput, err)
	}
	e, err := x.GivenEvent(ctx, ev)
	e.Distilled = true
	return e, err
}

// explainEvent matches ev against every trigger and finds its streams;
// stored is the event of the same message id in the database (nil: none),
// whose streams are the ones named.
func (x *Explainer) explainEvent(ctx context.Context, ev stream.Event, stored *stream.Event) (Event, error) {
	out := Event{Event: ev, Stored: stored != nil, Triggers: []TriggerMatch{}}
	for _, d := range x.triggers.Definitions() {
		tm := MatchOf(d, ev)
		if tm.Matched {
			ref, err := x.findStream(ctx, d, ev, tm, stored)
			if err != nil {
				return Event{}, fmt.Errorf("trigger %q: %w", d.Name, err)
			}
			tm.Stream = ref
		}
		out.Triggers = append(out.Triggers, tm)
		if tm.Matched {
			out.Matched++
		}
	}
	return out, nil
}

// Match explains the event against every definition of defs, in order,
// without a store: no stream is looked up. It is the pure part of
// Explainer.GivenEvent.
func Match(defs []*trigger.Definition, ev stream.Event) []TriggerMatch {
	out := make([]TriggerMatch, 0, len(defs))
	for _, d := range defs {
		out = append(out, MatchOf(d, ev))
	}
	return out
}

// MatchOf explains the event against one trigger: the verdict of the
// trigger's matcher, the entry that matched, the distinguishing values and
// key, the fire criteria the event counts for, or the first reason it does
// not match. No stream is looked up.
func MatchOf(d *trigger.Definition, ev stream.Event) TriggerMatch {
	tm := TriggerMatch{Trigger: d.Name}
	w := d.WhyNot(ev)
	for _, m := range w.Mismatches {
		tm.Mismatches = append(tm.Mismatches, mismatchOf(m))
	}
	if w.CriteriaIndex >= 0 {
		i := w.CriteriaIndex
		tm.CriteriaIndex = &i
		tm.CriteriaLine = d.MatchCriteria[i].Line
	}
	if !w.Matched {
		if m, ok := w.First(); ok {
			tm.Reason = m.Detail
		} else {
			tm.Reason = "the trigger has no match criteria"
		}
		return tm
	}
	dist, err := d.DistinguishError(ev, w.CriteriaIndex)
	if err != nil {
		tm.Reason = err.Error()
		return tm
	}
	tm.Matched = true
	tm.DistinguishedBy = dist
	tm.Key = stream.Key(dist)
	for i, c := range d.FireCriteria {
		if c.Match(ev) {
			tm.CountsFor = append(tm.CountsFor, i)
		}
	}
	return tm
}

func mismatchOf(m trigger.Mismatch) Mismatch {
	out := Mismatch{Entry: m.Entry, Line: m.Line, Reason: m.Reason, Trait: m.Trait, Detail: m.Detail}
	if !m.Value.IsZero() {
		v := m.Value
		out.Value = &v
	}
	return out
}

// maxCandidates bounds the streams looked at to find an event's stream.
const maxCandidates = 20

// findStream finds the stream the stored event went to, or (stored nil)
// the one ev would go to.
func (x *Explainer) findStream(ctx context.Context, d *trigger.Definition, ev stream.Event, tm TriggerMatch, stored *stream.Event) (*StreamRef, error) {
	p := db.FindStreamsParams{Name: d.Name, DistinguishedBy: tm.DistinguishedBy, Limit: maxCandidates}
	if stored != nil {
		ev = *stored
		// The event's stream spans its timestamp.
		p.OlderThan = ev.Timestamp.Add(time.Microsecond)    // first_event <= timestamp
		p.YoungerThan = ev.Timestamp.Add(-time.Microsecond) // last_event >= timestamp
		found, err := x.store.FindStreams(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("find streams: %w", err)
		}
		for _, f := range found {
			if f.Stream.Key != tm.Key {
				continue
			}
			events, err := x.store.StreamEvents(ctx, f.Stream.ID)
			if err != nil {
				return nil, fmt.Errorf("events of stream %d: %w", f.Stream.ID, err)
			}
			for _, e := range events {
				if e.MessageID == ev.MessageID {
					s := f.Stream
					return &StreamRef{ID: s.ID, State: s.State.String(), In: true,
						Text: fmt.Sprintf("went into stream %d (%s)", s.ID, stateText(s))}, nil
				}
			}
		}
		return &StreamRef{Text: "in no stream of this trigger now: its stream was purged after completion, or the event was stored before this trigger took it (the definitions changed)"}, nil
	}
	p.State = stream.StateActive
	found, err := x.store.FindStreams(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("find streams: %w", err)
	}
	now := x.clock.Now()
	for _, f := range found {
		s := f.Stream
		if !s.Open || s.Key != tm.Key {
			continue
		}
		if !s.ExpireTimestamp.After(now) {
			return &StreamRef{New: true, Text: fmt.Sprintf("would start a new stream: the open stream %d expired at %s and takes no more events", s.ID, stream.FormatTime(s.ExpireTimestamp))}, nil
		}
		return &StreamRef{ID: s.ID, State: s.State.String(), Text: fmt.Sprintf("would go to stream %d (open, %s)", s.ID, stateText(s))}, nil
	}
	return &StreamRef{New: true, Text: "would start a new stream: no stream with these distinguishing values is open"}, nil
}

// ErrBadInput: what Body was given is not a message id, an event or a
// notification it can read, or the distiller dropped the notification.
var ErrBadInput = errors.New("explain: bad input")

// Body explains what an operator pastes (POST /v1/explain, `winchester
// explain event -`), one JSON object:
//
//   - {"message_id": "…"} alone names a stored event (Event);
//   - an object with "payload" or "oslo.message" is a raw notification,
//     distilled first (Notification);
//   - any other object is an event in the event JSON encoding
//     (GivenEvent; traits of unsupported types are dropped, as ingestion
//     drops them).
//
// Input it cannot read is an error wrapping ErrBadInput; a message id
// that is not stored wraps db.ErrNotFound.
func (x *Explainer) Body(ctx context.Context, data []byte) (Event, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return Event{}, fmt.Errorf("%w: want a JSON object (an event, a notification or {\"message_id\": …}): %v", ErrBadInput, err)
	}
	if raw, ok := obj[stream.KeyMessageID]; ok && len(obj) == 1 {
		var id string
		if err := json.Unmarshal(raw, &id); err != nil || id == "" {
			return Event{}, fmt.Errorf("%w: message_id must be a non-empty string", ErrBadInput)
		}
		return x.Event(ctx, id)
	}
	_, payload := obj["payload"]
	_, oslo := obj["oslo.message"]
	if payload || oslo {
		return x.Notification(ctx, data)
	}
	ev, _, err := stream.DecodeEvent(data)
	if err != nil {
		return Event{}, fmt.Errorf("%w: not an event: %v", ErrBadInput, err)
	}
	return x.GivenEvent(ctx, ev)
}
