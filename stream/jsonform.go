package stream

import "time"

// JSON is the one JSON form of a stream: the HTTP API (GET /v1/streams,
// GET /v1/streams/{id}, the reset answer), `winchester streams list|show
// -o json`, the explanations of package explain and the console all write
// it. docs/HTTP.md documents it. Times are ISO 8601 UTC (FormatTime);
// optional times are null or absent when not set.
type JSON struct {
	ID              int64            `json:"id"`
	Trigger         string           `json:"trigger"`
	State           string           `json:"state"`
	StateSerialNo   int64            `json:"state_serial_no"`
	DistinguishedBy map[string]Value `json:"distinguished_by"`
	FirstEvent      string           `json:"first_event"`
	LastEvent       string           `json:"last_event"`
	ExpireTimestamp *string          `json:"expire_timestamp"`
	FireTimestamp   *string          `json:"fire_timestamp"`
	// Open is true while the stream accepts new events.
	Open bool `json:"open"`
	// Outcome tells how a completed stream ended (Stream.Outcome).
	Outcome string `json:"outcome,omitempty"`
	// Next and NextAt say what happens next and when (Stream.Next).
	Next       string  `json:"next,omitempty"`
	NextAt     *string `json:"next_at,omitempty"`
	Attempts   int     `json:"attempts"`
	LastError  string  `json:"last_error,omitempty"`
	ClaimedBy  string  `json:"claimed_by,omitempty"`
	LeaseUntil *string `json:"lease_until,omitempty"`
	// DefinitionVersion is the version of the definitions the stream was
	// created under (absent: none recorded).
	DefinitionVersion int64 `json:"definition_version,omitempty"`
	// Mark is the paging mark of a listed stream.
	Mark string `json:"_mark,omitempty"`
	// Events are the stream's events, when they were asked for.
	Events []Event `json:"events,omitempty"`
}

// JSON returns the JSON form of the stream, with its paging mark ("" for
// none) and events (nil for none).
func (s Stream) JSON(mark string, events []Event) JSON {
	next, at := s.Next()
	d := s.DistinguishedBy
	if d == nil {
		d = map[string]Value{}
	}
	return JSON{
		ID: s.ID, Trigger: s.Name, State: s.State.String(), StateSerialNo: s.SerialNo,
		DistinguishedBy: d, FirstEvent: FormatTime(s.FirstEvent), LastEvent: FormatTime(s.LastEvent),
		ExpireTimestamp: optTime(s.ExpireTimestamp), FireTimestamp: optTime(s.FireTimestamp),
		Open: s.Open, Outcome: s.Outcome(), Next: next, NextAt: optTime(at),
		Attempts: s.Attempts, LastError: s.LastError, ClaimedBy: s.ClaimedBy, LeaseUntil: optTime(s.LeaseUntil),
		DefinitionVersion: s.DefinitionVersion, Mark: mark, Events: events,
	}
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := FormatTime(t)
	return &s
}

// Outcome tells how a completed stream ended: "fired" or "expired" (a
// stream that was ever ready to fire is never expired, so a fire time
// means it fired); "" for other states.
func (s Stream) Outcome() string {
	if s.State != StateCompleted {
		return ""
	}
	if !s.FireTimestamp.IsZero() {
		return "fired"
	}
	return "expired"
}

// Next returns what happens next to the stream and when: "fire" or
// "expire" at its deadline, or "lease_end" while a worker holds it; ""
// for streams that wait for an operator or are done.
func (s Stream) Next() (what string, at time.Time) {
	switch s.State {
	case StateActive:
		if !s.FireTimestamp.IsZero() {
			return "fire", s.FireTimestamp
		}
		if !s.ExpireTimestamp.IsZero() {
			return "expire", s.ExpireTimestamp
		}
	case StateRetryFire:
		return "fire", s.FireTimestamp
	case StateRetryExpire:
		return "expire", s.ExpireTimestamp
	case StateFiring, StateExpiring:
		if !s.LeaseUntil.IsZero() {
			return "lease_end", s.LeaseUntil
		}
	}
	return "", time.Time{}
}
