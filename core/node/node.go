// Package node assembles a running Corriere: spool, DNS, Lua policy,
// queue, delivery, ingest, events and plugins, from one Config. cmd/corriere
// serve and the demo start a node; tests start one in-process.
//
// Start opens and recovers the spool, loads the policy (refusing to start
// on a broken one), provisions plugins, starts delivery and then listens.
// Shutdown reverses it: stop accepting, let in-flight SMTP transactions end,
// stop the queue (in-flight deliveries finish or abort at the deadline),
// flush the event log and close the spool.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"corriere/core/admin"
	"corriere/core/bouncein"
	"corriere/core/deliver"
	"corriere/core/dns"
	"corriere/core/event"
	"corriere/core/extension"
	"corriere/core/ingest"
	"corriere/core/luart"
	"corriere/core/metrics"
	"corriere/core/plugin"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/smtpclient"
	"corriere/core/spool"
	"corriere/core/stats"
	"corriere/core/suppress"
	"corriere/core/tenant"
	"corriere/core/verp"
	"corriere/core/warmup"
)

// Config is everything a node needs; cmd/corriere fills it from flags and
// the configuration file.
type Config struct {
	// Listen is the SMTP submission address.
	Listen string
	// SpoolDir holds the spool database and, by default, the event log.
	SpoolDir string
	// EventLog is the JSON-lines event file, or "-" (StdoutEventLog) for
	// the standard output. The default value is SpoolDir/events.jsonl.
	EventLog string
	// EventLogMaxSize rotates the event log file once it holds this many
	// bytes (see event.Rotation); 0 never rotates.
	EventLogMaxSize int64
	// EventLogKeep is how many rotated event log files are kept. The
	// default value is 5.
	EventLogKeep int
	// Hostname names the node in greetings, Received fields and DSNs.
	Hostname string
	// DNSServers are the nameservers ("host:port"); empty uses
	// /etc/resolv.conf.
	DNSServers []string
	// MXPort is the TCP port used to reach MX hosts.
	MXPort int
	// Sources are the egress IPs (with HELO names).
	Sources []policy.Source
	// RelayNets may relay without AUTH.
	RelayNets []netip.Prefix
	// ScriptsDir and RulesDir hold the Lua policy.
	ScriptsDir, RulesDir string
	// MinFree is the free space, in bytes, kept on the spool's filesystem:
	// under it new messages are answered 452 4.3.1 while delivery goes on.
	// The default value is spool.DefaultMinFree, or a quarter of the
	// filesystem when that is smaller (see spool.Options.MinFree).
	MinFree uint64
	// DataMemory caps the message data ingest holds in memory; larger
	// messages wait on disk in SpoolDir/incoming. The default value is
	// ingest's (128 MiB).
	DataMemory int64
	// LuaCallMemory and LuaStateMemory are the memory budgets of the Lua
	// policy (luart.Options.CallMemory and StateMemory). The default
	// values are luart's.
	LuaCallMemory, LuaStateMemory int64
	// MaxSize, MaxRecipients, MaxLineLength, MaxSessions,
	// MaxSessionsPerIP, ConnRatePerIP, IdleTimeout, FirstCommandTimeout and
	// DataTimeout limit ingest; see ingest.Options for their defaults.
	MaxSize             int64
	MaxRecipients       int
	MaxLineLength       int
	MaxSessions         int
	MaxSessionsPerIP    int
	ConnRatePerIP       float64
	IdleTimeout         time.Duration
	FirstCommandTimeout time.Duration
	DataTimeout         time.Duration
	// TLSCert and TLSKey enable STARTTLS on ingest.
	TLSCert, TLSKey string
	// InsecureAuthLoopback allows AUTH without TLS from loopback clients.
	InsecureAuthLoopback bool
	// MaxOutbound caps the outbound SMTP connections open at once, across
	// all providers and source IPs. The default value is 1000.
	MaxOutbound int
	// MaxAge is how long a recipient is retried.
	MaxAge time.Duration
	// Retry is the retry schedule.
	Retry []time.Duration
	// Plugins lists the plugin IDs to enable; nil enables every registered
	// plugin.
	Plugins []string
	// AdminListen is the admin API address; empty disables the API.
	AdminListen string
	// MetricsListen is an address serving /metrics, /healthz and /readyz
	// apart from the admin API (which serves them too); empty serves them
	// only there.
	MetricsListen string
	// AdminToken authorises admin calls; empty makes one, written to
	// SpoolDir/admin.token.
	AdminToken string
	// BounceListen is the address of the bounce listener, which takes the
	// bounces and feedback reports sent to the VERP addresses of
	// re-enveloped mail; empty disables it.
	BounceListen string
	// FBLAddresses are the feedback-loop addresses registered with the
	// providers, whose MX is the bounce listener: complaints sent there
	// about re-enveloped mail suppress the complainer's address.
	FBLAddresses []string
	// VERPKeyFile holds the key that signs VERP addresses (hex). The
	// default value is SpoolDir/verp.key, made on first start.
	VERPKeyFile string
	// Logger logs the node's life. The default value is slog.Default().
	Logger *slog.Logger
}

// Node is a running Corriere.
type Node struct {
	cfg     Config
	log     *slog.Logger
	Spool   *spool.Spool
	Queue   *queue.Queue
	Policy  *luart.Engine
	Events  *event.Bus
	Ingest  *ingest.Server
	Stats   *stats.Counters
	Admin   *admin.Server
	Bounces *bouncein.Server
	// Suppression is the per-tenant suppression list.
	Suppression *suppress.List
	suppressRec *suppress.Recorder
	evlog       *event.Log
	metrics     *metrics.Metrics
	metricsSrv  *metrics.Server
	ln          net.Listener
	bounceLn    net.Listener
	plugins     []any

	cancel     context.CancelFunc
	background sync.WaitGroup  // goroutines that use the spool until cancel
	watchDone  <-chan struct{} // closed when the policy watcher has stopped
	serveErr   chan error
	stopOnce   sync.Once
	stopErr    error
}

// Start brings a node up and returns once it accepts connections.
func Start(ctx context.Context, cfg Config) (_ *Node, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.SpoolDir == "" {
		return nil, errors.New("node: no spool directory")
	}
	if err := os.MkdirAll(cfg.SpoolDir, 0o750); err != nil {
		return nil, fmt.Errorf("node: spool directory: %w", err)
	}
	if cfg.EventLog == "" {
		cfg.EventLog = filepath.Join(cfg.SpoolDir, "events.jsonl")
	}
	if cfg.VERPKeyFile == "" {
		cfg.VERPKeyFile = filepath.Join(cfg.SpoolDir, "verp.key")
	}
	log := cfg.Logger
	// n is returned only on success: the cleanups below use it when Start
	// fails part way.
	n := &Node{cfg: cfg, log: log, Events: &event.Bus{}, serveErr: make(chan error, 1)}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()

	if n.evlog, err = openEventLog(cfg, log); err != nil {
		return nil, err
	}
	closers = append(closers, func() { n.evlog.Close() })
	n.Events.Subscribe(n.evlog)
	n.Stats = stats.New(nil)
	n.Events.Subscribe(n.Stats)

	if n.Spool, err = spool.Open(spool.Options{Dir: filepath.Join(cfg.SpoolDir, "queue"), Logger: log, MinFree: cfg.MinFree}); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	closers = append(closers, func() { n.Spool.Close() })
	n.Suppression = suppress.New(n.Spool, nil)
	n.suppressRec = suppress.NewRecorder(n.Suppression, &suppress.RecorderOptions{Logger: log})
	n.Events.Subscribe(n.suppressRec)
	closers = append(closers, func() { n.suppressRec.Close() })

	ids := cfg.Plugins
	if ids == nil {
		ids = plugin.IDs()
	}
	pctx := extension.Context{RulesDir: cfg.RulesDir, DataDir: cfg.SpoolDir, Logger: log, Events: n.Events, Tenants: policyTenants{n}}
	if n.plugins, err = plugin.Start(ctx, ids, pctx, nil); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	closers = append(closers, func() { closePlugins(n.plugins, log) })

	var modules []luart.Module
	var preparers []extension.Preparer
	var stages []extension.Stage
	var checks []extension.RecipientCheck
	for _, p := range n.plugins {
		if m, ok := p.(luart.Module); ok {
			modules = append(modules, m)
		}
		if pr, ok := p.(extension.Preparer); ok {
			preparers = append(preparers, pr)
		}
		if s, ok := p.(extension.Stage); ok {
			stages = append(stages, s)
		}
		if c, ok := p.(extension.RecipientCheck); ok {
			checks = append(checks, c)
		}
		if s, ok := p.(event.Sink); ok {
			n.Events.Subscribe(s)
		}
	}

	n.Policy, err = luart.New(luart.Options{
		ScriptsDir: cfg.ScriptsDir, RulesDir: cfg.RulesDir, Sources: cfg.Sources,
		CallMemory: cfg.LuaCallMemory, StateMemory: cfg.LuaStateMemory,
		Counters: n.Stats, Modules: modules, Preparers: preparers, Logger: log, Events: n.Events,
	})
	if err != nil {
		return nil, fmt.Errorf("node: policy: %w", err)
	}

	res, err := dns.New(dns.Options{Servers: cfg.DNSServers})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	tr, err := deliver.New(deliver.Options{Resolver: res, Port: cfg.MXPort, Logger: log,
		Client: smtpclient.Options{Helo: cfg.Hostname}})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	key, err := verp.LoadOrCreateKey(cfg.VERPKeyFile)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	signer, err := verp.New(key)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	wu, err := warmup.Open(n.Spool, nil)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.Queue, err = queue.New(queue.Options{
		Spool: n.Spool, Policy: n.Policy, Resolver: res, Transport: tr, Events: n.Events,
		Logger: log, Hostname: cfg.Hostname, Retry: cfg.Retry, MaxAge: cfg.MaxAge, Warmup: wu, VERP: signer,
		MaxConnections: cfg.MaxOutbound,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	msgs, rcpts, err := n.Queue.Recover()
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	log.Info("spool recovered", "dir", cfg.SpoolDir, "messages", msgs, "recipients", rcpts)
	if err := n.startMetrics(); err != nil {
		return nil, err
	}
	closers = append(closers, func() { n.stopMetrics(context.Background()) })
	n.Policy.OnReload(func(uint64) { go n.Queue.PolicyChanged() })
	n.Queue.Start()
	closers = append(closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n.Queue.Stop(sctx)
	})

	var tlsConf *tls.Config
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("node: TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	spillDir, err := incomingDir(cfg.SpoolDir)
	if err != nil {
		return nil, err
	}
	n.Ingest, err = ingest.New(ingest.Options{
		Hostname: cfg.Hostname, MaxSize: cfg.MaxSize, MaxRecipients: cfg.MaxRecipients, MaxLineLength: cfg.MaxLineLength,
		MaxSessions: cfg.MaxSessions, IdleTimeout: cfg.IdleTimeout, TLS: tlsConf,
		MaxSessionsPerIP: cfg.MaxSessionsPerIP, ConnRatePerIP: cfg.ConnRatePerIP,
		FirstCommandTimeout: cfg.FirstCommandTimeout, DataTimeout: cfg.DataTimeout,
		InsecureAuthLoopback: cfg.InsecureAuthLoopback, RelayNets: cfg.RelayNets,
		Tenants: n.Policy, Policy: n.Policy, Stages: stages,
		RecipientChecks: append([]extension.RecipientCheck{&suppress.Checker{List: n.Suppression, Tenants: n.Policy, Events: n.Events}}, checks...),
		Spool:           n.Spool, Queue: n.Queue, Events: n.Events, Logger: log,
		DataMemory: cfg.DataMemory, SpillDir: spillDir,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if n.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("node: listen %s: %w", cfg.Listen, err)
	}
	closers = append(closers, func() { n.ln.Close() })
	n.ln = n.metrics.CountSessions(n.ln)
	if cfg.BounceListen != "" {
		n.Bounces, err = bouncein.New(bouncein.Options{
			Hostname: cfg.Hostname, VERP: signer, Spool: n.Spool, Queue: n.Queue, Policy: n.Policy,
			FBLAddresses: cfg.FBLAddresses, Suppress: n.Suppression, Events: n.Events, Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		if n.bounceLn, err = net.Listen("tcp", cfg.BounceListen); err != nil {
			return nil, fmt.Errorf("node: bounce listener %s: %w", cfg.BounceListen, err)
		}
		closers = append(closers, func() { n.bounceLn.Close() })
	}

	// The admin API starts last: nothing after it can fail, so it needs no
	// cleanup here.
	if cfg.AdminListen != "" {
		n.Admin, err = admin.Start(admin.Options{
			Addr: cfg.AdminListen, Token: cfg.AdminToken, StateDir: cfg.SpoolDir,
			Policy: n.Policy, Queue: n.Queue, Rejections: n.Ingest.Rejections, Logger: log,
			Handlers: n.adminHandlers(), Public: n.metrics.Handlers(),
		})
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}

	wctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	watchDone, werr := n.Policy.Watch(wctx)
	if werr != nil {
		log.Error("policy files not watched; reload with SIGHUP or the admin API", "err", werr)
	}
	n.watchDone = watchDone
	go func() { n.serveErr <- n.Ingest.Serve(n.ln) }()
	if n.Bounces != nil {
		go func() {
			if err := n.Bounces.Serve(n.bounceLn); err != nil {
				log.Error("bounce listener stopped", "err", err)
			}
		}()
	}
	n.background.Add(1)
	go func() {
		defer n.background.Done()
		n.pruneBounceRefs(wctx)
	}()
	adminAddr := ""
	if n.Admin != nil {
		adminAddr = n.Admin.Addr()
	}
	log.Info("corriere listening", "smtp", n.ln.Addr().String(), "admin", adminAddr, "metrics", n.MetricsAddr(), "bounces", n.BounceAddr(), "hostname", cfg.Hostname,
		"mx_port", cfg.MXPort, "sources", len(cfg.Sources), "policy_generation", n.Policy.Status().Generation)
	return n, nil
}

// Addr returns the SMTP listening address.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// adminHandlers are the admin API's endpoints of the node's subsystems.
func (n *Node) adminHandlers() map[string]http.Handler {
	h := suppress.AdminHandlers(n.Suppression)
	if n.Bounces != nil {
		h["GET /api/bounces"] = n.Bounces.CountsHandler()
	}
	return h
}

// BounceAddr returns the bounce listener's address, or "" when it is off.
func (n *Node) BounceAddr() string {
	if n.bounceLn == nil {
		return ""
	}
	return n.bounceLn.Addr().String()
}

// BounceRefTTL is how long the spool keeps the bounce reference of a
// re-enveloped message: bounces later than that are ignored. Providers
// send them within days; a month is generous.
const BounceRefTTL = 30 * 24 * time.Hour

// pruneBounceRefs removes old bounce references now and every day until
// ctx ends.
func (n *Node) pruneBounceRefs(ctx context.Context) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		if err := n.Spool.PruneBounceRefs(time.Now().Add(-BounceRefTTL)); err != nil {
			n.log.Error("pruning bounce references", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Done receives the ingest server's error if it stops on its own.
func (n *Node) Done() <-chan error { return n.serveErr }

// Shutdown stops the node gracefully; ctx bounds the wait for in-flight
// transactions. It is safe to call more than once.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopOnce.Do(func() {
		n.log.Info("shutting down: no new sessions; finishing in-flight transactions")
		n.metrics.SetReadiness(errShuttingDown)
		// Both listeners drain at once, within the same deadline.
		bounceErr := make(chan error, 1)
		go func() {
			if n.Bounces == nil {
				bounceErr <- nil
				return
			}
			bounceErr <- n.Bounces.Shutdown(ctx)
		}()
		errs := []error{n.Ingest.Shutdown(ctx), <-bounceErr}
		if n.Admin != nil {
			errs = append(errs, n.Admin.Close(ctx))
		}
		errs = append(errs, n.stopMetrics(ctx))
		n.cancel()
		n.background.Wait()
		if n.watchDone != nil {
			<-n.watchDone
		}
		errs = append(errs, n.Queue.Stop(ctx))
		closePlugins(n.plugins, n.log)
		errs = append(errs, n.suppressRec.Close(), n.evlog.Close(), n.Spool.Close())
		n.stopErr = errors.Join(errs...)
		n.log.Info("stopped", "pending_recipients", n.Queue.Pending())
	})
	return n.stopErr
}

// closePlugins closes the plugins in the reverse order of their start and
// logs what fails: at shutdown there is no one else to tell.
func closePlugins(ps []any, log *slog.Logger) {
	if err := plugin.Close(ps); err != nil {
		log.Error("plugin close", "err", err)
	}
}

// incomingDir makes the directory where ingest spills messages being
// received, on the spool's disk, and deletes what a crash left there.
func incomingDir(spoolDir string) (string, error) {
	dir := filepath.Join(spoolDir, "incoming")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("node: incoming directory: %w", err)
	}
	left, err := filepath.Glob(filepath.Join(dir, "data-*"))
	if err != nil {
		return "", fmt.Errorf("node: incoming directory: %w", err)
	}
	for _, f := range left {
		if err := os.Remove(f); err != nil {
			return "", fmt.Errorf("node: incoming directory: %w", err)
		}
	}
	return dir, nil
}

// policyTenants is the tenant directory plugins are provisioned with, before
// the policy that holds the tenants is loaded: it answers from the policy
// once there is one.
type policyTenants struct{ n *Node }

// Lookup implements tenant.Directory.
func (d policyTenants) Lookup(name string) (*tenant.Tenant, bool) {
	if d.n.Policy == nil {
		return nil, false
	}
	return d.n.Policy.Lookup(name)
}
