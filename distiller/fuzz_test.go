package distiller

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzDistill feeds arbitrary bytes to Distill: it must never panic, must
// report every failure as a *DropError, and every event it returns must be
// well formed and encodable.
func FuzzDistill(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		if strings.HasSuffix(name, ".golden.json") {
			continue
		}
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	d := testDistiller(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDistill(t, d, body)
		// Valid JSON of any shape also goes in as the payload (and the
		// publisher) of a well-formed notification of each definition, so
		// the paths, plugins and conversions see arbitrary values.
		if json.Valid(body) {
			for _, typ := range []string{"compute.instance.exists", "image.upload", "port.create.end", "test.x"} {
				wrapped := fmt.Appendf(nil, `{"message_id":"m","event_type":%q,"timestamp":"2014-08-11T21:31:52","publisher_id":%s,"payload":%s,"_context_tenant":%s}`, typ, body, body, body)
				checkDistill(t, d, wrapped)
			}
		}
	})
}

// checkDistill distills body and checks the invariants of the result.
func checkDistill(t *testing.T, d *Distiller, body []byte) {
	t.Helper()
	ev, res, err := d.Distill(body)
	if err != nil {
		var de *DropError
		if !errors.As(err, &de) || de.Reason.String() == "" {
			t.Fatalf("Distill(%q) error %T %v, want a *DropError", body, err, err)
		}
		return
	}
	if ev.MessageID == "" || ev.Type == "" || ev.Timestamp.IsZero() || res.Definition == nil {
		t.Fatalf("Distill(%q) returned an incomplete event %+v (definition %v)", body, ev, res.Definition)
	}
	for name, v := range ev.Traits {
		if v.IsZero() {
			t.Fatalf("Distill(%q): trait %s has no value", body, name)
		}
	}
	if _, err := ev.MarshalJSON(); err != nil {
		t.Fatalf("Distill(%q): event does not encode: %v", body, err)
	}
}

// FuzzParsePath compiles arbitrary paths and evaluates the ones that
// compile: no panics, and the direct lookups of plain paths (First,
// nonNullMatches) agree with the general evaluator (Matches).
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"payload.instance_id", "$.payload.image_meta.'org.openstack__1__architecture'",
		"payload.fixed_ips[0].address", "payload..state", "(a)|(b)", "a[*].b where c",
		"a[1:-1]", `a["x.y",z]`, "payload.`this`", "a.b|c.d", "payload.bogus(",
	} {
		f.Add(s)
	}
	doc := decodeJSON(f, pathDoc)
	f.Fuzz(func(t *testing.T, src string) {
		p, err := ParsePath(src)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePath(%q) error %T, want *PathError", src, err)
			}
			return
		}
		var want any
		for _, m := range p.Matches(doc) {
			if m.Value != nil {
				want = m.Value
				break
			}
		}
		if _, ok := p.First(doc); ok != (want != nil) {
			t.Fatalf("First(%q) found=%v, Matches found %v", src, ok, want)
		}
		var nonNull []Match
		for _, m := range p.Matches(doc) {
			if m.Value != nil {
				nonNull = append(nonNull, m)
			}
		}
		if diff := cmp.Diff(nonNull, p.nonNullMatches(doc)); diff != "" {
			t.Fatalf("nonNullMatches(%q) differs from Matches (-general +fast):\n%s", src, diff)
		}
	})
}
