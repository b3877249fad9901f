package winchester

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead: any file content gives a config or an error, never a panic,
// and a config that reads also validates or reports errors without
// panicking.
func FuzzRead(f *testing.F) {
	f.Add([]byte("config_path: [a, /b]\ndatabase:\n  url: sqlite:///w.db\nlog_level: debug\n"))
	f.Add([]byte("statistics_period: 1.5\nshutdown_grace: 1m\nworker_lease: 2m\nrescue_after: 3m\n"))
	f.Add([]byte("database: {url: 'postgresql+psycopg2://u:p@h:1/d'}\npipeline_handlers: {a: b}\n"))
	f.Add([]byte("a: &x [1, *x]\n"))
	f.Add([]byte("{\"log_level\": null, \"config_path\": \"x\"}"))
	f.Add([]byte("- 1\n"))
	f.Add([]byte("log_level: info\nlog_level: info\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "w.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Read(p)
		if err != nil {
			return
		}
		_ = c.Validate()
		_ = c.SearchDirs()
	})
}
