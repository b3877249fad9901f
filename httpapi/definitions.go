package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/live"
)

// versionJSON is a stored version of the definitions.
type versionJSON struct {
	Version      int64  `json:"version"`
	Digest       string `json:"digest"`
	Source       string `json:"source"`
	CreatedAt    string `json:"created_at"`
	TriggerFile  string `json:"trigger_file"`
	PipelineFile string `json:"pipeline_file"`
	// Triggers and Pipelines are the texts (GET /v1/definitions/{version}).
	Triggers  *string `json:"triggers,omitempty"`
	Pipelines *string `json:"pipelines,omitempty"`
}

func toVersionJSON(v db.DefinitionVersion, texts bool) versionJSON {
	out := versionJSON{Version: v.Version, Digest: v.Digest, Source: v.Source, CreatedAt: v.CreatedAt.UTC().Format(time.RFC3339Nano),
		TriggerFile: v.TriggerFile, PipelineFile: v.PipelineFile}
	if texts {
		out.Triggers, out.Pipelines = &v.Triggers, &v.Pipelines
	}
	return out
}

func (s *Server) listDefinitions(w http.ResponseWriter, r *http.Request) {
	p := readParams(w, r, "limit")
	if p == nil {
		return
	}
	limit := p.limit()
	if p.failed(w) {
		return
	}
	list, err := s.defs.Versions(r.Context(), limit)
	if err != nil {
		s.queryFailed(w, r, err)
		return
	}
	out := struct {
		Running  int64         `json:"running"`
		Versions []versionJSON `json:"versions"`
	}{Running: s.defs.Number(), Versions: make([]versionJSON, 0, len(list))}
	for _, v := range list {
		out.Versions = append(out.Versions, toVersionJSON(v, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) showDefinitions(w http.ResponseWriter, r *http.Request) {
	if readParams(w, r) == nil {
		return
	}
	var n int64
	if raw := r.PathValue("version"); raw != "latest" {
		v, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || v <= 0 {
			writeError(w, http.StatusBadRequest, "version %q: want a positive number or latest", raw)
			return
		}
		n = v
	}
	v, err := s.defs.Show(r.Context(), n)
	if errors.Is(err, db.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no definitions version %s", r.PathValue("version"))
		return
	}
	if err != nil {
		s.queryFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toVersionJSON(v, true))
}

// applyBody is the body of POST /v1/definitions: the texts of the new
// version. A text left out (null) is the running version's.
type applyBody struct {
	Triggers     *string `json:"triggers"`
	TriggerFile  string  `json:"trigger_file"`
	Pipelines    *string `json:"pipelines"`
	PipelineFile string  `json:"pipeline_file"`
}

// invalidBody is the answer to definitions that do not validate.
type invalidBody struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems"`
}

// readDryRun reads the dry_run parameter and the body of a POST; ok is
// false when it answered the request itself.
func (s *Server) readDryRun(w http.ResponseWriter, r *http.Request) (dryRun bool, body []byte, ok bool) {
	p := readParams(w, r, "dry_run")
	if p == nil {
		return false, nil, false
	}
	dryRun = p.bool("dry_run")
	if p.failed(w) {
		return false, nil, false
	}
	body, ok = s.readBody(w, r, "")
	return dryRun, body, ok
}

func (s *Server) applyDefinitions(w http.ResponseWriter, r *http.Request) {
	dryRun, raw, ok := s.readDryRun(w, r)
	if !ok {
		return
	}
	var body applyBody
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "body: %v (want {\"triggers\": \"…yaml…\", \"pipelines\": \"…yaml…\"})", err)
		return
	}
	if body.Triggers == nil && body.Pipelines == nil {
		writeError(w, http.StatusBadRequest, "body: give triggers, pipelines or both")
		return
	}
	var texts live.Texts
	if cur := s.defs.Current(); cur != nil {
		texts = cur.Texts
	}
	if body.Triggers != nil {
		texts.Triggers, texts.TriggerFile = *body.Triggers, body.TriggerFile
		if texts.TriggerFile == "" {
			texts.TriggerFile = "triggers.yaml"
		}
	}
	if body.Pipelines != nil {
		texts.Pipelines, texts.PipelineFile = *body.Pipelines, body.PipelineFile
		if texts.PipelineFile == "" {
			texts.PipelineFile = "pipelines.yaml"
		}
	}
	s.answerApply(w, r, func() (*live.ApplyResult, error) {
		return s.defs.Apply(r.Context(), texts, live.SourceAPI, dryRun)
	})
}

func (s *Server) rollbackDefinitions(w http.ResponseWriter, r *http.Request) {
	dryRun, raw, ok := s.readDryRun(w, r)
	if !ok {
		return
	}
	var body struct {
		Version int64 `json:"version"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Version <= 0 {
		writeError(w, http.StatusBadRequest, "body: want {\"version\": N} with N a stored version")
		return
	}
	s.answerApply(w, r, func() (*live.ApplyResult, error) {
		return s.defs.Rollback(r.Context(), body.Version, dryRun)
	})
}

// answerApply runs an apply or rollback and answers: 200 with the
// result, 422 with the problems of invalid definitions, 404 for an
// unknown version.
func (s *Server) answerApply(w http.ResponseWriter, r *http.Request, apply func() (*live.ApplyResult, error)) {
	res, err := apply()
	var inv *live.InvalidError
	switch {
	case errors.As(err, &inv):
		writeJSON(w, http.StatusUnprocessableEntity, invalidBody{Error: "invalid definitions: nothing was changed", Problems: inv.Problems()})
		return
	case errors.Is(err, db.ErrNotFound):
		writeError(w, http.StatusNotFound, "%v", err)
		return
	case err != nil:
		s.queryFailed(w, r, err)
		return
	}
	if res.Changes == nil {
		res.Changes = []live.Change{}
	}
	if res.Created {
		s.log.Info("http: definitions applied", "version", res.Version, "previous", res.Previous, "changes", len(res.Changes))
	}
	writeJSON(w, http.StatusOK, res)
}
