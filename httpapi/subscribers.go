package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/winchester-go/winchester/console"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/subscriber"
)

// subscribers returns the store's subscriber operations; without them it
// answers 501 and returns nil.
func (s *Server) subscribers(w http.ResponseWriter) subscriber.Store {
	ss, ok := s.store.(subscriber.Store)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this store keeps no event subscribers")
		return nil
	}
	return ss
}

// subscriberError answers the error of a subscriber operation.
func (s *Server) subscriberError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, subscriber.ErrUnknown), errors.Is(err, db.ErrNotFound):
		writeError(w, http.StatusNotFound, "%v", err)
	default:
		s.queryFailed(w, r, err)
	}
}

// subscriberList is the answer of GET /v1/subscribers.
type subscriberList struct {
	Subscribers []subscriber.Report `json:"subscribers"`
}

func (s *Server) getSubscribers(w http.ResponseWriter, r *http.Request) {
	if readParams(w, r) == nil {
		return
	}
	ss := s.subscribers(w)
	if ss == nil {
		return
	}
	reports, err := s.subscriberReports(r.Context(), ss)
	if err != nil {
		s.queryFailed(w, r, err)
		return
	}
	out := subscriberList{Subscribers: reports}
	writeJSON(w, http.StatusOK, out)
}

// subscriberReports returns the report of every subscriber, stored or
// configured, by name.
func (s *Server) subscriberReports(ctx context.Context, ss subscriber.Store) ([]subscriber.Report, error) {
	statuses, err := subscriber.ReadStatuses(ctx, ss)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	out := []subscriber.Report{}
	seen := map[string]bool{}
	for _, st := range statuses {
		out = append(out, st.Report(now))
		seen[st.Name] = true
	}
	for _, name := range s.subscriberNames {
		if !seen[name] {
			out = append(out, subscriber.Status{Name: name}.Report(now))
		}
	}
	slices.SortFunc(out, func(a, b subscriber.Report) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// subscriberPanel is the console's table of event subscribers.
func (s *Server) subscriberPanel(ss subscriber.Store) console.Panel {
	return console.Panel{Title: "Event subscribers", LoadFunc: func(ctx context.Context) ([]string, [][]string, error) {
		header := []string{"subscriber", "state", "position", "lag", "delivered", "failures", "dead letters", "claimed by", "last error"}
		reports, err := s.subscriberReports(ctx, ss)
		if err != nil {
			return header, nil, err
		}
		rows := make([][]string, 0, len(reports))
		for _, r := range reports {
			rows = append(rows, []string{r.Name, r.State, strconv.FormatInt(r.Position, 10), strconv.FormatInt(r.Lag, 10),
				strconv.FormatInt(r.Delivered, 10), strconv.FormatInt(r.Failures, 10), strconv.FormatInt(r.DeadLetters, 10),
				r.ClaimedBy, r.LastError})
		}
		return header, rows, nil
	}}
}

// subscriberDetail is the answer of GET /v1/subscribers/{name}.
type subscriberDetail struct {
	subscriber.Report
	DeadLetterList []subscriber.DeadLetterReport `json:"dead_letter_list"`
}

func (s *Server) getSubscriber(w http.ResponseWriter, r *http.Request) {
	p := readParams(w, r, "limit")
	if p == nil {
		return
	}
	limit := p.limit()
	if p.failed(w) {
		return
	}
	ss := s.subscribers(w)
	if ss == nil {
		return
	}
	name := r.PathValue("name")
	st, err := subscriber.ReadStatus(r.Context(), ss, name)
	if err != nil {
		s.queryFailed(w, r, err)
		return
	}
	if !st.HasState && !slices.Contains(s.subscriberNames, name) {
		writeError(w, http.StatusNotFound, "no subscriber %q", name)
		return
	}
	dls, err := subscriber.ReportDeadLetters(r.Context(), ss, name, limit)
	if err != nil {
		s.queryFailed(w, r, err)
		return
	}
	if dls == nil {
		dls = []subscriber.DeadLetterReport{}
	}
	writeJSON(w, http.StatusOK, subscriberDetail{Report: st.Report(time.Now().UTC()), DeadLetterList: dls})
}

// retryAnswer is the answer of POST /v1/subscribers/{name}/retry.
type retryAnswer struct {
	Subscriber string `json:"subscriber"`
	Marked     int    `json:"marked"`
}

func (s *Server) retrySubscriber(w http.ResponseWriter, r *http.Request) {
	p := readParams(w, r, "dead_letter", "all")
	if p == nil {
		return
	}
	all := p.bool("all")
	if p.failed(w) {
		return
	}
	var id int64
	switch v := p.str("dead_letter"); {
	case v != "" && all:
		writeError(w, http.StatusBadRequest, "give dead_letter or all=true, not both")
		return
	case v != "":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "dead_letter %q: want a dead letter id", v)
			return
		}
		id = n
	case !all:
		writeError(w, http.StatusBadRequest, "give dead_letter=ID or all=true")
		return
	}
	ss := s.subscribers(w)
	if ss == nil {
		return
	}
	name := r.PathValue("name")
	n, err := subscriber.Retry(r.Context(), ss, name, id, time.Now().UTC())
	if err != nil {
		s.subscriberError(w, r, err)
		return
	}
	s.log.Info("http: dead letters marked for retry", "subscriber", name, "dead_letter", id, "marked", n)
	writeJSON(w, http.StatusOK, retryAnswer{Subscriber: name, Marked: n})
}

func (s *Server) skipSubscriber(w http.ResponseWriter, r *http.Request) {
	p := readParams(w, r, "to")
	if p == nil {
		return
	}
	var to subscriber.Target
	switch v := p.str("to"); v {
	case "end":
		to.End = true
	case "start":
	default:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "to %q: want an event id, end or start", v)
			return
		}
		to.AfterEvent = n
	}
	ss := s.subscribers(w)
	if ss == nil {
		return
	}
	name := r.PathValue("name")
	if _, err := subscriber.Skip(r.Context(), ss, name, to, time.Now().UTC()); err != nil {
		s.subscriberError(w, r, err)
		return
	}
	st, err := subscriber.ReadStatus(r.Context(), ss, name)
	if err != nil {
		s.queryFailed(w, r, err)
		return
	}
	s.log.Info("http: subscriber position moved", "subscriber", name, "position", st.State.Position.EventID)
	writeJSON(w, http.StatusOK, st.Report(time.Now().UTC()))
}
