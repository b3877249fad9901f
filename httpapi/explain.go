package httpapi

import (
	"errors"
	"net/http"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/explain"
)

// getStreamExplain answers GET /v1/streams/{id}/explain with the stream's
// explanation (explain.Stream).
func (s *Server) getStreamExplain(w http.ResponseWriter, r *http.Request) {
	if readParams(w, r) == nil {
		return
	}
	id, ok := s.streamID(w, r)
	if !ok {
		return
	}
	x, err := s.explainer.Stream(r.Context(), id)
	if s.streamLookupFailed(w, r, id, err, s.readFailed) {
		return
	}
	writeJSON(w, http.StatusOK, x)
}

// postExplain answers POST /v1/explain: the body is an event, a raw
// notification or {"message_id": …} (explain.Explainer.Body); the answer
// is its explanation (explain.Event). Nothing is stored.
func (s *Server) postExplain(w http.ResponseWriter, r *http.Request) {
	if readParams(w, r) == nil {
		return
	}
	body, ok := s.readBody(w, r, "")
	if !ok {
		return
	}
	x, err := s.explainer.Body(r.Context(), body)
	switch {
	case errors.Is(err, explain.ErrBadInput):
		writeError(w, http.StatusBadRequest, "%v", err)
	case errors.Is(err, db.ErrNotFound):
		writeError(w, http.StatusNotFound, "%v", err)
	case err != nil:
		s.readFailed(w, r, err)
	default:
		writeJSON(w, http.StatusOK, x)
	}
}
