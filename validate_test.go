package winchester

import (
	"log/slog"
	"testing"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		name    string
		want    slog.Level
		wantErr bool
	}{
		{name: "debug", want: slog.LevelDebug},
		{name: "DEBUG", want: slog.LevelDebug},
		{name: "notset", want: slog.LevelDebug},
		{name: "info", want: slog.LevelInfo},
		{name: "warning", want: slog.LevelWarn},
		{name: "warn", want: slog.LevelWarn},
		{name: "error", want: slog.LevelError},
		{name: "critical", want: slog.LevelError},
		{name: "verbose", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseLevel(tc.name)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseLevel(%q) = %v, %v, want %v (error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
