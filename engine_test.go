package winchester

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

func TestOpenSamples(t *testing.T) {
	cfg, err := Load("etc/winchester.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := Open(t.Context(), cfg, Options{DatabaseURL: SQLiteMemoryURL})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer eng.Close()
	if len(eng.Defs.Triggers) == 0 || eng.Defs.Pipelines == nil || eng.Defs.Distiller == nil {
		t.Fatalf("definitions not loaded: %+v", eng.Defs)
	}
	res, err := eng.Manager.AddNotification(t.Context(), []byte(`{"event_type": "compute.instance.update",
		"message_id": "n-1", "timestamp": "2014-08-01 10:00:00", "publisher_id": "compute.h1",
		"payload": {"instance_id": "i-1", "tenant_id": "t-1"}}`))
	if err != nil || res.Outcome != trigger.Stored || res.Matched != 1 {
		t.Fatalf("AddNotification: %+v %v, want stored and matched by the sample trigger", res, err)
	}
	w, err := eng.NewWorker(eng.WorkerConfig("test"))
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	if _, err := w.Pass(t.Context(), t.Context()); err != nil {
		t.Fatalf("Pass: %v", err)
	}
}

func TestLoadDefinitionsReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"winchester.yaml": "trigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\ndistiller_config: missing.yaml\n",
		"triggers.yaml": `- name: t
  expiration: "$last + 1h"
  fire_pipeline: nowhere
  match_criteria: [{event_type: "*"}]
  fire_criteria: []
`,
		"pipelines.yaml": "p: [no_such_handler]\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := Load(filepath.Join(dir, "winchester.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadDefinitions(cfg, Options{Clock: stream.SystemClock{}})
	if err == nil {
		t.Fatal("broken configuration loaded")
	}
	for _, want := range []string{"no_such_handler", "missing.yaml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}
