// Package smtpserve runs a go-smtp server with the lifecycle Corriere's
// SMTP servers share (the submission port and the bounce listener): caps on
// concurrent sessions, in all and per client, and on each client's
// connection rate, answered with a 421 greeting beyond them; a short
// timeout before the first command; and a shutdown that refuses new work,
// lets the work in progress finish within a deadline, then closes every
// session and waits for what was still running to end.
//
// Sessions mark their work with the Runner's Work gate: Enter before a
// transaction or a message is handled (refusing with 421 when it returns
// false) and Leave after. Each session's connection is a *Conn, whose
// CloseAfterReply ends a session right after its last reply.
package smtpserve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"corriere/core/drain"
	"corriere/core/netlimit"
)

// Runner serves one go-smtp server.
type Runner struct {
	// SMTP is the server. Required.
	SMTP *smtp.Server
	// MaxSessions bounds concurrent sessions. Required.
	MaxSessions int
	// MaxSessionsPerIP bounds the concurrent sessions of one client (an
	// IPv4 address or an IPv6 /64); 0 means no bound.
	MaxSessionsPerIP int
	// ConnRate is the connections per second one client may open on
	// average, with ConnBurst at once; 0 means no bound.
	ConnRate  float64
	ConnBurst int
	// FirstCommandTimeout bounds the wait for the client's first command
	// line; 0 leaves it to the server's ReadTimeout.
	FirstCommandTimeout time.Duration
	// OnRefuse, when set, is called for each session refused by one of
	// the limits.
	OnRefuse func(reason netlimit.Reason, client netip.Addr)
	// Logger logs refused sessions, at most one line per second and
	// reason. Nil logs nothing.
	Logger *slog.Logger
	// Work admits the sessions' work until Shutdown.
	Work drain.Gate

	mu       sync.Mutex
	listener net.Listener
	refusals refusalLog
}

// Greetings of the sessions over the limits.
const (
	refusal       = "421 4.3.2 Too many concurrent sessions, try again later\r\n"
	clientRefusal = "421 4.7.0 Too many connections from your address, try again later\r\n"
)

// Serve accepts sessions on l until Shutdown; called after Shutdown, it
// closes l and returns at once.
func (r *Runner) Serve(l net.Listener) error {
	r.mu.Lock()
	if r.Work.Closed() {
		r.mu.Unlock()
		l.Close()
		return nil
	}
	r.listener = l
	r.mu.Unlock()
	limited := &netlimit.Listener{
		Listener: l, Max: int64(r.MaxSessions), PerClient: r.MaxSessionsPerIP, Rate: r.ConnRate, Burst: r.ConnBurst,
		Refusal: refusal, ClientRefusal: clientRefusal, OnRefuse: r.refused,
	}
	err := r.SMTP.Serve(&connListener{Listener: limited, firstCommand: r.FirstCommandTimeout})
	if r.Work.Closed() || errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

func (r *Runner) refused(reason netlimit.Reason, client netip.Addr) {
	if r.OnRefuse != nil {
		r.OnRefuse(reason, client)
	}
	if r.Logger != nil {
		r.refusals.log(r.Logger, reason, client, time.Now())
	}
}

// Shutdown stops accepting sessions and work, waits until the work in
// progress has finished (or ctx ends: it then returns ctx's error), closes
// every session, and returns when no admitted work runs any more.
func (r *Runner) Shutdown(ctx context.Context) error {
	return r.Work.Shutdown(ctx, r.closeListener, r.closeSessions)
}

func (r *Runner) closeListener() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.listener != nil {
		r.listener.Close()
	}
}

func (r *Runner) closeSessions() error {
	if err := r.SMTP.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// refusalLog logs refused sessions at most once a second per reason, with
// the number left unlogged since: a flood must not flood the log too.
type refusalLog struct {
	mu         sync.Mutex
	last       map[netlimit.Reason]time.Time
	suppressed map[netlimit.Reason]int
}

func (rl *refusalLog) log(l *slog.Logger, reason netlimit.Reason, client netip.Addr, now time.Time) {
	rl.mu.Lock()
	if rl.last == nil {
		rl.last, rl.suppressed = map[netlimit.Reason]time.Time{}, map[netlimit.Reason]int{}
	}
	if now.Sub(rl.last[reason]) < time.Second {
		rl.suppressed[reason]++
		rl.mu.Unlock()
		return
	}
	rl.last[reason] = now
	n := rl.suppressed[reason]
	rl.suppressed[reason] = 0
	rl.mu.Unlock()
	l.Warn("session refused", "client", client.String(), "reason", string(reason), "unlogged_since_last", n)
}
