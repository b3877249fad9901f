package explain

import (
	"github.com/winchester-go/winchester/stream"
)

// Event is the explanation of one event against every trigger (the answer
// of POST /v1/explain).
type Event struct {
	// Event is the event explained (distilled, for a notification).
	Event stream.Event `json:"event"`
	// Stored is true when an event with this message id is in the
	// database: a stored event was explained, or a given one would be a
	// duplicate and ignored.
	Stored bool `json:"stored"`
	// Distilled is true when the event was distilled from a notification.
	Distilled bool `json:"distilled,omitempty"`
	// Matched counts the triggers that take the event into a stream.
	Matched int `json:"matched"`
	// Triggers holds one entry per trigger, in definition order.
	Triggers []TriggerMatch `json:"triggers"`
}

// TriggerMatch is how an event fares against one trigger.
type TriggerMatch struct {
	Trigger string `json:"trigger"`
	// Matched is true when the trigger takes the event into a stream: a
	// match criteria entry accepts it and its distinguishing values can
	// be computed.
	Matched bool `json:"matched"`
	// CriteriaIndex is the match criteria entry the event satisfied (null
	// when none did); CriteriaLine its line in the triggers file.
	CriteriaIndex *int `json:"criteria_index"`
	CriteriaLine  int  `json:"criteria_line,omitempty"`
	// DistinguishedBy and Key are the event's distinguishing values and
	// their canonical key (stream.Key): the stream it belongs to.
	DistinguishedBy map[string]stream.Value `json:"distinguished_by,omitempty"`
	Key             string                  `json:"key,omitempty"`
	// CountsFor lists the fire criteria (by index) the event counts for.
	CountsFor []int `json:"counts_for_fire_criteria,omitempty"`
	// Stream is the stream the event went to or would go to.
	Stream *StreamRef `json:"stream,omitempty"`
	// Reason says why the trigger does not take the event: the first
	// failed condition with the value the event had, a missing
	// distinguishing trait, or why its distinguishing values cannot be
	// computed.
	Reason string `json:"reason,omitempty"`
	// Mismatches are the reasons of every entry that failed, in order.
	Mismatches []Mismatch `json:"mismatches,omitempty"`
}

// Mismatch is why one match criteria entry does not accept the event.
type Mismatch struct {
	// Entry is the index of the entry; Line its line.
	Entry int `json:"entry"`
	Line  int `json:"line,omitempty"`
	// Reason is in the words of the debug statistics (trigger.Reason...).
	Reason string `json:"reason"`
	// Trait is the trait the failed condition reads, Value the value the
	// event had (absent when it has no such trait).
	Trait string        `json:"trait,omitempty"`
	Value *stream.Value `json:"value,omitempty"`
	// Detail says it for people.
	Detail string `json:"detail"`
}

// StreamRef names the stream an event went to or would go to.
type StreamRef struct {
	// ID and State name the stream; absent for a new stream.
	ID    int64  `json:"id,omitempty"`
	State string `json:"state,omitempty"`
	// In is true when the stored event is in the stream; New when the
	// event would start a new stream.
	In  bool `json:"in,omitempty"`
	New bool `json:"new,omitempty"`
	// Text says it for people.
	Text string `json:"text"`
}

// Stream is the explanation of one stream (the answer of
// GET /v1/streams/{id}/explain).
type Stream struct {
	// Stream is the stream in its one JSON form: state, attempts, last
	// error, deadlines.
	Stream stream.JSON `json:"stream"`
	// TriggerDefined is false when no trigger of the stream's name is
	// defined now (deleted or renamed).
	TriggerDefined bool `json:"trigger_defined"`
	// Events is the number of events in the stream.
	Events int `json:"events"`
	// FireCriteria holds every fire criterion with what it needs and has.
	FireCriteria []FireCriterion `json:"fire_criteria"`
	// Fire says when the stream fires and how that time was computed
	// (absent until the fire criteria are met).
	Fire *Deadline `json:"fire,omitempty"`
	// Expiry says when the stream expires and how that time was computed.
	Expiry *Deadline `json:"expiry,omitempty"`
	// Left says what is left to happen, for people: "waiting for 1 more
	// compute.instance.exists, or expiry at 2014-08-01T12:00:00".
	Left string `json:"left"`
	// Notes are further observations (definition changed since, ...).
	Notes []string `json:"notes,omitempty"`
}

// FireCriterion is one fire criterion of a stream.
type FireCriterion struct {
	// Index is its place in fire_criteria, Line its line.
	Index int `json:"index"`
	Line  int `json:"line,omitempty"`
	// Criterion renders it: event types and trait criteria.
	Criterion string `json:"criterion"`
	// Needs is its number; Has how many of the stream's events match it.
	Needs int  `json:"needs"`
	Has   int  `json:"has"`
	Met   bool `json:"met"`
}

// Deadline is a fire or expiry time and what it was computed from.
type Deadline struct {
	// At is the time (ISO 8601 UTC).
	At string `json:"at"`
	// Expression is the timex expression (expiration), or for the fire
	// time "criteria_met_at + fire_delay".
	Expression string `json:"expression"`
	// Variables are the expression's variables and their values.
	Variables map[string]string `json:"variables"`
	// Due is true when the time has passed.
	Due bool `json:"due"`
}
