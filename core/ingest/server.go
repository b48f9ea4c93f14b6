package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"corriere/core/event"
	"corriere/core/extension"
	"corriere/core/netlimit"
	"corriere/core/policy"
	"corriere/core/smtpserve"
	"corriere/core/spool"
	"corriere/core/tenant"
)

// Enqueuer receives spooled messages; *queue.Queue implements it.
type Enqueuer interface {
	Add(meta *spool.Meta, entries []*spool.Entry)
}

// DefaultMaxLineLength is the default of Options.MaxLineLength.
const DefaultMaxLineLength = 64 << 10

// Options configure a Server.
type Options struct {
	// Hostname is announced in the greeting and in Received fields. The
	// default value is os.Hostname().
	Hostname string
	// MaxSize is the largest message accepted, in octets. The default value
	// is 50 MiB.
	MaxSize int64
	// MaxRecipients caps RCPT TO per message. The default value is 1000.
	MaxRecipients int
	// MaxLineLength is the longest line accepted, in octets without the
	// CRLF, in commands and in message data. RFC 5321 asks for 1,000, but
	// newsletters with one-line HTML have far longer lines and Postfix
	// accepts them; a longer line ends the session with 554 5.6.0. The
	// default value is 64 KiB.
	MaxLineLength int
	// MaxSessions caps concurrent sessions; more are answered 421. The
	// default value is 1000.
	MaxSessions int
	// MaxSessionsPerIP caps the concurrent sessions of one client (an IPv4
	// address or an IPv6 /64), relay networks and loopback included; more
	// are answered 421 4.7.0. The default value is 100; a negative value
	// removes the cap.
	MaxSessionsPerIP int
	// ConnRatePerIP is how many connections per second one client may open
	// on average, with twice as many at once; more are answered 421 4.7.0.
	// The default value is 100; a negative value removes the limit.
	ConnRatePerIP float64
	// IdleTimeout closes a session silent for this long, and ends a DATA
	// transfer that sends nothing for this long. The default value is 5
	// minutes (RFC 5321 section 4.5.3.2).
	IdleTimeout time.Duration
	// FirstCommandTimeout closes a session that sends no command line for
	// this long after connecting, so that silent connections free their
	// place early. The default value is 30 seconds.
	FirstCommandTimeout time.Duration
	// DataTimeout bounds a whole DATA transfer, however steadily the client
	// sends: a slow client has this long to send MaxSize. The default
	// value is 30 minutes (RFC 5321 section 4.5.3.2 asks for at least 10).
	DataTimeout time.Duration
	// TLS enables STARTTLS. Nil disables it.
	TLS *tls.Config
	// InsecureAuthLoopback allows AUTH without TLS from loopback clients.
	// The default value is false.
	InsecureAuthLoopback bool
	// RelayNets are client networks that may relay without AUTH.
	RelayNets []netip.Prefix
	// Tenants authenticates AUTH users. Required.
	Tenants tenant.Directory
	// Policy classifies and rewrites messages. Required.
	Policy policy.Policy
	// Stages run after Rewrite, in their StageOrder and, for equal
	// orders, in the order given.
	Stages []extension.Stage
	// RecipientChecks run at RCPT TO, in order.
	RecipientChecks []extension.RecipientCheck
	// CheckTimeout bounds the RecipientChecks of one recipient together: a
	// recipient whose checks take longer is answered 451 4.3.0 at once,
	// and the refusal is logged and counted as "recipient_check_timeout".
	// The default value is 5 seconds.
	CheckTimeout time.Duration
	// Spool stores accepted messages. Required.
	Spool *spool.Spool
	// Queue receives them for delivery. Required.
	Queue Enqueuer
	// Events receives received and rejected events. May be nil.
	Events *event.Bus
	// Logger logs refusals and failures. The default value is
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. The default value is time.Now.
	Now func() time.Time
	// PolicyTimeout bounds the policy calls of one message. The default
	// value is 10s.
	PolicyTimeout time.Duration
	// DataMemory caps the bytes of message data held in memory across all
	// sessions. A message above 1 MiB, or one arriving when the cap is
	// reached, is spilled to a file in SpillDir as it arrives and loaded
	// once complete, when its size fits under the cap. The default value
	// is 128 MiB: two messages of the largest default size at once, which
	// with the garbage collector's headroom keeps ingest within a few
	// hundred megabytes however many large messages arrive together.
	DataMemory int64
	// SpillDir holds the files of messages being received. The default
	// value is os.TempDir().
	SpillDir string
	// AuthFailuresPerIP is how many failed AUTH attempts one client (an
	// IPv4 address or an IPv6 /64) makes before it is locked out: AUTH is
	// then answered 454 4.7.0 without checking the password. The default
	// value is 5.
	AuthFailuresPerIP int
	// AuthFailuresPerUser is how many failed AUTH attempts, from any
	// client, lock a user name out. The default value is 10.
	AuthFailuresPerUser int
	// AuthLockout is the first lockout; each further failure doubles it.
	// The default value is 1 second.
	AuthLockout time.Duration
	// AuthMaxLockout caps a lockout; failures quiet for this long are
	// forgotten. The default value is 15 minutes.
	AuthMaxLockout time.Duration
	// AuthConcurrency is how many password checks (bcrypt, about 60 ms of
	// CPU each) run at once; AUTH waits up to 5 seconds for a turn, then
	// is answered 454 4.7.0. The default value is half the CPUs, at least
	// 1, so that guesses cannot take the cores that handle messages.
	AuthConcurrency int
	// SubmitConcurrency is how many messages of one Submit call are handled
	// at once: their spool writes share fsyncs, so a batch is durable in
	// a few syncs rather than one per message. The default value is 64.
	SubmitConcurrency int
}

// EnsureDefaults fills unset fields with their documented defaults.
func (o *Options) EnsureDefaults() {
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
		if o.Hostname == "" {
			o.Hostname = "localhost"
		}
	}
	if o.MaxSize == 0 {
		o.MaxSize = 50 << 20
	}
	if o.MaxRecipients == 0 {
		o.MaxRecipients = 1000
	}
	if o.MaxLineLength == 0 {
		o.MaxLineLength = DefaultMaxLineLength
	}
	if o.MaxSessions == 0 {
		o.MaxSessions = 1000
	}
	if o.MaxSessionsPerIP == 0 {
		o.MaxSessionsPerIP = 100
	}
	if o.ConnRatePerIP == 0 {
		o.ConnRatePerIP = 100
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.FirstCommandTimeout == 0 {
		o.FirstCommandTimeout = 30 * time.Second
	}
	if o.DataTimeout == 0 {
		o.DataTimeout = 30 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PolicyTimeout == 0 {
		o.PolicyTimeout = 10 * time.Second
	}
	if o.CheckTimeout == 0 {
		o.CheckTimeout = 5 * time.Second
	}
	if o.DataMemory == 0 {
		o.DataMemory = 128 << 20
	}
	if o.SpillDir == "" {
		o.SpillDir = os.TempDir()
	}
	if o.AuthFailuresPerIP == 0 {
		o.AuthFailuresPerIP = 5
	}
	if o.AuthFailuresPerUser == 0 {
		o.AuthFailuresPerUser = 10
	}
	if o.AuthLockout == 0 {
		o.AuthLockout = time.Second
	}
	if o.AuthMaxLockout == 0 {
		o.AuthMaxLockout = 15 * time.Minute
	}
	if o.AuthConcurrency == 0 {
		o.AuthConcurrency = max(1, runtime.NumCPU()/2)
	}
	if o.SubmitConcurrency == 0 {
		o.SubmitConcurrency = 64
	}
}

// Validate reports missing required fields.
func (o *Options) Validate() error {
	switch {
	case o.Tenants == nil:
		return errors.New("ingest: no tenant directory")
	case o.Policy == nil:
		return errors.New("ingest: no policy")
	case o.Spool == nil:
		return errors.New("ingest: no spool")
	case o.Queue == nil:
		return errors.New("ingest: no queue")
	}
	return nil
}

// Server is the submission server.
type Server struct {
	opts Options
	log  *slog.Logger
	// run serves the sessions; its Work gate admits transactions, from
	// MAIL to the end of DATA.
	run *smtpserve.Runner

	authCache authCache
	// dataMem is the budget of message data held in memory.
	dataMem   *dataBudget
	authGuard *authGuard
	passwords *passwordChecker

	// Counters of refusals by reason, for metrics and tests.
	rejects sync.Map // string → *atomic.Int64
}

// New returns a server; it accepts nothing until Serve.
func New(opts Options) (*Server, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.Stages = append([]extension.Stage(nil), opts.Stages...)
	sortStages(opts.Stages)
	s := &Server{opts: opts, log: opts.Logger, dataMem: newDataBudget(opts.DataMemory), authGuard: newAuthGuard(&opts),
		passwords: newPasswordChecker(opts.AuthConcurrency, authWait)}
	srv := smtp.NewServer(s)
	srv.Domain = opts.Hostname
	srv.MaxMessageBytes = opts.MaxSize
	srv.MaxRecipients = opts.MaxRecipients
	// go-smtp counts a line's CRLF in its limit, and the line feed that
	// ended the line before it.
	srv.MaxLineLength = opts.MaxLineLength + 2
	srv.ReadTimeout = opts.IdleTimeout
	srv.WriteTimeout = opts.IdleTimeout
	srv.TLSConfig = opts.TLS
	// AUTH availability is decided per session in AuthMechanisms.
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = true
	srv.EnableDSN = true
	srv.ErrorLog = smtpserve.Log{Logger: opts.Logger.With("component", "ingest"), Level: slog.LevelWarn}
	s.run = &smtpserve.Runner{
		SMTP: srv, MaxSessions: opts.MaxSessions, FirstCommandTimeout: opts.FirstCommandTimeout,
		OnRefuse: func(reason netlimit.Reason, _ netip.Addr) { s.count(string(reason)) },
		Logger:   opts.Logger.With("component", "ingest"),
	}
	if opts.MaxSessionsPerIP > 0 {
		s.run.MaxSessionsPerIP = opts.MaxSessionsPerIP
	}
	if opts.ConnRatePerIP > 0 {
		s.run.ConnRate, s.run.ConnBurst = opts.ConnRatePerIP, int(2*opts.ConnRatePerIP)
	}
	return s, nil
}

// Serve accepts sessions on l until Shutdown.
func (s *Server) Serve(l net.Listener) error { return s.run.Serve(l) }

// Shutdown stops accepting sessions and new transactions, waits until
// in-flight transactions have finished (or ctx ends), then closes every
// session; a message being handled still ends, within the policy timeout
// and one fsync, before it returns.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.run.Shutdown(ctx); err != nil {
		return fmt.Errorf("ingest: shutdown: %w", err)
	}
	return nil
}

// Rejections returns how many refusals of each reason the server made.
func (s *Server) Rejections() map[string]int64 {
	out := map[string]int64{}
	s.rejects.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

func (s *Server) count(reason string) {
	v, _ := s.rejects.LoadOrStore(reason, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ip := netip.Addr{}
	if ta, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
		ip = ip.Unmap()
	}
	sess := &session{s: s, conn: c, ip: ip, client: netlimit.ClientKey(ip)}
	sess.sconn, _ = c.Conn().(*smtpserve.Conn)
	for _, p := range s.opts.RelayNets {
		if p.Contains(ip) {
			sess.relayNet = true
			break
		}
	}
	return sess, nil
}

// sortStages orders stages by their StageOrder, keeping the given order
// for equal orders.
func sortStages(stages []extension.Stage) {
	order := func(s extension.Stage) int {
		if o, ok := s.(extension.StageOrderer); ok {
			return o.StageOrder()
		}
		return 0
	}
	sort.SliceStable(stages, func(i, j int) bool { return order(stages[i]) < order(stages[j]) })
}
