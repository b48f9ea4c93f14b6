package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"corriere/core/admin"
	"corriere/core/bouncein"
	"corriere/core/cluster"
	"corriere/core/deliver"
	"corriere/core/dns"
	"corriere/core/dnscheck"
	"corriere/core/event"
	"corriere/core/extension"
	"corriere/core/httpin"
	"corriere/core/ingest"
	"corriere/core/inspect"
	"corriere/core/luart"
	"corriere/core/metrics"
	"corriere/core/mtasts"
	"corriere/core/plugin"
	"corriere/core/queue"
	"corriere/core/reputation"
	"corriere/core/smtpclient"
	"corriere/core/spool"
	"corriere/core/stats"
	"corriere/core/statuspage"
	"corriere/core/suppress"
	"corriere/core/tenant"
	"corriere/core/tlsrpt"
	"corriere/core/verp"
	"corriere/core/warmup"
)

// Node is a running Corriere. Its subsystems are its own: callers reach
// them through the read-only accessors below, never replace them.
type Node struct {
	cfg Config
	log *slog.Logger

	events      *event.Bus
	evlog       *event.Log
	metrics     *metrics.Metrics
	metricsSrv  *metrics.Server
	stats       *stats.Counters
	reputation  *reputation.Tracker
	spool       *spool.Spool
	suppression *suppress.List
	suppressRec *suppress.Recorder
	plugins     []any
	policy      *luart.Engine
	verp        *verp.Signer
	queue       *queue.Queue
	cluster     *cluster.Cluster // nil without Config.Redis
	ingest      *ingest.Server
	ln          net.Listener
	bounces     *bouncein.Server
	bounceLn    net.Listener
	httpIn      *httpin.Server
	httpLn      net.Listener
	admin       *admin.Server
	dnsCheck    *dnscheck.Monitor
	mtasts      *mtasts.Cache
	tlsrpt      *tlsrpt.Recorder

	cancel     context.CancelFunc
	background sync.WaitGroup  // goroutines that use the spool until cancel
	watchDone  <-chan struct{} // closed when the policy watcher has stopped
	serveErr   chan error
	stopOnce   sync.Once
	stopErr    error
}

// Start brings a node up and returns once it accepts connections. It fills
// cfg's defaults and refuses an invalid cfg before it opens anything; when
// a later step fails, it closes what the earlier ones opened.
func Start(ctx context.Context, cfg Config) (_ *Node, err error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, events: &event.Bus{}, serveErr: make(chan error, 1)}
	var undo cleanups
	defer func() {
		if err != nil {
			undo.run()
		}
	}()

	if err := n.openSpool(&undo); err != nil {
		return nil, err
	}
	// Recorded once the spool is open: its lock keeps a second node from
	// overwriting the OPTIONS of a running one, and the free-space reserve
	// it chose is known.
	n.recordOptions()
	if err := n.startExtensions(ctx, &undo); err != nil {
		return nil, err
	}
	if err := n.loadPolicy(); err != nil {
		return nil, err
	}
	n.warnSetup()
	if err := n.startDelivery(&undo); err != nil {
		return nil, err
	}
	n.startDNSCheck()
	if err := n.startListeners(&undo); err != nil {
		return nil, err
	}
	n.serve()
	return n, nil
}

// cleanups are what a starting node must close, in reverse order, if a
// later step fails. Each step adds the closing of what it opens as soon as
// it has opened it, so a step that fails half way is undone too.
type cleanups []func()

// add registers f to run if Start fails.
func (c *cleanups) add(f func()) { *c = append(*c, f) }

// run closes everything, last opened first.
func (c cleanups) run() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

// openSpool opens what lives in the spool directory: the event log, the
// spool database, the reputation and the suppression list, and subscribes
// the event log, the counters, the reputation tracker and the suppression
// recorder to the node's events.
func (n *Node) openSpool(undo *cleanups) (err error) {
	if err := os.MkdirAll(n.cfg.SpoolDir, 0o750); err != nil {
		return fmt.Errorf("node: spool directory: %w", err)
	}
	if n.evlog, err = openEventLog(n.cfg, n.log); err != nil {
		return err
	}
	undo.add(func() { n.evlog.Close() })
	n.events.Subscribe(n.evlog)
	n.stats = stats.New(nil)
	n.events.Subscribe(n.stats)

	n.spool, err = spool.Open(spool.Options{Dir: filepath.Join(n.cfg.SpoolDir, "queue"), Logger: n.log, MinFree: n.cfg.MinFree})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	undo.add(func() { n.spool.Close() })
	// The reserve the spool chose, for the effective configuration.
	n.cfg.MinFree = n.spool.MinFree()
	if n.reputation, err = reputation.Open(n.spool, reputation.Options{Logger: n.log}); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	undo.add(func() { n.reputation.Close() })
	n.events.Subscribe(n.reputation)
	n.suppression = suppress.New(n.spool, nil)
	n.suppressRec = suppress.NewRecorder(n.suppression, &suppress.RecorderOptions{Logger: n.log})
	n.events.Subscribe(n.suppressRec)
	undo.add(func() { n.suppressRec.Close() })
	return nil
}

// startExtensions provisions and starts the enabled plugins, and subscribes
// those that take events.
func (n *Node) startExtensions(ctx context.Context, undo *cleanups) (err error) {
	ids := n.cfg.Plugins
	if ids == nil {
		ids = plugin.IDs()
	}
	pctx := extension.Context{RulesDir: n.cfg.RulesDir, DataDir: n.cfg.SpoolDir, Logger: n.log, Events: n.events, Tenants: policyTenants{n}}
	if n.plugins, err = plugin.Start(ctx, ids, pctx, n.cfg.PluginConfig); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	undo.add(func() { closePlugins(n.plugins, n.log) })
	for _, s := range implementers[event.Sink](n.plugins) {
		n.events.Subscribe(s)
	}
	return nil
}

// loadPolicy loads the Lua policy, with the plugins' modules and files: a
// node does not start on a broken policy.
func (n *Node) loadPolicy() (err error) {
	n.policy, err = luart.New(luart.Options{
		ScriptsDir: n.cfg.ScriptsDir, RulesDir: n.cfg.RulesDir, Sources: n.cfg.Sources,
		CallMemory: n.cfg.LuaCallMemory, StateMemory: n.cfg.LuaStateMemory, Counters: n.stats, Reputation: n.reputation,
		Modules: implementers[luart.Module](n.plugins), Preparers: implementers[extension.Preparer](n.plugins),
		Logger: n.log, Events: n.events,
	})
	if err != nil {
		return fmt.Errorf("node: policy: %w", err)
	}
	return nil
}

// startDelivery builds the queue with its resolver, transport, VERP signer
// and warm-up tracker, recovers what the spool holds and starts delivering
// it.
func (n *Node) startDelivery(undo *cleanups) error {
	res, err := dns.New(dns.Options{Servers: n.cfg.DNSServers})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	dopts, tlsConf, err := n.outboundTLS(res)
	if err != nil {
		return err
	}
	dopts.Resolver, dopts.Port, dopts.Logger = res, n.cfg.MXPort, n.log
	dopts.Client = smtpclient.Options{Helo: n.cfg.Hostname, TLSConfig: tlsConf}
	tr, err := deliver.New(dopts)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	key, err := verp.LoadOrCreateKey(n.cfg.VERPKeyFile)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if n.verp, err = verp.New(key); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	wu, err := warmup.Open(n.spool, nil)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.openCluster(undo); err != nil {
		return err
	}
	shared, counts := n.sharedLimits(wu)
	n.queue, err = queue.New(queue.Options{
		Spool: n.spool, Policy: n.policy, Resolver: res, Transport: tr, Events: n.events,
		Logger: n.log, Hostname: n.cfg.Hostname, Retry: n.cfg.Retry, MaxAge: n.cfg.MaxAge, Warmup: counts, VERP: n.verp, Reference: n.verp,
		MaxConnections: n.cfg.MaxOutbound, Shared: shared,
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if n.cluster != nil {
		n.cluster.Attach(n.queue)
	}
	msgs, rcpts, err := n.queue.Recover()
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.log.Info("spool recovered", "dir", n.cfg.SpoolDir, "messages", msgs, "recipients", rcpts)
	if err := n.startMetrics(); err != nil {
		return err
	}
	undo.add(func() { n.stopMetrics(context.Background()) })
	if n.cluster != nil {
		if err := n.cluster.RegisterMetrics(n.metrics.Registry()); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	n.policy.OnReload(func(uint64) { go n.queue.PolicyChanged() })
	n.queue.Start()
	undo.add(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n.queue.Stop(sctx)
	})
	return nil
}

// startListeners takes the SMTP submission address, the bounce listener's
// and the admin API's; connections wait in the backlog until serve.
func (n *Node) startListeners(undo *cleanups) (err error) {
	var tlsConf *tls.Config
	if n.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(n.cfg.TLSCert, n.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("node: TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	spillDir, err := incomingDir(n.cfg.SpoolDir)
	if err != nil {
		return err
	}
	cfg := n.cfg
	n.ingest, err = ingest.New(ingest.Options{
		Hostname: cfg.Hostname, MaxSize: cfg.MaxSize, MaxRecipients: cfg.MaxRecipients, MaxLineLength: cfg.MaxLineLength,
		MaxSessions: cfg.MaxSessions, IdleTimeout: cfg.IdleTimeout, TLS: tlsConf,
		MaxSessionsPerIP: cfg.MaxSessionsPerIP, ConnRatePerIP: cfg.ConnRatePerIP,
		FirstCommandTimeout: cfg.FirstCommandTimeout, DataTimeout: cfg.DataTimeout,
		InsecureAuthLoopback: cfg.InsecureAuthLoopback, RelayNets: cfg.RelayNets,
		Tenants: n.policy, Policy: n.policy, Stages: implementers[extension.Stage](n.plugins),
		RecipientChecks: append([]extension.RecipientCheck{&suppress.Checker{List: n.suppression, Tenants: n.policy, Events: n.events}},
			implementers[extension.RecipientCheck](n.plugins)...),
		Spool: n.spool, Queue: n.queue, Events: n.events, Logger: n.log,
		DataMemory: cfg.DataMemory, SpillDir: spillDir,
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if n.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("node: listen %s: %w", cfg.Listen, err)
	}
	undo.add(func() { n.ln.Close() })
	n.ln = n.metrics.CountSessions(n.ln)
	if cfg.BounceListen != "" {
		n.bounces, err = bouncein.New(bouncein.Options{
			Hostname: cfg.Hostname, VERP: n.verp, Spool: n.spool, Queue: n.queue, Policy: n.policy,
			FBLAddresses: cfg.FBLAddresses, Suppress: n.suppression, Events: n.events, Logger: n.log,
			Domains: n.bounceDomain, Postmaster: cfg.Postmaster,
		})
		if err != nil {
			return fmt.Errorf("node: %w", err)
		}
		if n.bounceLn, err = net.Listen("tcp", cfg.BounceListen); err != nil {
			return fmt.Errorf("node: bounce listener %s: %w", cfg.BounceListen, err)
		}
		undo.add(func() { n.bounceLn.Close() })
	}

	if err := n.startHTTP(tlsConf, undo); err != nil {
		return err
	}

	// The admin API starts last: nothing after it can fail, so it needs no
	// cleanup.
	if cfg.AdminListen != "" {
		page, err := statuspage.New(statuspage.Options{Reputation: n.reputation, Queue: n.queue, Policy: n.policy,
			Hostname: cfg.Hostname, Logger: n.log})
		if err != nil {
			return fmt.Errorf("node: %w", err)
		}
		n.admin, err = admin.Start(admin.Options{
			Addr: cfg.AdminListen, Token: cfg.AdminToken, StateDir: cfg.SpoolDir,
			Policy: n.policy, Queue: n.queue, Rejections: n.ingest.Rejections, Logger: n.log,
			Handlers: n.adminHandlers(), Public: n.metrics.Handlers(), Page: page,
		})
		if err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	return nil
}

// serve starts what runs until Shutdown: the policy watcher, the SMTP and
// bounce servers on their listeners, and the daily pruning of bounce
// references. Nothing in it can fail Start.
func (n *Node) serve() {
	wctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	watchDone, err := n.policy.Watch(wctx)
	if err != nil {
		n.log.Error("policy files not watched; reload with SIGHUP or the admin API", "err", err)
	}
	n.watchDone = watchDone
	go func() { n.serveErr <- n.ingest.Serve(n.ln) }()
	n.serveHTTP()
	if n.bounces != nil {
		go func() {
			if err := n.bounces.Serve(n.bounceLn); err != nil {
				n.log.Error("bounce listener stopped", "err", err)
			}
		}()
	}
	n.background.Add(1)
	go func() {
		defer n.background.Done()
		n.pruneBounceRefs(wctx)
	}()
	n.runDNSCheck(wctx)
	n.runTLS(wctx)
	adminAddr := ""
	if n.admin != nil {
		adminAddr = n.admin.Addr()
	}
	n.log.Info("corriere listening", "smtp", n.ln.Addr().String(), "admin", adminAddr, "metrics", n.MetricsAddr(), "bounces", n.BounceAddr(), "http", n.HTTPAddr(), "hostname", n.cfg.Hostname,
		"mx_port", n.cfg.MXPort, "sources", len(n.cfg.Sources), "policy_generation", n.policy.Status().Generation)
}

// implementers returns the plugins that implement T, in order.
func implementers[T any](plugins []any) []T {
	var out []T
	for _, p := range plugins {
		if t, ok := p.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// Policy returns the node's Lua policy engine, to reload it or ask it.
func (n *Node) Policy() *luart.Engine { return n.policy }

// Queue returns the node's delivery queue, to read its status.
func (n *Node) Queue() *queue.Queue { return n.queue }

// Bounces returns the bounce listener, or nil when it is off.
func (n *Node) Bounces() *bouncein.Server { return n.bounces }

// Reputation returns the node's reputation tracker, to read it.
func (n *Node) Reputation() *reputation.Tracker { return n.reputation }

// Subscribe adds s to the sinks of the node's events.
func (n *Node) Subscribe(s event.Sink) { n.events.Subscribe(s) }

// Addr returns the SMTP listening address.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// adminHandlers are the admin API's endpoints of the node's subsystems.
func (n *Node) adminHandlers() map[string]http.Handler {
	h := suppress.AdminHandlers(n.suppression)
	if n.bounces != nil {
		h["GET /api/bounces"] = n.bounces.CountsHandler()
	}
	maps.Copy(h, reputation.AdminHandlers(n.reputation, n.queue))
	h["GET /api/cluster"] = n.clusterHandler()
	maps.Copy(h, inspect.AdminHandlers(&inspect.Inspector{Spool: n.spool, Providers: n.policy, Live: n.queue}, n.policy, n.queue))
	for _, p := range implementers[extension.AdminRoutes](n.plugins) {
		maps.Copy(h, p.AdminHandlers())
	}
	if n.dnsCheck != nil {
		maps.Copy(h, n.dnsCheck.AdminHandlers())
	}
	maps.Copy(h, tlsrpt.AdminHandlers(n.tlsrpt))
	return h
}

// AdminAddr returns the admin API's address, or "" when it is off.
func (n *Node) AdminAddr() string {
	if n.admin == nil {
		return ""
	}
	return n.admin.Addr()
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
		if err := n.spool.PruneBounceRefs(time.Now().Add(-BounceRefTTL)); err != nil {
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
			if n.bounces == nil {
				bounceErr <- nil
				return
			}
			bounceErr <- n.bounces.Shutdown(ctx)
		}()
		errs := []error{n.shutdownHTTP(ctx), n.ingest.Shutdown(ctx), <-bounceErr}
		if n.admin != nil {
			errs = append(errs, n.admin.Close(ctx))
		}
		errs = append(errs, n.stopMetrics(ctx))
		n.cancel()
		n.background.Wait()
		if n.watchDone != nil {
			<-n.watchDone
		}
		errs = append(errs, n.queue.Stop(ctx))
		if n.cluster != nil {
			// After the queue, which gives its connection leases back, and
			// before the spool, where other nodes' suppressions are stored.
			errs = append(errs, n.cluster.Close())
		}
		closePlugins(n.plugins, n.log)
		errs = append(errs, n.suppressRec.Close(), n.reputation.Close(), n.evlog.Close(), n.spool.Close())
		n.stopErr = errors.Join(errs...)
		n.log.Info("stopped", "pending_recipients", n.queue.Pending())
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
	if d.n.policy == nil {
		return nil, false
	}
	return d.n.policy.Lookup(name)
}
