package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunnerFailsOnAWrongCase runs this test binary's TestTimex against a
// directory holding one case whose expected result is wrong, and checks
// that it fails naming the case: a runner that cannot fail proves nothing.
func TestRunnerFailsOnAWrongCase(t *testing.T) {
	if os.Getenv("WINCHESTER_SELFCHECK") != "" {
		t.Skip("inside the self-check run")
	}
	d := t.TempDir()
	vectors := `version: 1
area: timex
cases:
- name: deliberately_wrong
  expr: $a + 1h
  vars:
    a: '2014-08-01T02:00:00'
  expected:
    result:
      type: timestamp
      value: '2014-08-01T05:00:00'
`
	if err := os.WriteFile(filepath.Join(d, "timex.yaml"), []byte(vectors), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTimex$", "-test.v")
	cmd.Env = append(os.Environ(), "WINCHESTER_CONFORMANCE_DIR="+d, "WINCHESTER_SELFCHECK=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the runner passed a wrong case:\n%s", out)
	}
	if !strings.Contains(string(out), "--- FAIL: TestTimex/deliberately_wrong") {
		t.Fatalf("the failure does not name the case:\n%s", out)
	}
}
