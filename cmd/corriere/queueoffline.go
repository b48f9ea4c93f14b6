package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"corriere/core/admin"
	"corriere/core/dns"
	"corriere/core/event"
	"corriere/core/inspect"
	"corriere/core/luart"
	"corriere/core/queue"
	"corriere/core/spool"
)

// offlineSettings are the node settings an action on a stopped node's
// spool needs; their flags are named as serve's, so that --config gives
// them the node's values.
type offlineSettings struct {
	scripts, rules, hostname, events string
	maxAge                           time.Duration
}

func (o *offlineSettings) register(fs *flag.FlagSet) {
	fs.StringVar(&o.scripts, "scripts", "./scripts", "hook scripts `directory`, used when no node runs")
	fs.StringVar(&o.rules, "rules", "./rules", "policy data `directory`, used when no node runs")
	fs.StringVar(&o.hostname, "hostname", "", "`name` in the DSNs of a bounce made when no node runs; default: the system host name")
	fs.StringVar(&o.events, "events", "", "event log `file` the events of an action are appended to when no node runs; default SPOOL/events.jsonl")
	fs.DurationVar(&o.maxAge, "max-age", 5*24*time.Hour, "the node's --max-age, quoted in DSNs, when no node runs")
}

// errOffline is what a stopped node's queue says if asked to deliver: it
// never is, since it is never started.
var errOffline = errors.New("the node is stopped: nothing is delivered from the command line")

// offlineNet stands in for the resolver and the transport of a queue that
// is never started.
type offlineNet struct{}

func (offlineNet) LookupMX(context.Context, string) (*dns.MXResult, error) { return nil, errOffline }
func (offlineNet) Dial(context.Context, queue.Target) (queue.Conn, error)  { return nil, errOffline }

// offlineQueue is the queue of a stopped node, opened on its spool to take
// an operator's action. It is never started: a bounce's DSNs wait in the
// spool for the node's next start, suspensions and rebinds are recorded
// for it, and the events go to the node's event log.
type offlineQueue struct {
	*queue.Queue
	in     *inspect.Inspector
	policy *luart.Engine
	spool  *spool.Spool
	events *event.Log
}

// openOffline opens the spool of a stopped node and its queue, with the
// policy when it loads (bounces need it only to name providers).
func openOffline(spoolDir string, o offlineSettings, stderr io.Writer) (*offlineQueue, error) {
	dir := filepath.Join(spoolDir, "queue")
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("no spool in %s (is --spool the directory corriere serve uses?): %w", dir, err)
	}
	sp, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		if isLocked(err) {
			return nil, fmt.Errorf("the spool %s is in use by a running node whose admin API does not answer (start it with --admin): %w", dir, err)
		}
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	path := o.events
	if path == "" {
		path = filepath.Join(spoolDir, "events.jsonl")
	}
	var bus event.Bus
	var log *event.Log
	if path != "-" {
		if log, err = event.OpenLog(path, logger); err != nil {
			sp.Close()
			return nil, fmt.Errorf("event log: %w", err)
		}
		bus.Subscribe(log)
	}
	pol, err := luart.New(luart.Options{ScriptsDir: o.scripts, RulesDir: o.rules})
	if err != nil {
		closeAll(sp, log)
		return nil, fmt.Errorf("policy (--scripts %s, --rules %s): %w", o.scripts, o.rules, err)
	}
	hostname := o.hostname
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	q, err := queue.New(queue.Options{
		Spool: sp, Policy: pol, Resolver: offlineNet{}, Transport: offlineNet{}, Events: &bus,
		Logger: logger, Hostname: hostname, MaxAge: o.maxAge,
	})
	if err == nil {
		_, _, err = q.Recover()
	}
	if err != nil {
		closeAll(sp, log)
		return nil, err
	}
	return &offlineQueue{Queue: q, in: &inspect.Inspector{Spool: sp, Providers: pol}, policy: pol, spool: sp, events: log}, nil
}

// onNodeOrSpool runs online with a client of the running node's admin API
// or, when no node runs, offline with the node's queue opened on its spool;
// it reports whether it went to the spool.
func onNodeOrSpool(src *queueSource, off offlineSettings, stderr io.Writer, online func(*admin.Client) error, offline func(*offlineQueue) error) (stopped bool, err error) {
	if client, err := src.node(); err == nil {
		return false, online(client)
	}
	oq, err := openOffline(src.spool, off, stderr)
	if err != nil {
		return true, err
	}
	defer oq.Close()
	return true, offline(oq)
}

// Close writes out the events and closes the spool.
func (o *offlineQueue) Close() error { return closeAll(o.spool, o.events) }

func closeAll(sp *spool.Spool, log *event.Log) error {
	var errs []error
	if log != nil {
		errs = append(errs, log.Close())
	}
	errs = append(errs, sp.Close())
	return errors.Join(errs...)
}
