package smtpserve

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// Log gives go-smtp's internal error log (its smtp.Logger: broken
// connections, panics recovered in sessions) to slog at Level.
type Log struct {
	Logger *slog.Logger
	Level  slog.Level
}

// Printf logs a go-smtp message.
func (l Log) Printf(format string, v ...any) {
	l.Logger.Log(context.Background(), l.Level, "smtp: "+fmt.Sprintf(format, v...))
}

// Println logs a go-smtp message.
func (l Log) Println(v ...any) {
	l.Logger.Log(context.Background(), l.Level, "smtp: "+strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
