package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/explain"
	"github.com/winchester-go/winchester/stream"
)

// Page sizes of the lists.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// form reads the query parameters of a list page, keeping the raw values
// to fill the form again, and collects what could not be read.
type form struct {
	q        url.Values
	problems []string
}

func newForm(r *http.Request) *form { return &form{q: r.URL.Query()} }

func (f *form) str(name string) string { return strings.TrimSpace(f.q.Get(name)) }

func (f *form) time(name string) time.Time {
	v := f.str(name)
	if v == "" {
		return time.Time{}
	}
	t, err := stream.ParseTime(v)
	if err != nil {
		f.problems = append(f.problems, fmt.Sprintf("%s: %v", name, err))
	}
	return t
}

func (f *form) limit() int {
	v := f.str("limit")
	if v == "" {
		return DefaultLimit
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		f.problems = append(f.problems, fmt.Sprintf("limit: %q is not a number from 1 to %d", v, MaxLimit))
		return DefaultLimit
	}
	return n
}

// traits reads the trait fields (NAME[:TYPE]=VALUE; empty ones are
// ignored).
func (f *form) traits() map[string]stream.Value {
	var out map[string]stream.Value
	for _, spec := range f.q["trait"] {
		if spec = strings.TrimSpace(spec); spec == "" {
			continue
		}
		name, v, err := stream.ParseTraitFilter(spec)
		if err != nil {
			f.problems = append(f.problems, fmt.Sprintf("trait %q: %v", spec, err))
			continue
		}
		if out == nil {
			out = map[string]stream.Value{}
		}
		out[name] = v
	}
	return out
}

// traitFields returns the trait values to show in the form: those given
// and at least two empty ones.
func (f *form) traitFields() []string {
	var out []string
	for _, t := range f.q["trait"] {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	for len(out) < 2 {
		out = append(out, "")
	}
	return out
}

// mark reads the paging mark.
func (f *form) mark() string {
	v := f.str("mark")
	if _, err := db.ParseMark(v); err != nil {
		f.problems = append(f.problems, fmt.Sprintf("mark: %v", err))
		return ""
	}
	return v
}

func (f *form) problem() string { return strings.Join(f.problems, "; ") }

// nextURL is the current page's URL with mark set to next.
func (f *form) nextURL(path, next string) string {
	q := url.Values{}
	for k, v := range f.q {
		if k != "mark" {
			q[k] = v
		}
	}
	q.Set("mark", next)
	return path + "?" + q.Encode()
}

type streamsData struct {
	Form     url.Values
	Traits   []string
	Triggers []string
	States   []string
	Streams  []stream.Stream
	Count    *int64
	Next     string
	Filtered bool
}

func (c *Console) streams(rq *request) {
	f := newForm(rq.r)
	p := db.FindStreamsParams{
		Name: f.str("trigger"), OlderThan: f.time("older_than"), YoungerThan: f.time("younger_than"),
		DistinguishedBy: f.traits(), Mark: f.mark(), Limit: f.limit(),
	}
	if st := f.str("state"); st != "" {
		state, err := stream.ParseState(st)
		if err != nil {
			f.problems = append(f.problems, fmt.Sprintf("state: %v", err))
		}
		p.State = state
	}
	d := streamsData{Form: f.q, Traits: f.traitFields()}
	for _, def := range c.mgr.Definitions() {
		d.Triggers = append(d.Triggers, def.Name)
	}
	for _, st := range stream.States() {
		d.States = append(d.States, st.String())
	}
	if f.problem() != "" {
		c.render(rq, http.StatusBadRequest, "streams", "Streams", d, f.problem())
		return
	}
	ctx := rq.r.Context()
	found, err := c.reads.FindStreams(ctx, p)
	if err != nil {
		c.failed(rq, "list streams", err)
		return
	}
	for _, s := range found {
		d.Streams = append(d.Streams, s.Stream)
	}
	if len(found) == p.Limit {
		d.Next = f.nextURL(Prefix+"/streams", found[len(found)-1].Mark)
	}
	if f.str("count") != "" {
		p.Mark, p.Limit = "", 0
		n, err := c.reads.CountStreams(ctx, p)
		if err != nil {
			c.failed(rq, "count streams", err)
			return
		}
		d.Count = &n
	}
	c.render(rq, http.StatusOK, "streams", "Streams", d, "")
}

type streamData struct {
	Stream    stream.Stream
	Events    []timelineEvent
	Resetable bool
	Notice    string
	Explain   explain.Stream
}

// timelineEvent is an event on the stream's timeline: Offset is the
// time since the stream's first event.
type timelineEvent struct {
	Event  stream.Event
	Offset time.Duration
}

// timeline orders nothing (StreamEvents gives timestamp order) and adds
// each event's offset from the first.
func timeline(events []stream.Event) []timelineEvent {
	out := make([]timelineEvent, len(events))
	for i, e := range events {
		out[i] = timelineEvent{Event: e, Offset: e.Timestamp.Sub(events[0].Timestamp)}
	}
	return out
}

// streamID reads the {id} of the path, answering 404 when it is not one.
func (c *Console) streamID(rq *request) (int64, bool) {
	id, err := strconv.ParseInt(rq.r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		c.problem(rq.w, rq.r, http.StatusNotFound, "Stream id %q is not a positive integer.", rq.r.PathValue("id"))
		return 0, false
	}
	return id, true
}

func (c *Console) stream(rq *request) {
	id, ok := c.streamID(rq)
	if !ok {
		return
	}
	ctx := rq.r.Context()
	// Right after a reset the replica may not show it yet: read the
	// primary then (read-your-writes for the operator who pressed reset).
	reads := c.reads
	if rq.r.URL.Query().Get("done") == "reset" {
		reads = c.store
	}
	s, err := reads.StreamByID(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		c.problem(rq.w, rq.r, http.StatusNotFound, "No stream %d (completed streams are purged unless purge_completed_streams is false).", id)
		return
	}
	if err != nil {
		c.failed(rq, "read the stream", err)
		return
	}
	events, err := reads.StreamEvents(ctx, id)
	if err != nil {
		c.failed(rq, "read the stream's events", err)
		return
	}
	d := streamData{Stream: s, Events: timeline(events), Resetable: resetable(s.State)}
	if rq.r.URL.Query().Get("done") == "reset" {
		d.Notice = "The stream was reset: a worker will run its pipeline again."
	}
	d.Explain = c.explainStream(s, events)
	c.render(rq, http.StatusOK, "stream", fmt.Sprintf("Stream %d", id), d, "")
}

func resetable(st stream.State) bool {
	return st == stream.StateError || st == stream.StateExpireError
}

// reset moves a stream in error to its retry state (admin only).
func (c *Console) reset(rq *request) {
	id, ok := c.streamID(rq)
	if !ok {
		return
	}
	ctx := rq.r.Context()
	before, err := c.store.StreamByID(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		c.problem(rq.w, rq.r, http.StatusNotFound, "No stream %d.", id)
		return
	}
	if err != nil {
		c.failed(rq, "read the stream", err)
		return
	}
	if !resetable(before.State) {
		c.problem(rq.w, rq.r, http.StatusConflict, "Stream %d is %s: only streams in error or expire_error can be reset.", id, before.State)
		return
	}
	after, err := c.store.ResetStream(ctx, id)
	if errors.Is(err, db.ErrConflict) {
		c.problem(rq.w, rq.r, http.StatusConflict, "Stream %d changed meanwhile; look at it again.", id)
		return
	}
	if err != nil {
		c.failed(rq, "reset the stream", err)
		return
	}
	c.log.Info("console: stream reset", "stream_id", id, "state", after.State.String())
	http.Redirect(rq.w, rq.r, fmt.Sprintf("%s/streams/%d?done=reset", Prefix, id), http.StatusSeeOther)
}
