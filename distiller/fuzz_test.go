package distiller

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		ev, res, err := d.Distill(body)
		if err != nil {
			var de *DropError
			if !errors.As(err, &de) || de.Reason.String() == "" {
				t.Fatalf("Distill error %T %v, want a *DropError", err, err)
			}
			return
		}
		if ev.MessageID == "" || ev.Type == "" || ev.Timestamp.IsZero() || res.Definition == nil {
			t.Fatalf("Distill returned an incomplete event %+v (definition %v)", ev, res.Definition)
		}
		for name, v := range ev.Traits {
			if v.IsZero() {
				t.Fatalf("trait %s has no value", name)
			}
		}
		if _, err := ev.MarshalJSON(); err != nil {
			t.Fatalf("event does not encode: %v", err)
		}
	})
}

// FuzzParsePath compiles arbitrary paths and evaluates the ones that
// compile: no panics, and a compiled path's First agrees with Matches.
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
		got, ok := p.First(doc)
		if ok != (want != nil) {
			t.Fatalf("First(%q) found=%v, Matches found %v", src, ok, want)
		}
		_ = got
	})
}
