package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/httpapi"
	"github.com/winchester-go/winchester/live"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/pipeline/handlers"
)

// TestDefinitionsEndpoints: the definitions endpoints need the admin
// scope, validate what they store, and answer bad requests with 4xx.
func TestDefinitionsEndpoints(t *testing.T) {
	b := setup(t, httpapi.Config{}, httpapi.Options{})
	reg := pipeline.NewRegistry()
	handlers.RegisterBuiltins(reg)
	k := live.New(b.store.(db.DefinitionStore), reg, b.mgr, live.Config{Logger: dbtest.Logger(t)})
	if err := k.Start(t.Context(), live.Texts{TriggerFile: "triggers.yaml", Triggers: testTriggers,
		PipelineFile: "pipelines.yaml", Pipelines: "p: [logger]\n"}); err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(b.mgr, b.store, b.in, httpapi.Config{}, httpapi.Options{Definitions: k, Logger: dbtest.Logger(t),
		Tokens: []httpapi.Token{{Token: readToken, Scopes: []string{"read"}}, {Token: adminToken, Scopes: []string{"admin"}}}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	body := func(triggers string) string {
		b, _ := json.Marshal(map[string]string{"triggers": triggers})
		return string(b)
	}
	added := testTriggers + strings.ReplaceAll(testTriggers, "per_instance", "second")
	cases := []struct {
		name, method, path, token, body string
		code                            int
		want                            string
	}{
		{"read token may not list", "GET", "/v1/definitions", readToken, "", 403, ""},
		{"read token may not apply", "POST", "/v1/definitions", readToken, body(added), 403, ""},
		{"list", "GET", "/v1/definitions", adminToken, "", 200, `"running":1`},
		{"show", "GET", "/v1/definitions/1", adminToken, "", 200, `"triggers":"\n- name: per_instance`},
		{"show latest", "GET", "/v1/definitions/latest", adminToken, "", 200, `"version":1,`},
		{"show unknown", "GET", "/v1/definitions/7", adminToken, "", 404, ""},
		{"show bad version", "GET", "/v1/definitions/x", adminToken, "", 400, ""},
		{"empty body", "POST", "/v1/definitions", adminToken, "{}", 400, "give triggers, pipelines or both"},
		{"unknown key", "POST", "/v1/definitions", adminToken, `{"trigger": "x"}`, 400, "unknown field"},
		{"bad parameter", "POST", "/v1/definitions?dryrun=1", adminToken, body(added), 400, "dry_run"},
		{"invalid", "POST", "/v1/definitions", adminToken, body(testTriggers + "- name: x\n"), 422, `triggers.yaml:11: trigger \"x\": expiration: required field`},
		{"dry run", "POST", "/v1/definitions?dry_run=true", adminToken, body(added), 200, `"name":"second","change":"added"`},
		{"apply", "POST", "/v1/definitions", adminToken, body(added), 200, `"version":2,"previous":1,"created":true`},
		{"triggers carry the version", "GET", "/v1/triggers", readToken, "", 200, `"version":2,`},
		{"rollback unknown", "POST", "/v1/definitions/rollback", adminToken, `{"version": 9}`, 404, ""},
		{"rollback bad body", "POST", "/v1/definitions/rollback", adminToken, `{"version": 0}`, 400, ""},
		{"rollback", "POST", "/v1/definitions/rollback", adminToken, `{"version": 1}`, 200, `"name":"second","change":"removed"`},
	}
	for _, tc := range cases {
		a := do(t, tc.method, ts.URL+tc.path, tc.token, tc.body)
		if a.code != tc.code || !strings.Contains(a.raw, tc.want) {
			t.Errorf("%s: %s %s = %d %s, want %d with %s", tc.name, tc.method, tc.path, a.code, a.raw, tc.code, tc.want)
		}
	}
	if k.Number() != 3 || b.mgr.Version() != 3 {
		t.Errorf("after the rollback: keeper at %d, manager at %d; want 3", k.Number(), b.mgr.Version())
	}
}
