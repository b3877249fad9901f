package httpapi_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/httpapi"
)

// jobsAPI returns the jobs of an engine with an exec job "tick" that
// appends its window to ticks.txt in dir.
func jobsAPI(t *testing.T) (httpapi.Jobs, string) {
	t.Helper()
	dir := t.TempDir()
	yaml := `database: {url: 'sqlite:///w.db'}
jobs:
  tick:
    schedule: "@hourly"
    handler: exec
    command: [sh, -c, 'echo "$WINCHESTER_WINDOW_START" >> ticks.txt']
`
	if err := os.WriteFile(filepath.Join(dir, "winchester.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := winchester.Load(filepath.Join(dir, "winchester.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := winchester.Open(t.Context(), cfg, winchester.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	r, err := eng.NewJobRunner("http")
	if err != nil {
		t.Fatal(err)
	}
	api, err := eng.NewJobsAPI(r)
	if err != nil {
		t.Fatal(err)
	}
	return api, dir
}

func TestJobs(t *testing.T) {
	api, dir := jobsAPI(t)
	b := setup(t, httpapi.Config{}, httpapi.Options{Jobs: api, Tokens: []httpapi.Token{
		{Token: readToken, Scopes: []string{"read"}},
		{Token: adminToken, Scopes: []string{"admin"}},
	}})
	a := do(t, "GET", b.url+"/v1/jobs", readToken, "")
	if a.code != 200 || !strings.Contains(a.raw, `"name":"tick"`) || !strings.Contains(a.raw, `"name":"rescue_stale_claims","schedule":"@every 30s"`) {
		t.Fatalf("GET /v1/jobs = %d %s", a.code, a.raw)
	}
	run := "/v1/jobs/tick/run?window_start=2020-01-01T00:00:00Z&window_end=2020-01-01T01:00:00Z"
	if a := do(t, "POST", b.url+run, readToken, ""); a.code != 403 {
		t.Errorf("POST run with a read token = %d %s, want 403", a.code, a.raw)
	}
	a = do(t, "POST", b.url+run, adminToken, "")
	if a.code != 200 || a.body["status"] != "completed" || a.body["window_end"] != "2020-01-01T01:00:00Z" || a.body["worker"] != "http" {
		t.Fatalf("POST run = %d %s, want the window completed", a.code, a.raw)
	}
	// The same window again would run it twice.
	if a := do(t, "POST", b.url+run, adminToken, ""); a.code != 409 || !strings.Contains(a.raw, "must start where the last window done ended") ||
		!strings.Contains(a.raw, "it is done already, and a window done is never run again") {
		t.Errorf("POST run of a done window = %d %s, want 409", a.code, a.raw)
	}
	a = do(t, "GET", b.url+"/v1/jobs/tick/history?limit=5", readToken, "")
	if a.code != 200 || strings.Count(a.raw, `"status":"completed"`) != 1 {
		t.Errorf("GET history = %d %s, want one completed run", a.code, a.raw)
	}
	if ticks, err := os.ReadFile(filepath.Join(dir, "ticks.txt")); err != nil || string(ticks) != "2020-01-01T00:00:00Z\n" {
		t.Errorf("the command ran for %q (%v), want the one window", ticks, err)
	}
	for _, tc := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/v1/jobs/nope/history", 404, `no job \"nope\"`},
		{"POST", "/v1/jobs/nope/run", 404, `no job \"nope\"`},
		{"POST", "/v1/jobs/tick/run?window_start=2020-01-01T01:00:00Z", 400, "give both"},
		{"POST", "/v1/jobs/tick/run?window_start=soon&window_end=later", 400, "window_start"},
		{"POST", "/v1/jobs/tick/run?bogus=1", 400, "bogus"},
		{"GET", "/v1/jobs/tick/history?limit=0", 400, "limit"},
	} {
		if a := do(t, tc.method, b.url+tc.path, adminToken, ""); a.code != tc.code || !strings.Contains(a.raw, tc.want) {
			t.Errorf("%s %s = %d %s, want %d with %q", tc.method, tc.path, a.code, a.raw, tc.code, tc.want)
		}
	}
}

// Without jobs the routes do not exist.
func TestNoJobs(t *testing.T) {
	b := setup(t, httpapi.Config{}, httpapi.Options{})
	if a := do(t, "GET", b.url+"/v1/jobs", "", ""); a.code != 404 {
		t.Errorf("GET /v1/jobs without jobs = %d %s, want 404", a.code, a.raw)
	}
}
