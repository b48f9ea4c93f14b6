package queue

import (
	"log/slog"
	"time"

	"corriere/core/event"
)

// logAttempt writes the one info line an operator follows per recipient
// and attempt: which message and recipient, where it went (provider,
// source IP, MX), what came back and how long it took. Outcomes decided
// without a connection (DNS or routing failures, expiry) have the same
// line, with the fields they lack left empty.
func (q *Queue) logAttempt(f attemptFacts, s settled) {
	r := s.r
	provider, source := "", ""
	if f.j != nil {
		provider, source = f.j.provider, f.j.route.Source
	}
	attrs := []slog.Attr{
		slog.String("msg_id", r.it.msg.meta.ID),
		slog.String("rcpt", r.it.entry.Rcpt.Addr),
		slog.String("outcome", string(s.typ)),
		slog.String("provider", provider),
		slog.String("source_ip", source),
		slog.String("mx", f.mx),
		slog.Int("attempt", r.it.entry.Attempts),
		slog.String("reply", r.reply.String()),
		slog.Float64("duration_ms", float64(f.duration.Microseconds())/1000),
	}
	switch s.typ {
	case event.Bounced, event.Expired:
		attrs = append(attrs, slog.String("category", string(r.verdict.Category)))
	case event.Deferred:
		attrs = append(attrs, slog.String("next", s.until.Format(time.RFC3339)))
	}
	q.log.LogAttrs(q.ctx, slog.LevelInfo, "delivery attempt", attrs...)
}
