package console_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/winchester-go/winchester/console"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/httpapi"
	"github.com/winchester-go/winchester/ingest"
)

// With a read store (a replica, database.read_url), the pages read from
// it and the reset writes to the primary; the stream page right after a
// reset reads the primary, so the operator sees the reset even when the
// replica has not replayed it yet. The "replica" here is a second store
// with the same content that never catches up.
func TestReadsFromTheReadStore(t *testing.T) {
	t.Parallel()
	primary := setup(t, httpapi.Config{}, false)
	replica := setup(t, httpapi.Config{}, false)
	for _, b := range []*bundle{primary, replica} {
		b.ingestKnown(t, "")
		b.fail(t, b.streamOf(t, "per_instance", "instance_id", "i-3"), "webhook: 500")
	}
	failed := primary.streamOf(t, "per_instance", "instance_id", "i-3")
	srv, err := httpapi.New(primary.mgr, primary.store, ingest.New(primary.mgr, ingest.Config{Logger: dbtest.Logger(t)}), httpapi.Config{},
		httpapi.Options{Logger: dbtest.Logger(t), Reads: replica.store})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	c := client(t)
	page := ts.URL + console.Prefix + "/streams/" + itoa(failed.ID)

	if p := get(t, c, page, ""); p.code != 200 || !strings.Contains(p.body, ">error</td>") {
		t.Fatalf("stream page = %d, want the stream in error:\n%s", p.code, p.body)
	}
	p := post(t, c, page+"/reset", "", url.Values{"csrf": {csrf(t, c, ts.URL)}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("reset = %d %s", p.code, p.body)
	}
	if got, _ := primary.store.StreamByID(t.Context(), failed.ID); got.State.String() != "retry_fire" {
		t.Errorf("after the reset the primary has the stream %s, want retry_fire", got.State)
	}
	if got, _ := replica.store.StreamByID(t.Context(), failed.ID); got.State.String() != "error" {
		t.Fatalf("the reset wrote to the read store: its stream is %s", got.State)
	}
	after := get(t, c, ts.URL+p.resp.Header.Get("Location"), "")
	if !strings.Contains(after.body, ">retry_fire</td>") {
		t.Errorf("the page right after the reset does not show retry_fire (read from the primary):\n%s", after.body)
	}
	later := get(t, c, page, "")
	if !strings.Contains(later.body, ">error</td>") {
		t.Errorf("the stream page does not read the read store (which still has the stream in error):\n%s", later.body)
	}
	list := get(t, c, ts.URL+console.Prefix+"/streams?state=error", "")
	if !strings.Contains(list.body, "/streams/"+itoa(failed.ID)) {
		t.Errorf("the streams page does not list the stream the read store has in error:\n%s", list.body)
	}
}
