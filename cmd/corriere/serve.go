package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"corriere/core/ingest"
	"corriere/core/node"
	"corriere/core/policy"
)

func init() {
	register(command{name: "serve", summary: "run the MTA: SMTP submission, durable queue, delivery", run: runServe})
}

const serveHelp = `
Runs Corriere: accepts mail over SMTP from authenticated tenants and from the
relay networks, stores it durably in the spool (250 is sent only after an
fsync), and delivers it to each recipient's MX hosts according to the Lua
policy in --scripts and --rules, which is reloaded live when the files change
(or on SIGHUP). SIGINT/SIGTERM stop it gracefully: no new sessions, in-flight
transactions finish, the spool is synced; everything queued is delivered after
the next start.

Re-enveloping. Tenants with reenvelope = true (rules/tenants/) send with the
platform's bounce address as envelope sender: each recipient gets a VERP
address signed with the --verp-key, and the MX of the bounce domain should
point at --bounce-listen, which accepts only bounces to addresses it signed,
forwards each to the message's author and feeds the suppression list.
Tenants with return_path_domain get such VERP addresses on their own domain.
Complaints sent to an --fbl-address count when they quote such an address
or the X-Corriere-Ref header every message leaves with; mail to postmaster
of the listener's domains goes to --postmaster.

Every flag can also be set in a --config file, one "name = value" per line
(repeat the line for repeatable flags; "#" starts a comment). Flags given on
the command line win over the file; relative paths in the file are relative
to its directory. The other commands (queue, rules, suppression...) read the
same file with --config for the settings they share with serve.

Examples:
  corriere serve                                  # in the repository: ./scripts, ./rules, spool ./data
  corriere init /etc/corriere && corriere serve --config /etc/corriere/corriere.conf
  corriere serve --dns 127.0.0.1:5300 --mx-port 2526 --source-ip 127.0.0.2=mta2.example.net
  corriere serve --config /etc/corriere/corriere.conf
`

// serveFlags are the settings of serve, bound to a flag set.
type serveFlags struct {
	listen, spool, events, hostname, scripts, rules string
	tlsCert, tlsKey, logLevel, admin, adminToken    string
	bounceListen, verpKey, minFree, dataMemory      string
	trackingListen                                  string
	dns, sources, relayNets, fblAddresses           stringList
	mxPort, maxRecipients, maxSessions, maxOutbound int
	maxLineLength                                   int
	logFormat, metrics, eventsMaxSize               string
	eventsKeep                                      int
	maxSize, luaCallMemory, luaStateMemory          int64
	maxSessionsPerIP                                int
	connRatePerIP                                   float64
	postmaster                                      string
	idle, maxAge, firstCommand, dataTimeout         time.Duration
	retry                                           string
	insecureAuth                                    bool
	http                                            httpFlags
	dnsCheckInterval                                time.Duration
	daneResolvers                                   stringList
	noMTASTS                                        bool
	mtastsPort                                      int
	tlsRoots                                        string
	redis, redisPassword, redisCA, nodeID           string
	redisTLS                                        bool
}

func newServeFlags() (*flag.FlagSet, *serveFlags) {
	f := &serveFlags{}
	fs := newFlagSet("serve", "serve [flags]", serveHelp)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:2525", "SMTP submission `address`")
	fs.StringVar(&f.spool, "spool", "./data", "spool `directory` (queue database and event log)")
	fs.StringVar(&f.events, "events", "", "event log `file` (JSON lines), \"-\" for standard output; default SPOOL/events.jsonl (reopened on SIGUSR1, for logrotate)")
	fs.StringVar(&f.eventsMaxSize, "events-max-size", "", "rotate the event log file at this `size`, such as 100M: events.jsonl becomes events.jsonl.1, and so on; default: never")
	fs.IntVar(&f.eventsKeep, "events-keep", 5, "rotated event log files kept (with --events-max-size)")
	fs.Var(&f.dns, "dns", "nameserver `address` host:port, may repeat; default: the nameservers of /etc/resolv.conf")
	fs.IntVar(&f.mxPort, "mx-port", 25, "TCP `port` used to reach MX hosts")
	fs.Var(&f.daneResolvers, "dane-resolver", "trusted validating DNS resolver `address` host:port whose AD bit authenticates TLSA records (DANE), may repeat: one on this machine or a network you control; default: DANE off")
	fs.BoolVar(&f.noMTASTS, "no-mta-sts", false, "do not apply the recipient domains' MTA-STS policies")
	fs.IntVar(&f.mtastsPort, "mta-sts-port", 443, "HTTPS `port` of MTA-STS policy servers (another only for tests and the simulator)")
	fs.StringVar(&f.tlsRoots, "tls-roots", "", "PEM `file` of the certificate authorities MX hosts and MTA-STS policy servers must chain to; default: the system's")
	fs.Var(&f.sources, "source-ip", "egress `IP` to bind, optionally IP=helo.name, may repeat; default: the system picks")
	fs.Var(&f.relayNets, "relay-net", "client `CIDR` allowed to relay without AUTH, may repeat; \"none\" requires AUTH from everyone (default 127.0.0.0/8)")
	fs.StringVar(&f.scripts, "scripts", "./scripts", "Lua policy scripts `directory` (watched)")
	fs.StringVar(&f.rules, "rules", "./rules", "policy data `directory`: providers, bounces, pools, tenants (watched)")
	fs.StringVar(&f.hostname, "hostname", "", "`name` in greetings, Received fields and DSNs; default: the system host name")
	fs.Int64Var(&f.maxSize, "max-size", 50<<20, "largest message accepted, in `bytes`")
	fs.StringVar(&f.dataMemory, "data-memory", "128M", "message data held in memory across all SMTP sessions, a `size` such as 64M; more waits on disk in SPOOL/incoming")
	fs.StringVar(&f.minFree, "min-free", "", "free `space` kept on the spool's disk, such as 512M or 2G: under it new mail is answered 452 4.3.1 while delivery goes on; default 256M, or a quarter of a smaller disk")
	fs.Int64Var(&f.luaCallMemory, "lua-call-memory", 16<<20, "memory budget of one Lua hook call, in `bytes`: a call holding more is stopped (safe outcome: 451 at ingest, retry at delivery)")
	fs.Int64Var(&f.luaStateMemory, "lua-state-memory", 16<<20, "what a Lua state may keep between calls (globals, upvalues) beyond the loaded policy, in `bytes`: a state over it is replaced by a fresh one")
	fs.IntVar(&f.maxRecipients, "max-recipients", 1000, "most recipients per message")
	fs.IntVar(&f.maxLineLength, "max-line-length", ingest.DefaultMaxLineLength, "longest line accepted in commands and message data, in `octets` without the CRLF; longer ones get 554 5.6.0")
	fs.IntVar(&f.maxSessions, "max-sessions", 1000, "most concurrent SMTP sessions")
	fs.IntVar(&f.maxOutbound, "max-outbound", 1000, "most outbound SMTP connections open at once, across all providers and IPs (critical mail may use a tenth more)")
	fs.IntVar(&f.maxSessionsPerIP, "max-sessions-per-ip", 100, "most concurrent SMTP sessions from one client (IPv4 address or IPv6 /64, loopback and relay networks included); 0: no limit")
	fs.Float64Var(&f.connRatePerIP, "conn-rate-per-ip", 100, "most SMTP connections per second one client may open on average (twice as many at once); 0: no limit")
	fs.DurationVar(&f.idle, "idle-timeout", 5*time.Minute, "close SMTP sessions idle this long, and DATA transfers that send nothing this long")
	fs.DurationVar(&f.firstCommand, "first-command-timeout", 30*time.Second, "close SMTP sessions that send no command this long after connecting")
	fs.DurationVar(&f.dataTimeout, "data-timeout", 30*time.Minute, "longest DATA transfer, however steady")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate `file` for STARTTLS")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key `file` for STARTTLS")
	fs.BoolVar(&f.insecureAuth, "insecure-auth-loopback", false, "allow AUTH without TLS from loopback clients (local testing)")
	fs.DurationVar(&f.maxAge, "max-age", 5*24*time.Hour, "retry a recipient this long before it expires with a DSN")
	fs.StringVar(&f.retry, "retry", "1m,5m,10m,20m,30m,1h,2h,4h", "retry `schedule`: comma-separated delays, the last one repeats")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info (one line per delivery attempt), warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", logFormatUsage)
	fs.StringVar(&f.metrics, "metrics", "", "`address` serving /metrics, /healthz and /readyz without a token, apart from the admin API (which serves them too); default: only on --admin")
	fs.StringVar(&f.admin, "admin", "127.0.0.1:8025", "admin HTTP API `address` (status, reload); \"none\" disables it")
	fs.StringVar(&f.adminToken, "admin-token", "", "admin API bearer `token`; default: a random one written to SPOOL/admin.token")
	fs.StringVar(&f.trackingListen, "tracking-listen", "", "open and click tracking listener `address`, where the tenants' tracking domains (rules/tracking.lua) point; default: off, links are not rewritten")
	fs.StringVar(&f.bounceListen, "bounce-listen", "", "bounce listener `address` for the bounce domain's MX (bounces and feedback reports to VERP addresses of re-enveloped mail); default: off")
	fs.Var(&f.fblAddresses, "fbl-address", "feedback-loop `address` registered with the providers, whose MX is --bounce-listen, may repeat: complaints about re-enveloped mail sent there suppress the complainer")
	fs.StringVar(&f.postmaster, "postmaster", "", "operator's `address` that receives the mail sent to postmaster@ the bounce listener's domains; default: such mail is accepted and recorded as an event only")
	fs.DurationVar(&f.dnsCheckInterval, "dns-check-interval", 24*time.Hour, "how often every tenant's sender domains are checked (corriere dns check; the last report is at GET /api/tenants/T/dns); a negative value turns it off")
	fs.StringVar(&f.verpKey, "verp-key", "", "`file` with the hex key that signs VERP addresses; default: SPOOL/verp.key, made on first start (keep it: bounces to addresses signed with a lost key are ignored)")
	f.http.register(fs)
	fs.StringVar(&f.redis, "redis", "", "Redis `address` host:port shared with the other nodes of a cluster: rate limits, connection counts, warm-up counts, suspensions and the suppression list; default: none, the node shares nothing")
	fs.StringVar(&f.redisPassword, "redis-password", "", "Redis `password` (AUTH)")
	fs.BoolVar(&f.redisTLS, "redis-tls", false, "talk to Redis over TLS")
	fs.StringVar(&f.redisCA, "redis-ca", "", "PEM `file` of the CA that signed Redis's certificate (with --redis-tls); default: the system's roots")
	fs.StringVar(&f.nodeID, "node-id", "", "`name` of this node in the cluster (with --redis); default: HOSTNAME/LISTEN")
	return fs, f
}

func runServe(ctx context.Context, args []string) int {
	flags, f := newServeFlags()
	if status, ok := parseFlags(flags, args); !ok {
		return status
	}
	if err := policyPresent(f.scripts, f.rules); err != nil {
		fmt.Fprintln(os.Stderr, "corriere serve:", err)
		return 2
	}
	cfg, err := f.nodeConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "corriere serve:", err)
		return 2
	}
	// Refused before anything is opened or listened on.
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "corriere serve: invalid configuration:", err)
		return 2
	}
	if _, err := os.Stat(cfg.SpoolDir); errors.Is(err, fs.ErrNotExist) && flagGiven(flags, "spool") {
		cfg.Logger.Warn("the spool directory does not exist: starting with an empty queue there; if mail was queued in another directory, a mistyped --spool hides it",
			"spool", cfg.SpoolDir)
	}
	n, err := node.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "corriere serve:", err)
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	status := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-hup:
			if err := n.Policy().Reload(); err != nil {
				cfg.Logger.Error("SIGHUP: policy reload refused; the current generation stays", "err", err)
			}
		case <-usr1:
			if err := n.ReopenEventLog(); err != nil {
				cfg.Logger.Error("SIGUSR1: cannot reopen the event log; writing on in the old file", "err", err)
			}
		case err := <-n.Done():
			if err != nil {
				cfg.Logger.Error("SMTP server stopped", "err", err)
				status = 1
			}
			break loop
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		cfg.Logger.Error("shutdown", "err", err)
		status = 1
	}
	return status
}

// nodeConfig validates the flags and turns them into a node configuration.
func (f *serveFlags) nodeConfig() (node.Config, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return node.Config{}, fmt.Errorf("--log-level: %w", err)
	}
	logger, err := newLogger(os.Stderr, f.logFormat, level)
	if err != nil {
		return node.Config{}, err
	}
	cfg := node.Config{
		Listen: f.listen, SpoolDir: f.spool, EventLog: f.events, Hostname: f.hostname,
		DNSServers: f.dns, MXPort: f.mxPort, ScriptsDir: f.scripts, RulesDir: f.rules,
		MaxSize: f.maxSize, MaxRecipients: f.maxRecipients, MaxLineLength: f.maxLineLength, MaxSessions: f.maxSessions,
		MaxSessionsPerIP: noLimit(f.maxSessionsPerIP), ConnRatePerIP: noLimit(f.connRatePerIP),
		FirstCommandTimeout: f.firstCommand, DataTimeout: f.dataTimeout,
		IdleTimeout: f.idle, TLSCert: f.tlsCert, TLSKey: f.tlsKey, InsecureAuthLoopback: f.insecureAuth,
		MaxAge: f.maxAge, MaxOutbound: f.maxOutbound, AdminToken: f.adminToken, BounceListen: f.bounceListen, VERPKeyFile: f.verpKey,
		FBLAddresses: f.fblAddresses, LuaCallMemory: f.luaCallMemory, LuaStateMemory: f.luaStateMemory,
		MetricsListen: f.metrics, EventLogKeep: f.eventsKeep, Logger: logger,
		DANEResolvers: f.daneResolvers, NoMTASTS: f.noMTASTS, MTASTSPort: f.mtastsPort, TLSRoots: f.tlsRoots,
		Redis: f.redis, RedisPassword: f.redisPassword, RedisTLS: f.redisTLS, RedisCA: f.redisCA, NodeID: f.nodeID,
	}
	cfg.Postmaster = f.postmaster
	if f.admin != "none" {
		cfg.AdminListen = f.admin
	}
	if err := f.http.apply(&cfg); err != nil {
		return cfg, err
	}
	cfg.DNSCheckInterval = f.dnsCheckInterval
	if f.trackingListen != "" {
		if _, _, err := net.SplitHostPort(f.trackingListen); err != nil {
			return cfg, fmt.Errorf("--tracking-listen %q: want host:port such as 0.0.0.0:8080: %w", f.trackingListen, err)
		}
		cfg.PluginConfig = map[string]map[string]any{"tracking": {"listen": f.trackingListen}}
	}
	if f.minFree != "" {
		n, err := parseSize(f.minFree)
		if err != nil || n == 0 {
			return cfg, fmt.Errorf("--min-free %q: want a positive size such as 512M or 2G", f.minFree)
		}
		cfg.MinFree = n
	}
	if f.eventsMaxSize != "" {
		n, err := parseSize(f.eventsMaxSize)
		if err != nil || n == 0 || n > math.MaxInt64 {
			return cfg, fmt.Errorf("--events-max-size %q: want a positive size such as 100M", f.eventsMaxSize)
		}
		if f.events == node.StdoutEventLog {
			return cfg, errors.New("--events-max-size: the standard output (--events -) is not rotated")
		}
		cfg.EventLogMaxSize = int64(n)
	}
	if f.eventsKeep < 1 {
		return cfg, fmt.Errorf("--events-keep %d: want at least 1 file", f.eventsKeep)
	}
	if f.luaCallMemory <= 0 || f.luaStateMemory <= 0 {
		return cfg, fmt.Errorf("--lua-call-memory %d, --lua-state-memory %d: want positive sizes in bytes", f.luaCallMemory, f.luaStateMemory)
	}
	if f.maxSessionsPerIP < 0 || f.connRatePerIP < 0 {
		return cfg, errors.New("--max-sessions-per-ip and --conn-rate-per-ip want a positive number, or 0 for no limit")
	}
	if f.firstCommand <= 0 || f.dataTimeout <= 0 || f.idle <= 0 {
		return cfg, errors.New("--idle-timeout, --first-command-timeout and --data-timeout want a positive duration")
	}
	if f.maxOutbound <= 0 {
		return cfg, fmt.Errorf("--max-outbound %d: want a positive number of connections", f.maxOutbound)
	}
	dataMemory, err := parseSize(f.dataMemory)
	if err != nil || dataMemory < 1<<20 || dataMemory > math.MaxInt64 {
		return cfg, fmt.Errorf("--data-memory %q: want a size of at least 1M, such as 128M", f.dataMemory)
	}
	cfg.DataMemory = int64(dataMemory)
	if f.mxPort <= 0 || f.mxPort > 65535 {
		return cfg, fmt.Errorf("--mx-port %d: not a TCP port", f.mxPort)
	}
	for _, s := range f.sources {
		ip, helo, _ := strings.Cut(s, "=")
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return cfg, fmt.Errorf("--source-ip %q: %w", s, err)
		}
		cfg.Sources = append(cfg.Sources, policy.Source{IP: a.String(), Helo: helo})
	}
	nets := f.relayNets
	if len(nets) == 0 {
		nets = stringList{"127.0.0.0/8"}
	}
	for _, n := range nets {
		if n == "none" {
			if len(nets) > 1 {
				return cfg, errors.New("--relay-net none cannot be combined with networks")
			}
			break
		}
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return cfg, fmt.Errorf("--relay-net %q: want a CIDR such as 10.0.0.0/8 or \"none\": %w", n, err)
		}
		cfg.RelayNets = append(cfg.RelayNets, p.Masked())
	}
	for _, d := range strings.Split(f.retry, ",") {
		v, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil || v <= 0 {
			return cfg, fmt.Errorf("--retry %q: each step must be a positive duration such as 5m", f.retry)
		}
		cfg.Retry = append(cfg.Retry, v)
	}
	for _, d := range f.dns {
		if _, err := netip.ParseAddrPort(d); err != nil {
			return cfg, fmt.Errorf("--dns %q: want ip:port such as 127.0.0.1:53: %w", d, err)
		}
	}
	return cfg, nil
}

// noLimit turns a flag's 0 ("no limit") into the negative value that means
// it in ingest's options, where 0 means the default.
func noLimit[T int | float64](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// flagGiven reports whether the flag name was set, on the command line or
// by the configuration file.
func flagGiven(flags *flag.FlagSet, name string) bool {
	given := false
	flags.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// parseSize reads a size in bytes with an optional binary unit: K, M, G or
// T, optionally followed by "iB" or "B" ("512M", "2GiB", "1048576").
func parseSize(s string) (uint64, error) {
	num := strings.TrimSpace(s)
	for _, suffix := range []string{"iB", "B"} {
		if cut, ok := strings.CutSuffix(num, suffix); ok {
			num = cut
			break
		}
	}
	shift := 0
	if num != "" {
		switch num[len(num)-1] {
		case 'K', 'k':
			shift = 10
		case 'M', 'm':
			shift = 20
		case 'G', 'g':
			shift = 30
		case 'T', 't':
			shift = 40
		}
		if shift > 0 {
			num = num[:len(num)-1]
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(num), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	if n > math.MaxUint64>>shift {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n << shift, nil
}
