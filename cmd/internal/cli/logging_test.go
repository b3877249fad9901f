package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	t.Run("json at warning", func(t *testing.T) {
		var b bytes.Buffer
		l, err := NewLogger(&b, "warning", "json")
		if err != nil {
			t.Fatalf("NewLogger: %v", err)
		}
		l.Info("hidden")
		l.Warn("shown", "stream_id", 7)
		var rec map[string]any
		if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
			t.Fatalf("output %q is not one JSON record: %v", b.String(), err)
		}
		if rec["msg"] != "shown" || rec["stream_id"] != float64(7) || rec["level"] != "WARN" {
			t.Errorf("record = %v", rec)
		}
	})
	t.Run("text", func(t *testing.T) {
		var b bytes.Buffer
		l, err := NewLogger(&b, "debug", "text")
		if err != nil {
			t.Fatalf("NewLogger: %v", err)
		}
		l.Debug("tick", "worker_id", "w1")
		if got := b.String(); !strings.Contains(got, "level=DEBUG msg=tick worker_id=w1") {
			t.Errorf("output = %q", got)
		}
	})
	t.Run("bad format", func(t *testing.T) {
		if _, err := NewLogger(&bytes.Buffer{}, "info", "xml"); err == nil {
			t.Error("NewLogger(format xml) = nil error")
		}
	})
}
