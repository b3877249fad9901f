package stream

import (
	"encoding/json"
	"testing"
	"time"
)

// TestStreamJSON checks the exact encoding of the one JSON form of a
// stream, with what happens next in each kind of state.
func TestStreamJSON(t *testing.T) {
	t0 := time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)
	base := Stream{ID: 3, Name: "usage", State: StateActive, SerialNo: 1, Open: true,
		FirstEvent: t0, LastEvent: t0.Add(time.Minute), ExpireTimestamp: t0.Add(time.Hour),
		DistinguishedBy: map[string]Value{"instance_id": String("i-1")}}
	with := func(f func(s *Stream)) Stream {
		s := base
		f(&s)
		return s
	}
	tests := []struct {
		name   string
		s      Stream
		mark   string
		events []Event
		want   string
	}{
		{name: "active, waiting", s: base, mark: "3",
			want: `{"id":3,"trigger":"usage","state":"active","state_serial_no":1,"distinguished_by":{"instance_id":"i-1"},"first_event":"2014-08-01T10:00:00","last_event":"2014-08-01T10:01:00","expire_timestamp":"2014-08-01T11:00:00","fire_timestamp":null,"open":true,"next":"expire","next_at":"2014-08-01T11:00:00","attempts":0,"_mark":"3"}`},
		{name: "ready to fire", s: with(func(s *Stream) { s.FireTimestamp = t0 }),
			want: `{"id":3,"trigger":"usage","state":"active","state_serial_no":1,"distinguished_by":{"instance_id":"i-1"},"first_event":"2014-08-01T10:00:00","last_event":"2014-08-01T10:01:00","expire_timestamp":"2014-08-01T11:00:00","fire_timestamp":"2014-08-01T10:00:00","open":true,"next":"fire","next_at":"2014-08-01T10:00:00","attempts":0}`},
		{name: "firing under a lease", s: with(func(s *Stream) {
			s.State, s.Open, s.FireTimestamp, s.ClaimedBy, s.LeaseUntil = StateFiring, false, t0, "w1", t0.Add(time.Minute)
		}),
			want: `{"id":3,"trigger":"usage","state":"firing","state_serial_no":1,"distinguished_by":{"instance_id":"i-1"},"first_event":"2014-08-01T10:00:00","last_event":"2014-08-01T10:01:00","expire_timestamp":"2014-08-01T11:00:00","fire_timestamp":"2014-08-01T10:00:00","open":false,"next":"lease_end","next_at":"2014-08-01T10:01:00","attempts":0,"claimed_by":"w1","lease_until":"2014-08-01T10:01:00"}`},
		{name: "with a definitions version", s: with(func(s *Stream) { s.DefinitionVersion = 4 }),
			want: `{"id":3,"trigger":"usage","state":"active","state_serial_no":1,"distinguished_by":{"instance_id":"i-1"},"first_event":"2014-08-01T10:00:00","last_event":"2014-08-01T10:01:00","expire_timestamp":"2014-08-01T11:00:00","fire_timestamp":null,"open":true,"next":"expire","next_at":"2014-08-01T11:00:00","attempts":0,"definition_version":4}`},
		{name: "error", s: with(func(s *Stream) { s.State, s.Open, s.Attempts, s.LastError = StateError, false, 2, "boom" }),
			want: `{"id":3,"trigger":"usage","state":"error","state_serial_no":1,"distinguished_by":{"instance_id":"i-1"},"first_event":"2014-08-01T10:00:00","last_event":"2014-08-01T10:01:00","expire_timestamp":"2014-08-01T11:00:00","fire_timestamp":null,"open":false,"attempts":2,"last_error":"boom"}`},
		{name: "completed, expired, with events", s: with(func(s *Stream) { s.State, s.Open, s.DistinguishedBy = StateCompleted, false, nil }),
			events: []Event{{MessageID: "m1", Type: "x", Timestamp: t0}},
			want:   `{"id":3,"trigger":"usage","state":"completed","state_serial_no":1,"distinguished_by":{},"first_event":"2014-08-01T10:00:00","last_event":"2014-08-01T10:01:00","expire_timestamp":"2014-08-01T11:00:00","fire_timestamp":null,"open":false,"outcome":"expired","attempts":0,"events":[{"message_id":"m1","event_type":"x","timestamp":"2014-08-01T10:00:00"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(tc.s.JSON(tc.mark, tc.events))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("JSON =\n%s\nwant\n%s", got, tc.want)
			}
			var back JSON
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("the form does not read back: %v", err)
			}
		})
	}
}
