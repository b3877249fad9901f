// Package conformance runs the shared conformance vectors (the YAML case
// files in the directory named by WINCHESTER_CONFORMANCE_DIR, by default
// ../shared/conformance beside the repository) against this implementation.
//
// Each file is run by one area test (TestTimex, TestCriteria, ...). Every
// case is its own subtest named after the case. A case's "recommended"
// outcome wins over "expected". A case kind or action that a runner does not
// know fails the case: nothing is skipped silently.
package conformance

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// dir returns the conformance directory. Without WINCHESTER_CONFORMANCE_DIR
// the test is skipped when the default directory is absent (a bare
// checkout), except under CI, where the vectors must be there; a directory
// named by the variable must exist.
func dir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("WINCHESTER_CONFORMANCE_DIR")
	if d != "" {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("WINCHESTER_CONFORMANCE_DIR: %v", err)
		}
		return d
	}
	d = filepath.Join("..", "..", "..", "shared", "conformance")
	if _, err := os.Stat(d); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("conformance directory %s: %v (CI needs the vectors; set WINCHESTER_CONFORMANCE_DIR)", d, err)
		}
		t.Skipf("no conformance vectors at %s (set WINCHESTER_CONFORMANCE_DIR to run them)", d)
	}
	return d
}

var (
	areasMu sync.Mutex
	areas   = map[string]bool{}
)

// registerArea records that a runner exists for a vector file. Called from
// init in each area's test file.
func registerArea(file string) {
	areasMu.Lock()
	defer areasMu.Unlock()
	areas[file] = true
}

// skipped lists the vector files whose area is not implemented yet, with the
// reason. It must shrink to empty as the areas land; a file listed here is
// reported as skipped, never as passed.
var skipped = map[string]string{}

// TestEveryFileHasARunner fails when the conformance directory holds a
// vector file that no area runner handles and that is not in skipped.
func TestEveryFileHasARunner(t *testing.T) {
	entries, err := os.ReadDir(dir(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		if areas[name] {
			if _, ok := skipped[name]; ok {
				t.Errorf("%s has a runner but is still in the skip list", name)
			}
			continue
		}
		if _, ok := skipped[name]; !ok {
			t.Errorf("%s: no runner for this vector file", name)
		}
	}
}

// vectorFile is the common shape of every vector file.
type vectorFile struct {
	Version int         `yaml:"version"`
	Area    string      `yaml:"area"`
	Cases   []yaml.Node `yaml:"cases"`
	// Shared data of some files, decoded by their runners.
	Fixture        yaml.Node `yaml:"fixture"`
	DefinitionSets yaml.Node `yaml:"definition_sets"`
}

// vectorCase is one case with its raw node.
type vectorCase struct {
	Name string
	node *yaml.Node
	file *vectorFile
}

// header holds the fields common to every case.
type header struct {
	Name        string    `yaml:"name"`
	Kind        string    `yaml:"kind"`
	Expected    yaml.Node `yaml:"expected"`
	Recommended yaml.Node `yaml:"recommended"`
}

// decode decodes the whole case into v (a struct of the area's fields;
// unknown fields are ignored).
func (c *vectorCase) decode(t *testing.T, v any) {
	t.Helper()
	if err := c.node.Decode(v); err != nil {
		t.Fatalf("decode case %s: %v", c.Name, err)
	}
}

// outcome returns the node to assert: "recommended" when present and not a
// note-only mapping, else "expected". noteOnly reports a recommended outcome
// that only documents a defect (assert only that nothing crashes).
func (c *vectorCase) outcome(t *testing.T) (n *yaml.Node, noteOnly bool) {
	t.Helper()
	var h header
	c.decode(t, &h)
	if h.Recommended.Kind != 0 {
		if h.Recommended.Kind == yaml.MappingNode && len(h.Recommended.Content) == 2 && h.Recommended.Content[0].Value == "note" {
			return &h.Recommended, true
		}
		return &h.Recommended, false
	}
	if h.Expected.Kind == 0 {
		t.Fatalf("case %s has neither expected nor recommended", c.Name)
	}
	n2 := h.Expected
	return &n2, false
}

// kind returns the case's "kind" field ("" when absent).
func (c *vectorCase) kind(t *testing.T) string {
	var h header
	c.decode(t, &h)
	return h.Kind
}

// runFile loads a vector file and runs fn for every case as a subtest named
// after the case. Names must be unique.
func runFile(t *testing.T, file string, fn func(t *testing.T, c *vectorCase)) {
	t.Helper()
	if why, ok := skipped[file]; ok {
		t.Skipf("%s skipped: %s", file, why)
	}
	path := filepath.Join(dir(t), file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var vf vectorFile
	if err := yaml.Unmarshal(data, &vf); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if len(vf.Cases) == 0 {
		t.Fatalf("%s has no cases", path)
	}
	var seen []string
	for i := range vf.Cases {
		n := &vf.Cases[i]
		var h header
		if err := n.Decode(&h); err != nil || h.Name == "" {
			t.Fatalf("%s: case %d has no name (%v)", file, i, err)
		}
		if slices.Contains(seen, h.Name) {
			t.Fatalf("%s: duplicate case name %s", file, h.Name)
		}
		seen = append(seen, h.Name)
		c := &vectorCase{Name: h.Name, node: n, file: &vf}
		t.Run(h.Name, func(t *testing.T) { fn(t, c) })
	}
}
