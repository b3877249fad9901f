package cli

import (
	"io"
	"log/slog"

	"github.com/winchester-go/winchester"
)

// NewLogger returns a logger writing to w at the given level in the given
// format (text or json).
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	l, err := winchester.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	f, err := winchester.ParseLogFormat(format)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: l}
	if f == winchester.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
