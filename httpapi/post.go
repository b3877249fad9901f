package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/ingest"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// itemResult is the answer for one posted item.
type itemResult struct {
	MessageID string `json:"message_id,omitempty"`
	Outcome   string `json:"outcome"` // stored, duplicate, rejected
	Reason    string `json:"reason,omitempty"`
}

// postAnswer is the answer to a POST of events or notifications.
type postAnswer struct {
	Stored    int          `json:"stored"`
	Duplicate int          `json:"duplicate"`
	Rejected  int          `json:"rejected"`
	Results   []itemResult `json:"results"`
}

// checkParams refuses query parameters other than allowed.
func checkParams(q url.Values, allowed ...string) error {
	for k := range q {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return fmt.Errorf("unknown query parameter %q: this endpoint takes none", k)
			}
			return fmt.Errorf("unknown query parameter %q (known: %s)", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// readBody reads the request body up to http.max_body_bytes. It answers
// the request itself (413 with hint after the limit, 400) and returns ok
// false when the body cannot be read.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, hint string) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "request body over %d bytes (http.max_body_bytes)%s", s.cfg.MaxBodyBytes, hint)
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "read the request body: %v", err)
		return nil, false
	}
	return body, true
}

// readItems reads the body and splits it into JSON values: one object, a
// JSON array of them, or JSON lines. It answers the request itself and
// returns ok false when the body is refused as a whole.
func (s *Server) readItems(w http.ResponseWriter, r *http.Request) ([]json.RawMessage, bool) {
	if err := checkParams(r.URL.Query()); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return nil, false
	}
	body, ok := s.readBody(w, r, ": send smaller batches")
	if !ok {
		return nil, false
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		writeError(w, http.StatusBadRequest, "empty request body: send a JSON object, a JSON array of objects, or JSON lines")
		return nil, false
	}
	var (
		items []json.RawMessage
		err   error
	)
	if body[0] == '[' {
		if items, err = splitArray(body, s.cfg.MaxItems); err != nil {
			writeError(w, http.StatusBadRequest, "malformed JSON array: %v", err)
			return nil, false
		}
	} else if items, err = splitSequence(body, s.cfg.MaxItems); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON in %v", err)
		return nil, false
	}
	if len(items) > s.cfg.MaxItems {
		writeError(w, http.StatusRequestEntityTooLarge, "more than %d items in one request (http.max_items): send smaller batches", s.cfg.MaxItems)
		return nil, false
	}
	if len(items) == 0 {
		writeError(w, http.StatusBadRequest, "no items: the array is empty")
		return nil, false
	}
	return items, true
}

// unwrapOslo returns the notification an oslo.messaging v2 envelope
// {"oslo.version": "2.0", "oslo.message": "<JSON string>"} holds, or raw
// itself when it is not one.
func unwrapOslo(raw json.RawMessage) (json.RawMessage, error) {
	if !bytes.Contains(raw, []byte(`"oslo.message"`)) {
		return raw, nil
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	msg, ok := env["oslo.message"]
	if !ok {
		return raw, nil
	}
	var inner string
	if err := json.Unmarshal(msg, &inner); err != nil {
		return nil, errors.New(`oslo.message is not a JSON string`)
	}
	b := bytes.TrimSpace([]byte(inner))
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return nil, errors.New("oslo.message does not hold a JSON object")
	}
	return b, nil
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	items, ok := s.readItems(w, r)
	if !ok {
		return
	}
	results := make([]trigger.Result, len(items))
	var events []stream.Event
	var index []int
	for i, raw := range items {
		ev, err := decodeEvent(raw)
		if err != nil {
			results[i] = trigger.Result{MessageID: messageIDOf(raw), Outcome: trigger.Rejected, Reason: err.Error()}
			continue
		}
		events = append(events, ev)
		index = append(index, i)
	}
	s.met.EventsReceived(ingest.SourceHTTP, len(items)-len(events))
	s.met.EventsRejected(ingest.SourceHTTP, metrics.ReasonInvalidEvent, len(items)-len(events))
	if len(events) > 0 {
		res, err := s.in.AddEvents(r.Context(), ingest.SourceHTTP, events)
		if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		for j, i := range index {
			results[i] = res[j]
		}
	}
	s.answerPost(w, results)
}

func decodeEvent(raw json.RawMessage) (stream.Event, error) {
	raw, err := unwrapOslo(raw)
	if err != nil {
		return stream.Event{}, err
	}
	if b := bytes.TrimSpace(raw); len(b) == 0 || b[0] != '{' {
		return stream.Event{}, errors.New("not a JSON object")
	}
	ev, _, err := stream.DecodeEvent(raw)
	return ev, err
}

// messageIDOf digs the message_id out of a rejected item, for the answer.
func messageIDOf(raw json.RawMessage) string {
	var x struct {
		MessageID any `json:"message_id"`
	}
	if json.Unmarshal(raw, &x) != nil {
		return ""
	}
	id, _ := x.MessageID.(string)
	return id
}

func (s *Server) postNotifications(w http.ResponseWriter, r *http.Request) {
	items, ok := s.readItems(w, r)
	if !ok {
		return
	}
	results := make([]trigger.Result, len(items))
	var bodies [][]byte
	var index []int
	for i, raw := range items {
		body, err := unwrapOslo(raw)
		if err == nil {
			if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '{' {
				err = errors.New("not a JSON object")
			}
		}
		if err != nil {
			results[i] = trigger.Result{MessageID: messageIDOf(raw), Outcome: trigger.Rejected, Reason: err.Error()}
			continue
		}
		bodies = append(bodies, body)
		index = append(index, i)
	}
	s.met.EventsReceived(ingest.SourceHTTP, len(items)-len(bodies))
	s.met.EventsRejected(ingest.SourceHTTP, metrics.ReasonUndistillable, len(items)-len(bodies))
	if len(bodies) > 0 {
		res, err := s.in.AddNotifications(r.Context(), ingest.SourceHTTP, bodies)
		if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		for j, i := range index {
			results[i] = res[j]
			if results[i].MessageID == "" {
				results[i].MessageID = messageIDOf(items[i])
			}
		}
	}
	s.answerPost(w, results)
}

// postEventLog is eventlib's logging endpoint: the event type in
// __event__, every other parameter a string trait.
func (s *Server) postEventLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	typ := q.Get("__event__")
	if typ == "" {
		writeError(w, http.StatusBadRequest, "missing query parameter __event__ (the event type, e.g. ?__event__=app.UserSignedUp&user=42)")
		return
	}
	raw := map[string]any{
		stream.KeyEventType: typ,
	}
	for k, vs := range q {
		if k == "__event__" {
			continue
		}
		if len(vs) > 1 {
			writeError(w, http.StatusBadRequest, "query parameter %q given %d times: give each trait once", k, len(vs))
			return
		}
		raw[k] = vs[0]
	}
	if _, ok := raw[stream.KeyMessageID]; !ok {
		raw[stream.KeyMessageID] = uuid.NewString()
	}
	if _, ok := raw[stream.KeyTimestamp]; !ok {
		raw[stream.KeyTimestamp] = stream.FormatTime(time.Now().UTC())
	}
	ev, _, err := stream.NewEvent(raw)
	if err != nil {
		s.met.EventsReceived(ingest.SourceHTTP, 1)
		s.met.EventsRejected(ingest.SourceHTTP, metrics.ReasonInvalidEvent, 1)
		writeError(w, http.StatusUnprocessableEntity, "%v", err)
		return
	}
	res, err := s.in.AddEvents(r.Context(), ingest.SourceHTTP, []stream.Event{ev})
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	s.answerPost(w, res)
}

// storeFailed answers a request whose events could not be stored: 503
// (retry) when the database is unavailable or the request timed out
// waiting, 500 otherwise. Nothing of the request is known stored.
func (s *Server) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Warn("http: store failed", "path", r.URL.Path, "error", err)
	if errors.Is(err, db.ErrUnavailable) || r.Context().Err() != nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "nothing stored, retry later: %v", err)
		return
	}
	writeError(w, http.StatusInternalServerError, "nothing stored: %v", err)
}

// answerPost answers 200 with the results, or 422 when every item was
// rejected (nothing stored).
func (s *Server) answerPost(w http.ResponseWriter, results []trigger.Result) {
	a := postAnswer{Results: make([]itemResult, len(results))}
	for i, r := range results {
		a.Results[i] = itemResult{MessageID: r.MessageID, Outcome: r.Outcome.String(), Reason: r.Reason}
		switch r.Outcome {
		case trigger.Stored:
			a.Stored++
		case trigger.Duplicate:
			a.Duplicate++
		case trigger.Rejected:
			a.Rejected++
		}
	}
	code := http.StatusOK
	if a.Rejected == len(results) {
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, a)
}
