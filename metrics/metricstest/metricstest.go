// Package metricstest checks metrics output with Prometheus' own linter,
// promtool (Debian package prometheus; .ci/run installs it).
package metricstest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Check runs `promtool check metrics` on text (the Prometheus text
// format) and fails the test with promtool's complaints. Without promtool
// the test is skipped, or failed when CI is set.
func Check(tb testing.TB, text string) {
	tb.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal("promtool is not installed (apt-get install prometheus; .ci/run does it)")
		}
		tb.Skip("promtool is not installed (apt-get install prometheus)")
	}
	cmd := exec.CommandContext(tb.Context(), path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tb.Fatalf("promtool check metrics: %v\n%s", err, out.String())
	}
}
