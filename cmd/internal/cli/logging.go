package cli

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ParseLevel reads a log level name: debug, info, warn/warning, error, and
// the original's Python names (critical/fatal = error, notset = debug), in
// any case.
func ParseLevel(name string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "debug", "notset":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "critical", "fatal":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warning or error)", name)
}

// Log formats.
const (
	FormatText = "text"
	FormatJSON = "json"
)

func parseFormat(name string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(name)); f {
	case FormatText, "":
		return FormatText, nil
	case FormatJSON:
		return FormatJSON, nil
	}
	return "", fmt.Errorf("unknown log format %q (want text or json)", name)
}

// NewLogger returns a logger writing to w at the given level in the given
// format (text or json).
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	l, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	f, err := parseFormat(format)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: l}
	if f == FormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
