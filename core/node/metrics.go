package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"corriere/core/event"
	"corriere/core/metrics"
)

// errShuttingDown is the readiness of a node that is stopping.
var errShuttingDown = errors.New("shutting down")

// startMetrics makes the node's metrics, once the spool is recovered and
// the policy loaded (which is what ready means), and before the queue
// starts, so that they count every outcome: they follow the event bus,
// the policy's hook calls and the spool's commits. With
// Config.MetricsListen it serves them, and the health checks, on that
// address.
func (n *Node) startMetrics() error {
	n.metrics = metrics.New(metrics.Options{Queue: n.queue, EventLog: n.evlog})
	n.events.Subscribe(n.metrics)
	n.policy.SetHookObserver(n.metrics.ObserveHook)
	n.spool.SetCommitObserver(n.metrics.ObserveCommit)
	for _, c := range implementers[prometheus.Collector](n.plugins) {
		if err := n.metrics.Registry().Register(c); err != nil {
			return fmt.Errorf("node: plugin metrics: %w", err)
		}
	}
	n.metrics.SetReadiness(nil)
	if n.cfg.MetricsListen == "" {
		return nil
	}
	srv, err := metrics.Listen(n.cfg.MetricsListen, n.metrics, n.log)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.metricsSrv = srv
	return nil
}

// stopMetrics closes the metrics endpoint of its own, if there is one.
func (n *Node) stopMetrics(ctx context.Context) error {
	if n.metricsSrv == nil {
		return nil
	}
	return n.metricsSrv.Close(ctx)
}

// MetricsAddr returns the address of the metrics endpoint of its own
// (Config.MetricsListen), or "" when there is none.
func (n *Node) MetricsAddr() string {
	if n.metricsSrv == nil {
		return ""
	}
	return n.metricsSrv.Addr()
}

// StdoutEventLog is the Config.EventLog that writes the events to the
// standard output, where a supervisor collects them.
const StdoutEventLog = "-"

// openEventLog opens the event log Config names: a file, rotated by size
// when Config.EventLogMaxSize is set, or the standard output.
func openEventLog(cfg Config, log *slog.Logger) (*event.Log, error) {
	if cfg.EventLog == StdoutEventLog {
		return event.NewLog(stdout{}, log), nil
	}
	l, err := event.OpenRotatingLog(cfg.EventLog, event.Rotation{MaxSize: cfg.EventLogMaxSize, Keep: cfg.EventLogKeep}, log)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return l, nil
}

// stdout writes to the standard output, which the event log must not
// close.
type stdout struct{}

func (stdout) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdout) Close() error                { return nil }

// ReopenEventLog closes the event log file and opens its path again, after
// logrotate renamed it (corriere serve does it on SIGUSR1). The standard
// output is left as it is.
func (n *Node) ReopenEventLog() error {
	if err := n.evlog.Reopen(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}
