package tests

import (
	"os/exec"
	"strings"
	"testing"
)

// make fuzz bounds the time spent minimising a new input: by default Go
// spends up to 60 s per input on it, more than the whole 30 s budget of a
// target.
func TestMakeFuzzBoundsMinimizing(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	out, err := exec.CommandContext(t.Context(), "make", "-n", "-C", "..", "fuzz").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n fuzz: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "-fuzzminimizetime=5s") {
		t.Errorf("make fuzz does not pass -fuzzminimizetime:\n%s", out)
	}
}
