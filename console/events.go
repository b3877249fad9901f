package console

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

type eventsData struct {
	Form   url.Values
	Traits []string
	Events []stream.Event
	Count  *int64
	Next   string
}

func (c *Console) events(rq *request) {
	f := newForm(rq.r)
	p := db.FindEventsParams{
		EventType: f.str("type"), From: f.time("from"), To: f.time("to"),
		Traits: f.traits(), Mark: f.mark(), Limit: f.limit(),
	}
	d := eventsData{Form: f.q, Traits: f.traitFields()}
	if f.problem() != "" {
		c.render(rq, http.StatusBadRequest, "events", "Events", d, f.problem())
		return
	}
	ctx := rq.r.Context()
	found, err := c.reads.FindEvents(ctx, p)
	if err != nil {
		c.failed(rq, "list events", err)
		return
	}
	for _, e := range found {
		d.Events = append(d.Events, e.Event)
	}
	if len(found) == p.Limit {
		d.Next = f.nextURL(Prefix+"/events", found[len(found)-1].Mark)
	}
	if f.str("count") != "" {
		p.Mark, p.Limit = "", 0
		n, err := c.reads.CountEvents(ctx, p)
		if err != nil {
			c.failed(rq, "count events", err)
			return
		}
		d.Count = &n
	}
	c.render(rq, http.StatusOK, "events", "Events", d, "")
}

func (c *Console) event(rq *request) {
	id := rq.r.PathValue("message_id")
	x, err := c.explainer.Event(rq.r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		c.problem(rq.w, rq.r, http.StatusNotFound, "No event with message_id %q.", id)
		return
	}
	if err != nil {
		c.failed(rq, "explain the event", err)
		return
	}
	c.render(rq, http.StatusOK, "event", "Event "+id, x, "")
}
