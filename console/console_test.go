package console_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/console"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/httpapi"
	"github.com/winchester-go/winchester/stream"
)

// A browser without a token is sent to the login form, which accepts
// only known tokens, sets an HttpOnly SameSite=Strict cookie and returns
// to the page asked for.
func TestLogin(t *testing.T) {
	t.Parallel()
	b := setup(t, httpapi.Config{}, true)
	c := client(t)
	p := get(t, c, b.url+"/ui/streams?state=active", "")
	if p.code != http.StatusSeeOther || p.resp.Header.Get("Location") != "/ui/login?next=%2Fui%2Fstreams%3Fstate%3Dactive" {
		t.Fatalf("GET /ui/streams without a token = %d to %q; want 303 to the login form", p.code, p.resp.Header.Get("Location"))
	}
	p = get(t, c, b.url+p.resp.Header.Get("Location"), "")
	if p.code != 200 || !strings.Contains(p.body, `name="token"`) {
		t.Fatalf("login form = %d %s", p.code, p.body)
	}
	form := url.Values{"csrf": {csrf(t, c, b.url)}, "next": {"/ui/streams?state=active"}}

	form.Set("token", "not-a-known-token-at-all")
	if p = post(t, c, b.url+"/ui/login", "", form); p.code != http.StatusUnauthorized || !strings.Contains(p.body, "not accepted") {
		t.Errorf("login with an unknown token = %d; want 401 saying so", p.code)
	}
	noCSRF := url.Values{"token": {readToken}}
	if p = post(t, c, b.url+"/ui/login", "", noCSRF); p.code != http.StatusForbidden {
		t.Errorf("login without the CSRF field = %d; want 403", p.code)
	}

	form.Set("token", readToken)
	p = post(t, c, b.url+"/ui/login", "", form)
	if p.code != http.StatusSeeOther || p.resp.Header.Get("Location") != "/ui/streams?state=active" {
		t.Fatalf("login = %d to %q; want 303 back to the page", p.code, p.resp.Header.Get("Location"))
	}
	var token *http.Cookie
	for _, ck := range p.resp.Cookies() {
		if ck.Name == console.TokenCookie {
			token = ck
		}
	}
	if token == nil || token.Value != readToken || !token.HttpOnly || token.SameSite != http.SameSiteStrictMode || token.Path != "/ui" {
		t.Fatalf("token cookie = %+v; want the token, HttpOnly, SameSite=Strict, Path=/ui", token)
	}
	if p = get(t, c, b.url+"/ui/streams?state=active", ""); p.code != 200 {
		t.Errorf("GET /ui/streams after login = %d", p.code)
	}

	// A next outside the console is ignored: no open redirect.
	for _, next := range []string{"https://evil.example/", "//evil.example/ui/", "/v1/streams"} {
		form.Set("next", next)
		if p = post(t, c, b.url+"/ui/login", "", form); p.resp.Header.Get("Location") != "/ui/" {
			t.Errorf("login with next=%q redirects to %q; want /ui/", next, p.resp.Header.Get("Location"))
		}
	}

	// Logging out clears the cookie: the next page view asks again.
	if p = post(t, c, b.url+"/ui/logout", "", url.Values{"csrf": {csrf(t, c, b.url)}}); p.code != http.StatusSeeOther {
		t.Fatalf("logout = %d", p.code)
	}
	if p = get(t, c, b.url+"/ui/", ""); p.code != http.StatusSeeOther {
		t.Errorf("GET /ui/ after logout = %d; want 303 to the login form", p.code)
	}

	// A stale cookie (a token removed from the configuration) is cleared.
	u, _ := url.Parse(b.url + "/ui/")
	c.Jar.SetCookies(u, []*http.Cookie{{Name: console.TokenCookie, Value: "removed-token-0123456789", Path: "/ui"}})
	if p = get(t, c, b.url+"/ui/", ""); p.code != http.StatusSeeOther || !strings.Contains(p.resp.Header.Get("Location"), "why=unknown") {
		t.Errorf("GET /ui/ with an unknown token = %d to %q; want 303 to the login form saying why", p.code, p.resp.Header.Get("Location"))
	}
}

// Scopes: a write-only token may not view; a read token may view but not
// reset; an admin token resets, only with the form's CSRF token, and
// only streams in error.
func TestScopesAndReset(t *testing.T) {
	t.Parallel()
	b := setup(t, httpapi.Config{}, true)
	b.ingestKnown(t, writeToken)
	failed := b.fail(t, b.streamOf(t, "per_instance", "instance_id", "i-3"), "webhook: 500\nbody")
	active := b.streamOf(t, "per_instance", "instance_id", "i-2")
	c := client(t)

	if p := get(t, c, b.url+"/ui/", writeToken); p.code != http.StatusForbidden {
		t.Errorf("GET /ui/ with a write token = %d; want 403", p.code)
	}
	p := get(t, c, b.url+"/ui/streams/"+itoa(failed.ID), readToken)
	if p.code != 200 || !strings.Contains(p.body, "webhook: 500") || strings.Contains(p.body, `id="reset"`) {
		t.Fatalf("stream page for a read token = %d; want the error and no reset button:\n%s", p.code, p.body)
	}
	if !strings.Contains(p.body, "needs a token with the admin scope") {
		t.Errorf("stream page for a read token does not say why there is no reset button")
	}
	tok := csrf(t, c, b.url)
	reset := b.url + "/ui/streams/" + itoa(failed.ID) + "/reset"
	if p := post(t, c, reset, readToken, url.Values{"csrf": {tok}}); p.code != http.StatusForbidden {
		t.Errorf("reset with a read token = %d; want 403", p.code)
	}
	if p := get(t, c, b.url+"/ui/streams/"+itoa(failed.ID), adminToken); !strings.Contains(p.body, `id="reset"`) {
		t.Fatalf("stream page for an admin token has no reset button")
	}
	for name, form := range map[string]url.Values{"no CSRF field": {}, "a wrong CSRF field": {"csrf": {strings.Repeat("0", 32)}}} {
		if p := post(t, c, reset, adminToken, form); p.code != http.StatusForbidden {
			t.Errorf("reset with %s = %d; want 403", name, p.code)
		}
	}
	if p := post(t, client(t), reset, adminToken, url.Values{"csrf": {tok}}); p.code != http.StatusForbidden {
		t.Errorf("reset from a client without the CSRF cookie = %d; want 403", p.code)
	}
	if got, _ := b.store.StreamByID(t.Context(), failed.ID); got.State != stream.StateError {
		t.Fatalf("refused resets changed the stream to %s", got.State)
	}
	p = post(t, c, reset, adminToken, url.Values{"csrf": {tok}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("reset = %d %s", p.code, p.body)
	}
	if got, _ := b.store.StreamByID(t.Context(), failed.ID); got.State != stream.StateRetryFire {
		t.Errorf("after reset the stream is %s, want retry_fire", got.State)
	}
	if p = get(t, c, b.url+p.resp.Header.Get("Location"), adminToken); !strings.Contains(p.body, "was reset") {
		t.Errorf("the page after a reset does not say so")
	}
	if p := post(t, c, b.url+"/ui/streams/"+itoa(active.ID)+"/reset", adminToken, url.Values{"csrf": {tok}}); p.code != http.StatusConflict {
		t.Errorf("reset of an active stream = %d; want 409", p.code)
	}
	if p := post(t, c, b.url+"/ui/streams/999/reset", adminToken, url.Values{"csrf": {tok}}); p.code != http.StatusNotFound {
		t.Errorf("reset of a missing stream = %d; want 404", p.code)
	}
}

// Every page renders, with what it must show, and bad requests get an
// error page with a status, not a half page.
func TestPages(t *testing.T) {
	t.Parallel()
	b := setup(t, httpapi.Config{}, false)
	b.ingestKnown(t, "")
	failed := b.fail(t, b.streamOf(t, "per_instance", "instance_id", "i-3"), "boom")
	waiting := b.streamOf(t, "per_instance", "instance_id", "i-2")
	ready := b.streamOf(t, "per_instance", "instance_id", "i-1")
	jobStart := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	if _, err := b.store.(db.JobStore).CreateJob(t.Context(), "nightly", jobStart, jobStart); err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	c := client(t)
	tests := []struct {
		name, path string
		code       int
		want       []string
		not        []string
	}{
		{name: "overview", path: "/ui/", code: 200, want: []string{`id="count-active">`, ">3</a>", `id="count-error"><a href="/ui/streams?state=error">1</a>`, `id="count-total">4`, "boom"}},
		{name: "streams", path: "/ui/streams", code: 200, want: []string{"per_instance", "per_tenant", "instance_id=i-2"}},
		{name: "streams by trigger", path: "/ui/streams?trigger=per_tenant&count=1", code: 200, want: []string{"tenant_id=t-1", `id="total">1 streams`}, not: []string{"instance_id=i-2"}},
		{name: "streams by trait", path: "/ui/streams?trait=instance_id%3Di-2&trait=", code: 200, want: []string{"instance_id=i-2"}, not: []string{"instance_id=i-1"}},
		{name: "streams paged", path: "/ui/streams?limit=1", code: 200, want: []string{`id="next"`, "mark="}},
		{name: "streams bad state", path: "/ui/streams?state=sleeping", code: 400, want: []string{`id="problem"`, "state:"}},
		{name: "streams bad trait", path: "/ui/streams?trait=n:int%3Dx", code: 400, want: []string{"is not an integer"}},
		{name: "streams bad time", path: "/ui/streams?older_than=yesterday", code: 400, want: []string{"older_than"}},
		{name: "streams bad limit", path: "/ui/streams?limit=0", code: 400, want: []string{"limit"}},
		{name: "streams bad mark", path: "/ui/streams?mark=zz", code: 400, want: []string{"mark"}},
		{name: "stream", path: "/ui/streams/" + itoa(failed.ID), code: 200, want: []string{"i-3", "compute.instance.create.start", "boom", `id="reset"`}},
		{name: "stream explained", path: "/ui/streams/" + itoa(waiting.ID), code: 200, want: []string{`id="left"`, "waiting for 1 more compute.instance.exists", `<tr class="unmet"><td>compute.instance.exists</td><td>1</td><td>0</td><td>missing 1</td></tr>`, "$last &#43; 1h"}},
		{name: "stream fired explained", path: "/ui/streams/" + itoa(ready.ID), code: 200, want: []string{`<tr class="met"><td>compute.instance.exists</td><td>1</td><td>1</td><td>met</td></tr>`, "criteria_met_at &#43; fire_delay"}},
		{name: "stream missing", path: "/ui/streams/999", code: 404, want: []string{"No stream 999"}},
		{name: "stream bad id", path: "/ui/streams/x", code: 404, want: []string{"not a positive integer"}},
		{name: "events", path: "/ui/events", code: 200, want: []string{"m-1", "m-4"}},
		{name: "events by type", path: "/ui/events?type=compute.instance.exists&count=1", code: 200, want: []string{"m-2", `id="total">1 events`}, not: []string{"m-1<"}},
		{name: "events by trait", path: "/ui/events?trait=instance_id%3Di-2", code: 200, want: []string{"m-3"}, not: []string{"m-4<"}},
		{name: "events bad time", path: "/ui/events?from=soon", code: 400, want: []string{"from"}},
		{name: "event", path: "/ui/events/m-2", code: 200, want: []string{"compute.instance.exists", "tenant_id", "t-1", "2 of 3 triggers took it", "memory_mb &gt; 4096 (int) failed: the event has 2048", "#0 (line", `href="/ui/streams/` + itoa(ready.ID) + `"`}},
		{name: "event explained", path: "/ui/events/m-1", code: 200, want: []string{"instance_id=i-1", "tenant_id=t-1"}},
		{name: "event missing", path: "/ui/events/nope", code: 404, want: []string{"No event with message_id"}},
		{name: "triggers", path: "/ui/triggers", code: 200, want: []string{"per_instance", "triggers.yaml", "compute.instance.exists", "1 ×", "nightly", "@daily", "<td>idle</td><td>2026-01-02T00:00:00</td>", "Mismatch reasons are counted with debug_level: 2",
			"Event subscribers", "<td>audit</td><td>none</td>"}},
		{name: "stylesheet", path: "/ui/static/console.css", code: 200, want: []string{"--accent"}},
		{name: "unknown page", path: "/ui/nothing", code: 404, want: []string{"No such page"}},
		{name: "login without tokens", path: "/ui/login", code: http.StatusSeeOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := get(t, c, b.url+tc.path, "")
			if p.code != tc.code {
				t.Fatalf("GET %s = %d, want %d:\n%s", tc.path, p.code, tc.code, p.body)
			}
			for _, w := range tc.want {
				if !strings.Contains(p.body, w) {
					t.Errorf("GET %s lacks %q:\n%s", tc.path, w, p.body)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(p.body, n) {
					t.Errorf("GET %s has %q", tc.path, n)
				}
			}
		})
	}
}

// With http.ui: false the console is not served at all.
func TestUIOff(t *testing.T) {
	t.Parallel()
	off := false
	b := setup(t, httpapi.Config{UI: &off}, false)
	p := get(t, client(t), b.url+"/ui/", "")
	if p.code != http.StatusNotFound || !strings.Contains(p.body, `"error"`) {
		t.Errorf("GET /ui/ with ui: false = %d %s; want the API's JSON 404", p.code, p.body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
