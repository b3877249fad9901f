package pipeline_test

import (
	"errors"
	"testing"

	"github.com/winchester-go/winchester/pipeline"
)

// FuzzParse checks that Parse never panics and that every error it returns
// is a *ConfigError.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"test_pipeline:\n  - logger\n",
		"p:\n  - name: usage\n  - name: atompub\n    params: {url: x, content_format: cuf_xml, event_types: ['a.*', '!a.b']}\n",
		"p:\n  - params: {book: 42}\n",
		"p:\n  - name: notabene\n    params: {exchange: x, queue_name: q, env_keys: [a]}\n",
		"p: []\nq:\n",
		"- a\n",
		"p: {a: b}\n",
	} {
		f.Add([]byte(s))
	}
	reg := builtinRegistry()
	f.Cleanup(func() { _ = reg.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, err := pipeline.Parse("fuzz.yaml", data, reg)
		if err != nil {
			var ce *pipeline.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Parse(%q) error %v (%T) is not a *ConfigError", data, err, err)
			}
			return
		}
		for _, name := range defs.Names() {
			if _, ok := defs.Pipeline(name); !ok {
				t.Fatalf("Names lists %q but Pipeline does not find it", name)
			}
		}
	})
}
