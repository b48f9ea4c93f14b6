package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"corriere/core/dns"
	"corriere/core/ingest"
	"corriere/core/luart"
	"corriere/core/plugin"
	"corriere/core/policy"
	"corriere/core/queue"
)

// Config is everything a node needs; cmd/corriere fills it from flags and
// the configuration file. Start applies EnsureDefaults and refuses a
// configuration that Validate refuses.
type Config struct {
	// Listen is the SMTP submission address, host:port. The default value
	// is "127.0.0.1:2525".
	Listen string
	// SpoolDir holds the spool database, the event log, the VERP key, the
	// admin token and the OPTIONS file. Required.
	SpoolDir string
	// EventLog is the JSON-lines event file, or "-" (StdoutEventLog) for
	// the standard output. The default value is SpoolDir/events.jsonl.
	EventLog string
	// EventLogMaxSize rotates the event log file once it holds this many
	// bytes (see event.Rotation). The default value, 0, never rotates.
	EventLogMaxSize int64
	// EventLogKeep is how many rotated event log files are kept. The
	// default value is 5.
	EventLogKeep int
	// Hostname names the node in greetings, Received fields and DSNs. The
	// default value is the system's host name, or "localhost" when it has
	// none.
	Hostname string
	// DNSServers are the nameservers, host:port. The default value is the
	// nameservers of /etc/resolv.conf on port 53 (see dns.Options.Servers).
	DNSServers []string
	// MXPort is the TCP port used to reach MX hosts. The default value is
	// 25.
	MXPort int
	// NoMTASTS stops the node from applying the recipient domains'
	// MTA-STS policies. The default value false applies them.
	NoMTASTS bool
	// MTASTSPort is the HTTPS port of MTA-STS policy servers. The default
	// value is 443; the simulator serves its policies on another.
	MTASTSPort int
	// DANEResolvers are the trusted validating resolvers, host:port, whose
	// AD bit authenticates TLSA records: a resolver on this machine or on
	// a network the operator controls (see README, "Outbound TLS"). The
	// default value is none: DANE is off.
	DANEResolvers []string
	// TLSRoots is a PEM file of the certificate authorities that MX hosts
	// and MTA-STS policy servers must chain to. The default value "" means
	// the system's roots.
	TLSRoots string
	// Sources are the egress IPs (with HELO names). The default value is
	// none: the system picks the address.
	Sources []policy.Source
	// RelayNets may relay without AUTH. The default value is none: every
	// client must authenticate.
	RelayNets []netip.Prefix
	// ScriptsDir and RulesDir hold the Lua policy. The default values are
	// "./scripts" and "./rules".
	ScriptsDir, RulesDir string
	// MinFree is the free space, in bytes, kept on the spool's filesystem:
	// under it new messages are answered 452 4.3.1 while delivery goes on.
	// The default value, 0, lets the spool choose spool.DefaultMinFree, or
	// a quarter of the filesystem when that is smaller (see
	// spool.Options.MinFree); the OPTIONS file shows the value chosen.
	MinFree uint64
	// DataMemory caps the message data ingest holds in memory; larger
	// messages wait on disk in SpoolDir/incoming. The default value is
	// ingest's (128 MiB).
	DataMemory int64
	// LuaCallMemory and LuaStateMemory are the memory budgets of the Lua
	// policy (luart.Options.CallMemory and StateMemory). The default
	// values are luart's (16 MiB each).
	LuaCallMemory, LuaStateMemory int64
	// MaxSize, MaxRecipients, MaxLineLength, MaxSessions,
	// MaxSessionsPerIP, ConnRatePerIP, IdleTimeout, FirstCommandTimeout and
	// DataTimeout limit ingest. The default values are ingest's (see ingest.Options); a
	// negative MaxSessionsPerIP or ConnRatePerIP removes that limit.
	MaxSize             int64
	MaxRecipients       int
	MaxLineLength       int
	MaxSessions         int
	MaxSessionsPerIP    int
	ConnRatePerIP       float64
	IdleTimeout         time.Duration
	FirstCommandTimeout time.Duration
	DataTimeout         time.Duration
	// TLSCert and TLSKey are the PEM files that enable STARTTLS on
	// ingest; both or neither. The default value is none: no STARTTLS.
	TLSCert, TLSKey string
	// InsecureAuthLoopback allows AUTH without TLS from loopback clients.
	// The default value is false.
	InsecureAuthLoopback bool
	// MaxOutbound caps the outbound SMTP connections open at once, across
	// all providers and source IPs. The default value is 1000.
	MaxOutbound int
	// MaxAge is how long a recipient is retried. The default value is
	// the queue's (5 days).
	MaxAge time.Duration
	// Retry is the retry schedule; the last step repeats. The default
	// value is queue.DefaultRetry.
	Retry []time.Duration
	// Plugins lists the plugin IDs to enable. The default value (nil) is
	// every registered plugin; an empty list enables none.
	Plugins []string
	// PluginConfig holds plugins' configuration sections, by plugin ID,
	// handed to each plugin at Provision (the tracking plugin's "listen"
	// address comes from --tracking-listen). The default value is none.
	PluginConfig map[string]map[string]any
	// AdminListen is the admin API address, host:port. The default value
	// is "": no admin API.
	AdminListen string
	// MetricsListen is an address serving /metrics, /healthz and /readyz
	// apart from the admin API (which serves them too). The default value
	// is "": only the admin API serves them.
	MetricsListen string
	// AdminToken authorises admin calls. The default value is a random
	// token made at each start and written to SpoolDir/admin.token.
	AdminToken string
	// BounceListen is the address of the bounce listener, which takes the
	// bounces and feedback reports sent to the VERP addresses of
	// re-enveloped mail. The default value is "": no bounce listener.
	BounceListen string
	// HTTPListen is the address of the HTTP injection API (core/httpin),
	// served over TLS with TLSCert when it is set. The default value is
	// "": no HTTP API.
	HTTPListen string
	// HTTPMaxRequestSize is the largest injection request, in octets. The
	// default value is httpin's (32 MiB).
	HTTPMaxRequestSize int64
	// HTTPMaxRecipients is the most recipients of one injection request.
	// The default value is httpin's (1000).
	HTTPMaxRecipients int
	// FBLAddresses are the feedback-loop addresses registered with the
	// providers, whose MX is the bounce listener: complaints sent there
	// about re-enveloped mail suppress the complainer's address. They need
	// a BounceListen. The default value is none.
	FBLAddresses []string
	// Postmaster is the operator's address that receives the mail sent to
	// postmaster of the bounce listener's domains. The default value is
	// "": such mail is accepted and recorded as an event only.
	Postmaster string
	// DNSCheckInterval is how often every tenant's sender domains are
	// checked (core/dnscheck); the first check runs 10 minutes after start,
	// or after the interval when that is shorter. A negative value turns
	// the check off. The default value is 24h.
	DNSCheckInterval time.Duration
	// VERPKeyFile holds the key that signs VERP addresses (hex). The
	// default value is SpoolDir/verp.key, made on first start.
	VERPKeyFile string
	// Redis is the Redis server, host:port, through which several nodes
	// share their rate limits, connection counts, warm-up counts,
	// suspensions and suppression list (see core/cluster). The default
	// value is "": the node shares nothing.
	Redis string
	// RedisPassword authenticates to Redis. The default value is none.
	RedisPassword string
	// RedisTLS talks to Redis over TLS, checking its certificate against
	// RedisCA, a PEM file, or the system's roots when RedisCA is empty. The
	// default value is false.
	RedisTLS bool
	RedisCA  string
	// NodeID names the node in the cluster; nodes sharing a Redis need
	// different ones. The default value, with Redis, is Hostname/Listen.
	NodeID string
	// Logger logs the node's life. The default value is slog.Default().
	Logger *slog.Logger
}

// DefaultListen is the default SMTP submission address.
const DefaultListen = "127.0.0.1:2525"

// EnsureDefaults fills the zero fields of c with their documented default
// values. The defaults of limits that belong to ingest, the queue, the Lua
// runtime and the resolver are theirs, read from their own EnsureDefaults,
// so that the effective configuration shows the values in force.
func (c *Config) EnsureDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.SpoolDir != "" && c.EventLog == "" {
		c.EventLog = filepath.Join(c.SpoolDir, "events.jsonl")
	}
	if c.SpoolDir != "" && c.VERPKeyFile == "" {
		c.VERPKeyFile = filepath.Join(c.SpoolDir, "verp.key")
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
		if c.Hostname == "" {
			c.Hostname = "localhost"
		}
	}
	if len(c.DNSServers) == 0 {
		d := dns.Options{}
		d.EnsureDefaults()
		c.DNSServers = d.Servers
	}
	if c.MTASTSPort == 0 {
		c.MTASTSPort = 443
	}
	if c.MXPort == 0 {
		c.MXPort = 25
	}
	if c.EventLogKeep == 0 {
		c.EventLogKeep = 5
	}
	if c.Plugins == nil {
		c.Plugins = plugin.IDs()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Redis != "" && c.NodeID == "" {
		c.NodeID = c.Hostname + "/" + c.Listen
	}

	lua := luart.Options{}
	lua.EnsureDefaults()
	setDefault(&c.ScriptsDir, lua.ScriptsDir)
	setDefault(&c.RulesDir, lua.RulesDir)
	setDefault(&c.LuaCallMemory, lua.CallMemory)
	setDefault(&c.LuaStateMemory, lua.StateMemory)

	in := ingest.Options{}
	in.EnsureDefaults()
	setDefault(&c.DataMemory, in.DataMemory)
	setDefault(&c.MaxSize, in.MaxSize)
	setDefault(&c.MaxRecipients, in.MaxRecipients)
	setDefault(&c.MaxLineLength, in.MaxLineLength)
	setDefault(&c.MaxSessions, in.MaxSessions)
	setDefault(&c.MaxSessionsPerIP, in.MaxSessionsPerIP)
	setDefault(&c.ConnRatePerIP, in.ConnRatePerIP)
	setDefault(&c.IdleTimeout, in.IdleTimeout)
	setDefault(&c.FirstCommandTimeout, in.FirstCommandTimeout)
	setDefault(&c.DataTimeout, in.DataTimeout)

	q := queue.Options{}
	q.EnsureDefaults()
	setDefault(&c.MaxOutbound, q.MaxConnections)
	setDefault(&c.MaxAge, q.MaxAge)
	if len(c.Retry) == 0 {
		// A copy: the default is a package variable.
		c.Retry = slices.Clone(q.Retry)
	}
}

// setDefault sets *field to def when it is zero.
func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// Validate reports the first setting of c that cannot work, naming it.
// Call it after EnsureDefaults: a zero limit is not valid, a default one
// is.
func (c *Config) Validate() error {
	if c.SpoolDir == "" {
		return errors.New("node: SpoolDir: no spool directory")
	}
	if err := checkAddr("Listen", c.Listen); err != nil {
		return err
	}
	for _, l := range []struct{ name, addr string }{{"AdminListen", c.AdminListen}, {"BounceListen", c.BounceListen}, {"MetricsListen", c.MetricsListen}, {"HTTPListen", c.HTTPListen}} {
		if l.addr == "" {
			continue
		}
		if err := checkAddr(l.name, l.addr); err != nil {
			return err
		}
	}
	if len(c.FBLAddresses) > 0 && c.BounceListen == "" {
		return errors.New("node: FBLAddresses need a BounceListen: feedback reports arrive at the bounce listener")
	}
	if c.Postmaster != "" && (c.BounceListen == "" || !strings.Contains(c.Postmaster, "@")) {
		return fmt.Errorf("node: Postmaster %q: want an address, and a BounceListen that receives the mail for postmaster", c.Postmaster)
	}
	for _, s := range c.DNSServers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("node: DNSServers: %q is not host:port: %w", s, err)
		}
	}
	if c.MTASTSPort < 1 || c.MTASTSPort > 65535 {
		return fmt.Errorf("node: MTASTSPort %d: not a TCP port", c.MTASTSPort)
	}
	if c.MXPort < 1 || c.MXPort > 65535 {
		return fmt.Errorf("node: MXPort %d: not a TCP port", c.MXPort)
	}
	for _, s := range c.Sources {
		if _, err := netip.ParseAddr(s.IP); err != nil {
			return fmt.Errorf("node: Sources: %w", err)
		}
	}
	for _, p := range c.RelayNets {
		if !p.IsValid() {
			return fmt.Errorf("node: RelayNets: %v is not a network", p)
		}
	}
	if c.Redis != "" {
		if err := checkAddr("Redis", c.Redis); err != nil {
			return err
		}
	}
	if c.RedisCA != "" && !c.RedisTLS {
		return errors.New("node: RedisCA is set but RedisTLS is not: the CA checks the certificate of a TLS connection")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("node: TLSCert %q and TLSKey %q: STARTTLS needs both", c.TLSCert, c.TLSKey)
	}
	for _, l := range []struct {
		name  string
		value int64
	}{
		{"MaxSize", c.MaxSize}, {"MaxRecipients", int64(c.MaxRecipients)}, {"MaxLineLength", int64(c.MaxLineLength)}, {"MaxSessions", int64(c.MaxSessions)},
		{"EventLogKeep", int64(c.EventLogKeep)},
		{"MaxOutbound", int64(c.MaxOutbound)}, {"DataMemory", c.DataMemory},
		{"LuaCallMemory", c.LuaCallMemory}, {"LuaStateMemory", c.LuaStateMemory},
	} {
		if l.value <= 0 {
			return fmt.Errorf("node: %s %d: want a positive number", l.name, l.value)
		}
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"IdleTimeout", c.IdleTimeout}, {"FirstCommandTimeout", c.FirstCommandTimeout},
		{"DataTimeout", c.DataTimeout}, {"MaxAge", c.MaxAge},
	} {
		if d.value <= 0 {
			return fmt.Errorf("node: %s %v: want a positive duration", d.name, d.value)
		}
	}
	for _, d := range c.Retry {
		if d <= 0 {
			return fmt.Errorf("node: Retry %v: each step must be a positive duration", c.Retry)
		}
	}
	registered := plugin.IDs()
	for _, id := range c.Plugins {
		if !slices.Contains(registered, id) {
			return fmt.Errorf("node: Plugins: %q is not registered (registered: %v)", id, registered)
		}
	}
	for id := range c.PluginConfig {
		if !slices.Contains(c.Plugins, id) {
			return fmt.Errorf("node: PluginConfig: plugin %q is not enabled (enabled: %v)", id, c.Plugins)
		}
	}
	return nil
}

// checkAddr reports whether addr, the setting name, is a host:port a
// listener can take.
func checkAddr(name, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("node: %s %q: want host:port such as 127.0.0.1:2525: %w", name, addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("node: %s %q: %w", name, addr, err)
	}
	return nil
}
