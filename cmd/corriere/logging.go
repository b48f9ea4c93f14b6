package main

import (
	"fmt"
	"io"
	"log/slog"
)

// logFormatUsage documents --log-format, the same for every long-running
// command.
const logFormatUsage = "log `format` on standard error: text (key=value) or json (one object a line, for log collectors)"

// newLogger returns the logger of a long-running command, writing to w in
// format ("text" or "json") from level up.
func newLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
