package httpapi_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/httpapi"
)

func TestSubscriberEndpoints(t *testing.T) {
	b := setup(t, httpapi.Config{}, httpapi.Options{Subscribers: []string{"audit", "quiet"}, Tokens: []httpapi.Token{
		{Token: readToken, Scopes: []string{"read"}},
		{Token: adminToken, Scopes: []string{"admin"}},
	}})
	ss := b.store.(db.SubscriberStore)
	ctx := t.Context()
	if _, err := ss.CreateSubscriber(ctx, "audit", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"e1", "e2", "e3"} {
		if a := do(t, "POST", b.url+"/v1/events", adminToken, event(id, "x.y")); a.code != 200 {
			t.Fatalf("POST /v1/events = %d %s", a.code, a.raw)
		}
	}
	e2, err := b.store.EventByMessageID(ctx, "e2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ss.UpdateSubscriber(ctx, db.UpdateSubscriberParams{Name: "audit", Now: time.Now(), Failures: 3, LastError: "down",
		DeadLetters: []db.DeadLetter{{EventID: e2.ID, MessageID: "e2", EventType: "x.y", Attempts: 3, Error: "down"}}}); err != nil {
		t.Fatal(err)
	}

	m := do(t, "GET", b.url+"/metrics", "", "")
	for _, want := range []string{`winchester_subscriber_lag_events{subscriber="audit"} 3`, `winchester_subscriber_failures_total{subscriber="audit"} 3`,
		`winchester_subscriber_dead_letters{subscriber="audit"} 1`, `winchester_subscriber_delivered_total{subscriber="audit"} 0`,
		`winchester_subscriber_metrics_up 1`} {
		if !strings.Contains(m.raw, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	a := do(t, "GET", b.url+"/v1/subscribers", readToken, "")
	list, _ := a.body["subscribers"].([]any)
	if a.code != 200 || len(list) != 2 {
		t.Fatalf("GET /v1/subscribers = %d %s", a.code, a.raw)
	}
	audit, quiet := list[0].(map[string]any), list[1].(map[string]any)
	if audit["name"] != "audit" || audit["state"] != "idle" || audit["lag"] != 3.0 || audit["dead_letters"] != 1.0 || audit["failures"] != 3.0 {
		t.Errorf("audit = %v", audit)
	}
	if quiet["name"] != "quiet" || quiet["state"] != "none" {
		t.Errorf("a configured subscriber without state = %v", quiet)
	}

	a = do(t, "GET", b.url+"/v1/subscribers/audit", readToken, "")
	dls, _ := a.body["dead_letter_list"].([]any)
	if a.code != 200 || len(dls) != 1 || dls[0].(map[string]any)["message_id"] != "e2" {
		t.Fatalf("GET /v1/subscribers/audit = %d %s", a.code, a.raw)
	}
	dlID := dls[0].(map[string]any)["id"].(float64)
	if a := do(t, "GET", b.url+"/v1/subscribers/nobody", readToken, ""); a.code != 404 {
		t.Errorf("GET an unknown subscriber = %d %s, want 404", a.code, a.raw)
	}

	cases := []struct {
		name, path, token string
		code              int
	}{
		{"read token retries", "/v1/subscribers/audit/retry?all=true", readToken, 403},
		{"read token skips", "/v1/subscribers/audit/skip?to=end", readToken, 403},
		{"neither id nor all", "/v1/subscribers/audit/retry", adminToken, 400},
		{"both id and all", "/v1/subscribers/audit/retry?all=true&dead_letter=1", adminToken, 400},
		{"bad id", "/v1/subscribers/audit/retry?dead_letter=x", adminToken, 400},
		{"unknown dead letter", "/v1/subscribers/audit/retry?dead_letter=999", adminToken, 404},
		{"unknown subscriber", "/v1/subscribers/nobody/retry?all=true", adminToken, 404},
		{"retry one", "/v1/subscribers/audit/retry?dead_letter=" + itoa(dlID), adminToken, 200},
		{"bad target", "/v1/subscribers/audit/skip?to=later", adminToken, 400},
		{"unknown event", "/v1/subscribers/audit/skip?to=999999", adminToken, 404},
		{"skip without state", "/v1/subscribers/quiet/skip?to=end", adminToken, 404},
		{"skip to the end", "/v1/subscribers/audit/skip?to=end", adminToken, 200},
	}
	for _, tc := range cases {
		if a := do(t, "POST", b.url+tc.path, tc.token, ""); a.code != tc.code {
			t.Errorf("%s: POST %s = %d %s, want %d", tc.name, tc.path, a.code, a.raw, tc.code)
		}
	}
	if marked, _ := ss.DeadLetters(ctx, "audit", true, 10); len(marked) != 1 {
		t.Errorf("dead letters marked for retry: %+v, want the one", marked)
	}
	a = do(t, "GET", b.url+"/v1/subscribers/audit", readToken, "")
	if a.body["lag"] != 0.0 {
		t.Errorf("lag after skipping to the end = %v, want 0", a.body["lag"])
	}
	if a := do(t, "POST", b.url+"/v1/subscribers/audit/skip?to=start", adminToken, ""); a.code != 200 || a.body["lag"] != 3.0 || a.body["position"] != 0.0 {
		t.Errorf("skip to the start = %d %s, want position 0, lag 3", a.code, a.raw)
	}
}

func itoa(f float64) string { return strconv.FormatInt(int64(f), 10) }
