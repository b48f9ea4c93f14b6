// Package smtpserve runs a go-smtp server with the lifecycle Corriere's
// SMTP servers share (the submission port and the bounce listener): a cap
// on concurrent sessions, answered with a 421 greeting beyond it, and a
// shutdown that refuses new work, lets the work in progress finish within
// a deadline, then closes every session and waits for what was still
// running to end.
//
// Sessions mark their work with the Runner's Work gate: Enter before a
// transaction or a message is handled (refusing with 421 when it returns
// false) and Leave after.
package smtpserve

import (
	"context"
	"errors"
	"net"
	"sync"

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
	// OnRefuse, when set, is called for each session refused as over
	// MaxSessions.
	OnRefuse func()
	// Work admits the sessions' work until Shutdown.
	Work drain.Gate

	mu       sync.Mutex
	listener net.Listener
}

// refusal greets the sessions over the limit.
const refusal = "421 4.3.2 Too many concurrent sessions, try again later\r\n"

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
	err := r.SMTP.Serve(&netlimit.Listener{Listener: l, Max: int64(r.MaxSessions), Refusal: refusal, OnRefuse: r.OnRefuse})
	if r.Work.Closed() || errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
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
