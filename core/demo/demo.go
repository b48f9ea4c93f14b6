package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"corriere/core/node"
	"corriere/core/policy"
	"corriere/core/sim"
	"corriere/core/spool"
)

// Time compression. The demo runs a campaign, its retries and its
// suspensions in about half a minute; these say by how much each clock is
// shortened.
const (
	// policySpeedup divides the delays the policy asks for (retry after
	// greylisting, suspensions): five minutes become a second.
	policySpeedup = 300
	// maxPolicyDelay caps them, in seconds, so an hour's suspension does
	// not outlast the demo.
	maxPolicyDelay = 10
	// simSpeedup makes the simulated providers' clock run faster, so that
	// their per-minute rate windows and greylisting delays pass in seconds.
	simSpeedup = 15
)

// retrySchedule is the node's retry schedule during the demo, instead of
// minutes and hours.
var retrySchedule = []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second}

// sources are the node's egress addresses; the default world gives each a
// PTR record (mtaN.corriere-smarthost.it). 127.0.0.9, block-listed in the
// world, is left out.
var sources = func() []policy.Source {
	var out []policy.Source
	for i := 2; i <= 8; i++ {
		out = append(out, policy.Source{IP: fmt.Sprintf("127.0.0.%d", i), Helo: fmt.Sprintf("mta%d.corriere-smarthost.it", i)})
	}
	return out
}()

// bounceDomain is the ricette tenant's bounce domain; in the default world
// its MX is bounceMX, where the node's bounce listener listens.
const (
	bounceDomain = "bounces.corriere-smarthost.it"
	// fblAddress is the feedback-loop address the simulated providers send
	// their complaint reports to, at the bounce listener.
	fblAddress = "fbl@" + bounceDomain
	bounceMX   = "127.0.0.10"
)

// connsPerSource is the demo's cap on connections from one source to one
// provider, set in its copy of rules/pools.lua: the simulated providers
// refuse a fourth to sixth connection from one IP, fewer than the shipped
// rules/providers.lua opens.
const connsPerSource = 3

// warmingSource is the source that the demo's copy of rules/pools.lua puts
// on day 1 of a warm-up schedule.
const warmingSource = "127.0.0.8"

// Options configure Run.
type Options struct {
	// Messages is the size of the workload: about this many messages as
	// the mailboxes receive them (a newsletter batch to 100 recipients
	// counts 100). The default value is 2500.
	Messages int
	// Duration caps the run; whatever is still queued then is reported
	// with its last reply. The default value is 55s.
	Duration time.Duration
	// MaxAge is how long Corriere retries a recipient before it expires
	// with a DSN (five days in production). The default value is 25s.
	MaxAge time.Duration
	// WorldPath is the simulated world. The default value, "", is the
	// world built into the binary (the repository's
	// testdata/sim/world.json), so the demo runs from any directory.
	WorldPath string
	// ScriptsDir and RulesDir are the policy to copy into the workspace.
	// The default value of each, "", is the policy built into the binary
	// (the repository's scripts/ and rules/).
	ScriptsDir, RulesDir string
	// KeepDir, when set, is the workspace (created if needed; it must be
	// empty), kept whole afterwards. Otherwise a temporary directory is
	// used and only its event log and log are left.
	KeepDir string
	// Seed makes the workload and the simulated complaints reproducible.
	// The default value is 1.
	Seed int64
	// Out receives the progress and the summary. The default value is
	// io.Discard.
	Out io.Writer
	// Live redraws a table in place with ANSI escape codes (for a
	// terminal); otherwise a progress line is printed now and then.
	Live bool
	// Admin is the address of the node's admin listener, which serves the
	// API and the status page (open to loopback clients) while the demo
	// runs. The default value, "", runs none.
	Admin string
	// Interval is how often progress is shown. The default value is 500ms
	// when Live and 3s otherwise.
	Interval time.Duration
}

// EnsureDefaults fills the zero fields of o with their default values.
func (o *Options) EnsureDefaults() {
	if o.Messages == 0 {
		o.Messages = 2500
	}
	if o.Duration == 0 {
		o.Duration = 55 * time.Second
	}
	if o.MaxAge == 0 {
		o.MaxAge = 25 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Interval == 0 {
		o.Interval = 3 * time.Second
		if o.Live {
			o.Interval = 500 * time.Millisecond
		}
	}
}

// Validate reports options that cannot work.
func (o *Options) Validate() error {
	switch {
	case o.Messages < 20:
		return fmt.Errorf("demo: Messages %d: at least 20 are needed for a mixed workload", o.Messages)
	case o.Duration < time.Second:
		return fmt.Errorf("demo: Duration %s is too short", o.Duration)
	case o.MaxAge < time.Second:
		return fmt.Errorf("demo: MaxAge %s is too short", o.MaxAge)
	case o.Interval < 10*time.Millisecond:
		return fmt.Errorf("demo: Interval %s is too short", o.Interval)
	}
	return nil
}

// Run runs the demo: it prepares a workspace, starts the simulated
// internet, the sender-side receiver and a Corriere node, submits the
// workload, shows progress on opts.Out until everything is settled, the
// Duration has passed or ctx ends, then stops everything and prints the
// summary. The Report's Unaccounted lists every acknowledged recipient the
// accounting cannot place; an error means the demo itself could not run.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	started := time.Now()
	world, err := sim.LoadWorld(opts.WorldPath)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	spread := min(8*time.Second, opts.Duration/5)
	wl, err := newWorkload(world, opts.Messages, opts.Seed, spread)
	if err != nil {
		return nil, err
	}
	ws, err := newWorkspace(opts.KeepDir, opts.ScriptsDir, opts.RulesDir, policySpeedup, maxPolicyDelay)
	if err != nil {
		return nil, err
	}
	warmCap := max(5, opts.Messages/50)
	var others []string
	for _, s := range sources {
		if s.IP != warmingSource {
			others = append(others, s.IP)
		}
	}
	warmup, err := ws.addPoolLimits(warmingSource, warmCap, others, connsPerSource, started)
	if err != nil {
		ws.cleanup()
		return nil, err
	}
	logFile, err := os.Create(ws.log)
	if err != nil {
		ws.cleanup()
		return nil, fmt.Errorf("demo: %w", err)
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	d := &run{opts: opts, wl: wl, ws: ws, log: log, world: world, started: started, warmup: warmup, warmCap: warmCap}
	defer func() {
		if err := ws.cleanup(); err != nil {
			log.Error("cleanup", "err", err)
		}
	}()
	if err := d.start(ctx); err != nil {
		d.stop()
		return nil, err
	}
	d.intro()
	d.loop(ctx)
	return d.finish()
}

// run is one demo run.
type run struct {
	opts    Options
	wl      *workload
	ws      *workspace
	log     *slog.Logger
	world   *sim.World
	started time.Time
	warmup  bool // the warm-up entry was added
	warmCap int

	sim      *sim.Sim
	rcv      *receiver
	port     int
	node     *node.Node
	tracker  *tracker
	injector *injector
	injected chan struct{}
	stopped  bool
	in       inboundStats
	ending   string // why the loop ended
}

// start brings up the simulator, the receiver and the node.
func (d *run) start(ctx context.Context) error {
	if err := d.startSim(ctx); err != nil {
		return err
	}
	d.tracker = newTracker(d.wl, lateMail(d.world))
	tlsCfg, err := d.tlsConfig()
	if err != nil {
		return err
	}
	n, err := node.Start(ctx, node.Config{
		Listen:               "127.0.0.1:0",
		SpoolDir:             d.ws.spool,
		EventLog:             d.ws.events,
		Hostname:             "mta.corriere-smarthost.it",
		DNSServers:           []string{d.sim.DNSAddr()},
		MXPort:               d.port,
		Sources:              sources,
		ScriptsDir:           d.ws.scripts,
		RulesDir:             d.ws.rules,
		InsecureAuthLoopback: true,
		BounceListen:         net.JoinHostPort(bounceMX, strconv.Itoa(d.port)),
		FBLAddresses:         []string{fblAddress},
		MaxAge:               d.opts.MaxAge,
		Retry:                retrySchedule,
		AdminListen:          d.opts.Admin,
		Logger:               d.log.With("component", "corriere"),
		TLSRoots:             tlsCfg.TLSRoots,
		MTASTSPort:           tlsCfg.MTASTSPort,
		DANEResolvers:        tlsCfg.DANEResolvers,
	})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.node = n
	n.Subscribe(d.tracker)
	return nil
}

// startSim starts the simulated internet and the sender-side receiver on
// one port: Corriere reaches every MX on the same port, the senders' MX
// (127.0.0.1) included, and the simulator sends its bounces and complaint
// reports to that same MX, so the receiver on 127.0.0.1 gets both.
func (d *run) startSim(ctx context.Context) error {
	var lastErr error
	for range 20 {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("demo: listen on 127.0.0.1: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		base := time.Now()
		s, err := sim.Start(ctx, d.world, sim.Options{
			MXPort:        port,
			ReturnPort:    port,
			Seed:          d.opts.Seed,
			Now:           func() time.Time { return base.Add(time.Since(base) * simSpeedup) },
			Logger:        d.log.With("component", "sim"),
			MaxDeliveries: 2*d.wl.recipients + 1000,
		})
		if err != nil {
			ln.Close()
			if errors.Is(err, syscall.EADDRINUSE) {
				lastErr = err
				continue
			}
			return fmt.Errorf("demo: %w", err)
		}
		d.sim, d.port = s, port
		d.rcv = startReceiver(ln, d.log.With("component", "receiver"))
		return nil
	}
	return fmt.Errorf("demo: no port free on every simulated MX address: %w", lastErr)
}

// loop submits the workload and shows progress until everything is
// settled, the duration is over or ctx ends.
func (d *run) loop(ctx context.Context) {
	deadline := d.started.Add(d.opts.Duration)
	ictx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	d.injector = newInjector(d.node.Addr(), d.ws.passwords)
	d.injected = make(chan struct{})
	go func() {
		defer close(d.injected)
		d.injector.run(ictx, d.wl, time.Now())
	}()
	p := newProgress(d)
	tick := time.NewTicker(d.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			d.ending = "interrupted"
		case <-ictx.Done():
			d.ending = fmt.Sprintf("--duration %s reached", d.opts.Duration)
		case <-tick.C:
			p.show()
			_, _, finished := d.injector.progress()
			v := d.tracker.view()
			if finished && d.node.Queue().Pending() == 0 && time.Now().After(v.lateUntil.Add(lateSlack)) {
				d.ending = "everything settled"
			}
		}
		if d.ending != "" {
			break
		}
	}
	<-d.injected
	p.show()
	p.done()
}

// lateMail returns, for the world w, how long after a recipient's
// delivery its provider may still send a bounce (for recipients with the
// accept-then-bounce prefix) or a complaint report about it; zero when it
// sends neither.
func lateMail(w *sim.World) func(rcpt string) time.Duration {
	type late struct {
		prefix            string
		bounce, complaint time.Duration
	}
	byDomain := map[string]late{}
	for _, p := range w.Providers {
		var l late
		if a := p.AsyncBounce; a != nil {
			l.prefix, l.bounce = strings.ToLower(a.Prefix), time.Duration(a.Delay)
		}
		if c := p.Complaints; c != nil && c.Rate > 0 {
			l.complaint = time.Duration(c.Delay)
		}
		for _, d := range p.Domains {
			byDomain[strings.ToLower(d.Name)] = l
		}
	}
	return func(rcpt string) time.Duration {
		l := byDomain[domainOf(rcpt)]
		d := l.complaint
		if l.prefix != "" && strings.HasPrefix(rcpt, l.prefix) {
			d = max(d, l.bounce)
		}
		return d
	}
}

// lateSlack is how long the demo waits beyond the providers' delays for
// their late mail to be delivered.
const lateSlack = time.Second

// stop shuts everything down; it may be called more than once.
func (d *run) stop() {
	if d.stopped {
		return
	}
	d.stopped = true
	if d.node != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := d.node.Shutdown(ctx); err != nil {
			d.log.Error("node shutdown", "err", err)
		}
		cancel()
	}
	if d.sim != nil {
		if err := d.sim.Close(); err != nil {
			d.log.Error("simulator close", "err", err)
		}
	}
	if d.rcv != nil {
		if err := d.rcv.close(); err != nil {
			d.log.Error("receiver close", "err", err)
		}
	}
}

// finish stops everything, reads what the spool still holds, and prints
// and returns the report.
func (d *run) finish() (*Report, error) {
	d.stop()
	left, err := spoolLeft(filepath.Join(d.ws.spool, "queue"), d.log)
	if err != nil {
		return nil, err
	}
	r := d.account(left)
	d.summary(r)
	return r, nil
}

// leftEntry is a recipient the spool still holds after the run.
type leftEntry struct {
	msgID, rcpt, reply string
}

// spoolLeft opens the node's spool (node keeps it in SpoolDir/queue) after
// shutdown and lists the recipients it still holds.
func spoolLeft(dir string, log *slog.Logger) ([]leftEntry, error) {
	sp, err := spool.Open(spool.Options{Dir: dir, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("demo: read the spool: %w", err)
	}
	var left []leftEntry
	err = sp.Scan(func(meta *spool.Meta, entries []*spool.Entry) error {
		for _, e := range entries {
			left = append(left, leftEntry{msgID: meta.ID, rcpt: strings.ToLower(e.Rcpt.Addr), reply: e.LastReply})
		}
		return nil
	})
	if cerr := sp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("demo: read the spool: %w", err)
	}
	return left, nil
}
