package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/winchester-go/winchester/stream"
)

// Document is the JSON form of a stream handed to programs outside the
// engine (the webhook's request body, the exec handler's standard input).
// Events are in the project's event JSON (docs/EVENT_JSON.md).
type Document struct {
	StreamID        int64                   `json:"stream_id"`
	Trigger         string                  `json:"trigger"`
	Action          string                  `json:"action,omitempty"`
	Pipeline        string                  `json:"pipeline,omitempty"`
	IdempotencyKey  string                  `json:"idempotency_key"`
	DistinguishedBy map[string]stream.Value `json:"distinguished_by"`
	Events          []stream.Event          `json:"events"`
}

// Document returns the stream document of the run with the given events.
func (e *Env) Document(events []stream.Event) Document {
	dist := e.DistinguishedBy
	if dist == nil {
		dist = map[string]stream.Value{}
	}
	if events == nil {
		events = []stream.Event{}
	}
	return Document{
		StreamID: e.StreamID, Trigger: e.StreamName, Action: e.Action, Pipeline: e.Pipeline,
		IdempotencyKey: e.IdempotencyKey, DistinguishedBy: dist, Events: events,
	}
}

// Marshal encodes the document as one line of JSON.
func (d Document) Marshal() ([]byte, error) {
	return json.Marshal(d)
}

// IdempotencyKey derives the durable key of a stream's run from what does
// not change between attempts: the stream id, its trigger and the message
// id of its first event (which tells apart two streams that got the same
// id, in a database that reuses ids after a purge). It is 32 hex digits.
func IdempotencyKey(streamID int64, trigger string, events []stream.Event) string {
	h := sha256.New()
	first := ""
	if len(events) > 0 {
		first = events[0].MessageID
	}
	for _, part := range []string{"winchester-stream-v1", strconv.FormatInt(streamID, 10), trigger, first} {
		h.Write([]byte(strconv.Itoa(len(part))))
		h.Write([]byte{':'})
		h.Write([]byte(part))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
