package httpapi

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// DefaultLimit is the page size of GET /v1/streams and /v1/events without
// a limit parameter; MaxLimit the largest accepted.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// eventJSON is a stored event with its paging mark.
type eventJSON struct {
	Mark  string       `json:"_mark"`
	Event stream.Event `json:"event"`
}

// listAnswer is the answer of the list endpoints. Next is the mark to
// pass to get the following page, empty when this page is the last.
type listAnswer[T any] struct {
	Items []T    `json:"items"`
	Count *int64 `json:"count,omitempty"`
	Next  string `json:"next_mark,omitempty"`
}

// params reads the query parameters of a list endpoint.
type params struct {
	q    url.Values
	errs []error
}

func (p *params) str(name string) string { return p.q.Get(name) }

func (p *params) time(name string) time.Time {
	v := p.q.Get(name)
	if v == "" {
		return time.Time{}
	}
	t, err := stream.ParseTime(v)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %v", name, err))
	}
	return t
}

func (p *params) bool(name string) bool {
	v := p.q.Get(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %q is not true or false", name, v))
	}
	return b
}

func (p *params) limit() int {
	v := p.q.Get("limit")
	if v == "" {
		return DefaultLimit
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		p.errs = append(p.errs, fmt.Errorf("limit: %q is not a number from 1 to %d", v, MaxLimit))
	}
	return n
}

// traits reads the repeatable trait=NAME[:TYPE]=VALUE filters (the
// CLI's --trait).
func (p *params) traits() map[string]stream.Value {
	specs := p.q["trait"]
	if len(specs) == 0 {
		return nil
	}
	out := map[string]stream.Value{}
	for _, spec := range specs {
		name, v, err := stream.ParseTraitFilter(spec)
		if err != nil {
			p.errs = append(p.errs, fmt.Errorf("trait %q: %v", spec, err))
			continue
		}
		out[name] = v
	}
	return out
}

// readParams checks the query parameters against allowed; on a problem it
// answers 400 and returns nil.
func readParams(w http.ResponseWriter, r *http.Request, allowed ...string) *params {
	q := r.URL.Query()
	if err := checkParams(q, allowed...); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return nil
	}
	return &params{q: q}
}

func (p *params) failed(w http.ResponseWriter) bool {
	if len(p.errs) == 0 {
		return false
	}
	writeError(w, http.StatusBadRequest, "%v", errors.Join(p.errs...))
	return true
}

// readFailed answers a failed query of the read store: as queryFailed,
// but a replica that does not answer is named, since the primary may be
// fine (reads do not fall back to it).
func (s *Server) readFailed(w http.ResponseWriter, r *http.Request, err error) {
	if s.replica && errors.Is(err, db.ErrUnavailable) {
		s.log.Warn("http: read replica unavailable", "path", r.URL.Path, "error", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "read replica unavailable (database.read_url; reads do not fall back to the primary): %v", err)
		return
	}
	s.queryFailed(w, r, err)
}

func (s *Server) queryFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Warn("http: query failed", "path", r.URL.Path, "error", err)
	if errors.Is(err, db.ErrUnavailable) {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "database unavailable: %v", err)
		return
	}
	writeError(w, http.StatusInternalServerError, "%v", err)
}

func (s *Server) getStreams(w http.ResponseWriter, r *http.Request) {
	p := readParams(w, r, "trigger", "state", "trait", "older_than", "younger_than", "mark", "limit", "count", "events")
	if p == nil {
		return
	}
	fp := db.FindStreamsParams{
		Name: p.str("trigger"), OlderThan: p.time("older_than"), YoungerThan: p.time("younger_than"),
		DistinguishedBy: p.traits(), Mark: p.str("mark"), IncludeEvents: p.bool("events"),
	}
	if st := p.str("state"); st != "" {
		state, err := stream.ParseState(st)
		if err != nil {
			p.errs = append(p.errs, fmt.Errorf("state: %v", err))
		}
		fp.State = state
	}
	count := p.bool("count")
	fp.Limit = p.limit()
	if p.failed(w) {
		return
	}
	found, err := s.reads.FindStreams(r.Context(), fp)
	if err != nil {
		s.readFailed(w, r, err)
		return
	}
	a := listAnswer[stream.JSON]{Items: make([]stream.JSON, 0, len(found))}
	for _, f := range found {
		a.Items = append(a.Items, f.Stream.JSON(f.Mark, f.Events))
	}
	if len(found) == fp.Limit {
		a.Next = found[len(found)-1].Mark
	}
	if count {
		fp.Mark, fp.Limit = "", 0
		n, err := s.reads.CountStreams(r.Context(), fp)
		if err != nil {
			s.readFailed(w, r, err)
			return
		}
		a.Count = &n
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) streamID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "stream id %q: not a positive integer", r.PathValue("id"))
		return 0, false
	}
	return id, true
}

// streamLookupFailed answers the request when looking up stream id
// failed with err (404 for a missing stream) and reports whether it did.
// Other failures are answered by fail (queryFailed, readFailed).
func (s *Server) streamLookupFailed(w http.ResponseWriter, r *http.Request, id int64, err error,
	fail func(http.ResponseWriter, *http.Request, error)) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, db.ErrNotFound):
		writeError(w, http.StatusNotFound, "no stream %d (completed streams are purged unless purge_completed_streams is false)", id)
	default:
		fail(w, r, err)
	}
	return true
}

func (s *Server) getStream(w http.ResponseWriter, r *http.Request) {
	p := readParams(w, r, "events")
	if p == nil {
		return
	}
	withEvents := p.bool("events")
	if p.failed(w) {
		return
	}
	id, ok := s.streamID(w, r)
	if !ok {
		return
	}
	st, err := s.reads.StreamByID(r.Context(), id)
	if s.streamLookupFailed(w, r, id, err, s.readFailed) {
		return
	}
	var events []stream.Event
	if withEvents {
		events, err = s.reads.StreamEvents(r.Context(), id)
		if err != nil {
			s.readFailed(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, st.JSON("", events))
}

func (s *Server) resetStream(w http.ResponseWriter, r *http.Request) {
	if readParams(w, r) == nil {
		return
	}
	id, ok := s.streamID(w, r)
	if !ok {
		return
	}
	before, err := s.store.StreamByID(r.Context(), id)
	if s.streamLookupFailed(w, r, id, err, s.queryFailed) {
		return
	}
	if before.State != stream.StateError && before.State != stream.StateExpireError {
		writeError(w, http.StatusConflict, "stream %d is %s: only streams in error or expire_error can be reset", id, before.State)
		return
	}
	after, err := s.store.ResetStream(r.Context(), id)
	if errors.Is(err, db.ErrConflict) {
		writeError(w, http.StatusConflict, "stream %d changed meanwhile; look at it again", id)
		return
	}
	if err != nil {
		s.queryFailed(w, r, err)
		return
	}
	s.log.Info("http: stream reset", "stream_id", id, "state", after.State.String())
	writeJSON(w, http.StatusOK, after.JSON("", nil))
}

func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	p := readParams(w, r, "type", "from", "to", "trait", "mark", "limit", "count")
	if p == nil {
		return
	}
	fp := db.FindEventsParams{
		EventType: p.str("type"), From: p.time("from"), To: p.time("to"),
		Traits: p.traits(), Mark: p.str("mark"), Limit: p.limit(),
	}
	count := p.bool("count")
	if p.failed(w) {
		return
	}
	found, err := s.reads.FindEvents(r.Context(), fp)
	if err != nil {
		s.readFailed(w, r, err)
		return
	}
	a := listAnswer[eventJSON]{Items: make([]eventJSON, 0, len(found))}
	for _, e := range found {
		a.Items = append(a.Items, eventJSON{Mark: e.Mark, Event: e.Event})
	}
	if len(found) == fp.Limit {
		a.Next = found[len(found)-1].Mark
	}
	if count {
		fp.Mark, fp.Limit = "", 0
		n, err := s.reads.CountEvents(r.Context(), fp)
		if err != nil {
			s.readFailed(w, r, err)
			return
		}
		a.Count = &n
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	if readParams(w, r) == nil {
		return
	}
	id := r.PathValue("message_id")
	e, err := s.reads.EventByMessageID(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no event with message_id %q", id)
		return
	}
	if err != nil {
		s.readFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e.Event)
}

// triggerJSON is a trigger definition with its counters.
type triggerJSON struct {
	Name            string           `json:"name"`
	File            string           `json:"file"`
	Line            int              `json:"line"`
	DebugLevel      int              `json:"debug_level"`
	DistinguishedBy []string         `json:"distinguished_by"`
	FirePipeline    string           `json:"fire_pipeline,omitempty"`
	ExpirePipeline  string           `json:"expire_pipeline,omitempty"`
	FireDelay       string           `json:"fire_delay"`
	Expiration      string           `json:"expiration"`
	Counters        map[string]int64 `json:"counters"`
	// Mismatches are the debug_level 2 reasons events did not match, with
	// their counts.
	Mismatches map[string]int64 `json:"mismatches,omitempty"`
}

const mismatchPrefix = "mismatch: "

func (s *Server) getTriggers(w http.ResponseWriter, r *http.Request) {
	if readParams(w, r) == nil {
		return
	}
	_, per := s.mgr.Stats().Totals()
	defs := s.mgr.Definitions()
	out := struct {
		// Version is the version of the definitions the manager runs
		// (0: none).
		Version  int64         `json:"version"`
		Triggers []triggerJSON `json:"triggers"`
	}{Version: s.mgr.Version(), Triggers: make([]triggerJSON, 0, len(defs))}
	for _, d := range defs {
		t := triggerJSON{
			Name: d.Name, File: d.File, Line: d.Line, DebugLevel: d.DebugLevel,
			FirePipeline: d.FirePipeline, ExpirePipeline: d.ExpirePipeline,
			FireDelay: d.FireDelay.String(), Counters: map[string]int64{},
		}
		if d.Expiration != nil {
			t.Expiration = d.Expiration.String()
		}
		for _, db := range d.DistinguishedBy {
			t.DistinguishedBy = append(t.DistinguishedBy, db.Trait)
		}
		for _, k := range slices.Sorted(maps.Keys(per[d.Name])) {
			if reason, ok := strings.CutPrefix(k, mismatchPrefix); ok {
				if t.Mismatches == nil {
					t.Mismatches = map[string]int64{}
				}
				t.Mismatches[reason] = per[d.Name][k]
				continue
			}
			t.Counters[k] = per[d.Name][k]
		}
		out.Triggers = append(out.Triggers, t)
	}
	writeJSON(w, http.StatusOK, out)
}
