package sim

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"corriere/core/reply"
)

// Memory bounds of a provider's state.
const (
	maxHeaderBytes   = 64 << 10
	maxGreylistCount = 100000
)

// provider is the run-time state of one simulated provider, shared by all of
// its MX hosts.
type provider struct {
	sim     *Sim
	cfg     *Provider
	replies replies
	blocked map[string]bool
	// outIP and outHost are the address and name the provider sends
	// bounces and reports from: its first live MX host.
	outIP   net.IP
	outHost string

	mu     sync.Mutex
	open   map[string]int         // source address → open connections
	sent   map[string][]time.Time // source address → MAIL times in the last minute
	grey   map[string]time.Time   // triplet → first attempt
	rng    *rand.Rand
	serial int
	stats  ProviderStats
}

func newProvider(s *Sim, cfg *Provider, index int) (*provider, error) {
	rs, err := newReplies(cfg)
	if err != nil {
		return nil, err
	}
	h := fnv.New64a()
	h.Write([]byte(cfg.Name))
	p := &provider{
		sim:     s,
		cfg:     cfg,
		replies: rs,
		blocked: map[string]bool{},
		open:    map[string]int{},
		sent:    map[string][]time.Time{},
		grey:    map[string]time.Time{},
		rng:     rand.New(rand.NewPCG(uint64(s.opts.Seed), h.Sum64()+uint64(index))),
		stats: ProviderStats{
			PeakConnectionsPerIP: map[string]int{},
			Rejected:             map[string]int{},
		},
	}
	if b := cfg.Blocklist; b != nil {
		for _, ip := range b.IPs {
			p.blocked[netip.MustParseAddr(ip).String()] = true
		}
	}
	return p, nil
}

func (p *provider) blocklist(at string) (list string, ok bool) {
	b := p.cfg.Blocklist
	if b == nil {
		return "", false
	}
	when := b.At
	if when == "" {
		when = "connect"
	}
	list = b.List
	if list == "" {
		list = "zen.spamhaus.org"
	}
	return list, when == at
}

// admit decides whether a new connection from ip is served, and counts it.
// A refusal is the reply to send instead of the greeting.
func (p *provider) admit(ip string, host string) *reply.Reply {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Connections++
	if list, at := p.blocklist("connect"); at && p.blocked[ip] {
		p.stats.Rejected[ReasonBlocked]++
		return p.replies.render(kindBlocked, replyVars{ip: ip, host: host, list: list})
	}
	if max := p.cfg.MaxConnectionsPerIP; max > 0 && p.open[ip] >= max {
		p.stats.Rejected[ReasonConnectionLimit]++
		return p.replies.render(kindTooManyConnections, replyVars{ip: ip, host: host})
	}
	p.open[ip]++
	if p.open[ip] > p.stats.PeakConnectionsPerIP[ip] {
		p.stats.PeakConnectionsPerIP[ip] = p.open[ip]
	}
	return nil
}

func (p *provider) release(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open[ip]--
	if p.open[ip] <= 0 {
		delete(p.open, ip)
	}
}

// allowMail applies the per-address rate limit to a new MAIL transaction.
func (p *provider) allowMail(ip string) bool {
	limit := p.cfg.MessagesPerMinutePerIP
	if limit == 0 {
		return true
	}
	now := p.sim.opts.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	times := p.sent[ip]
	for len(times) > 0 && now.Sub(times[0]) >= time.Minute {
		times = times[1:]
	}
	if len(times) >= limit {
		p.sent[ip] = times
		p.stats.RateLimited++
		return false
	}
	p.sent[ip] = append(times, now)
	return true
}

// greylisted reports whether the triplet must still wait, recording its
// first attempt.
func (p *provider) greylisted(from, rcpt, ip string) bool {
	g := p.cfg.Greylist
	if g == nil {
		return false
	}
	source := ip
	if g.By != "ip" {
		if a, err := netip.ParseAddr(ip); err == nil && a.Is4() {
			source = netip.PrefixFrom(a, 24).Masked().String()
		}
	}
	key := strings.ToLower(from) + "\x00" + strings.ToLower(rcpt) + "\x00" + source
	now := p.sim.opts.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	first, seen := p.grey[key]
	if !seen {
		if len(p.grey) >= maxGreylistCount {
			clear(p.grey)
		}
		p.grey[key] = now
	}
	if !seen || now.Sub(first) < time.Duration(g.Delay) {
		p.stats.Greylisted++
		return true
	}
	return false
}

func (p *provider) reject(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Rejected[reason]++
}

// accept counts an accepted recipient and draws whether it complains.
func (p *provider) accept() (complains bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Accepted++
	c := p.cfg.Complaints
	return c != nil && c.Rate > 0 && p.rng.Float64() < c.Rate
}

func (p *provider) nextID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serial++
	return fmt.Sprintf("%s%06d", strings.ToUpper(p.cfg.Name[:min(3, len(p.cfg.Name))]), p.serial)
}

// countSent counts asynchronous mail delivered to the return port.
func (p *provider) countSent(kind outKind) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch kind {
	case outBounce:
		p.stats.AsyncBounces++
	case outComplaint:
		p.stats.Complaints++
	}
}

// listener refuses connections that the provider turns away at greeting
// and hands the others, tracked, to go-smtp.
type listener struct {
	net.Listener
	sim  *Sim
	host host
}

// Accept returns the next admitted connection.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := peerIP(c)
		p := l.host.p
		if r := p.admit(ip, l.host.name); r != nil {
			l.sim.opts.Logger.Info("refused", "provider", p.cfg.Name, "mx", l.host.name, "ip", ip, "stage", "connect", "reply", r.String())
			l.sim.wg.Go(func() { refuse(c, r) })
			continue
		}
		tc := &trackedConn{Conn: c, p: p, ip: ip, tarpit: time.Duration(p.cfg.Tarpit), done: l.sim.ctx.Done()}
		tc.readSinceWrite.Store(true) // the greeting is a reply too
		return tc, nil
	}
}

// refuse answers a connection with r instead of a greeting and closes it.
func refuse(c net.Conn, r *reply.Reply) {
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, r.String()+"\r\n") // a client that went away needs no answer
}

func peerIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	return host
}

// trackedConn is a served connection: it releases its slot in the
// provider's connection count on Close, delays each reply in a tarpit, and
// ends the session after a 421 by reporting end of input to go-smtp.
type trackedConn struct {
	net.Conn
	p      *provider
	ip     string
	tarpit time.Duration
	done   <-chan struct{}

	readSinceWrite atomic.Bool
	hangup         atomic.Bool
	closeOnce      sync.Once
}

// Read reads from the client, or reports end of input after a 421.
func (c *trackedConn) Read(b []byte) (int, error) {
	if c.hangup.Load() {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.readSinceWrite.Store(true)
	}
	return n, err
}

// Write writes to the client; in a tarpit the first write of each reply
// (the first write since the client last sent something) waits first.
func (c *trackedConn) Write(b []byte) (int, error) {
	if c.tarpit > 0 && c.readSinceWrite.Swap(false) {
		t := time.NewTimer(c.tarpit)
		select {
		case <-t.C:
		case <-c.done:
			t.Stop()
		}
	}
	return c.Conn.Write(b)
}

// Close closes the connection and frees its slot.
func (c *trackedConn) Close() error {
	c.closeOnce.Do(func() { c.p.release(c.ip) })
	return c.Conn.Close()
}

// session is one SMTP session on a simulated MX.
type session struct {
	p     *provider
	host  string
	ip    string
	conn  *smtp.Conn
	raw   *trackedConn
	from  string
	rcpts []string
}

func newSession(h host, c *smtp.Conn) *session {
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	raw, _ := nc.(*trackedConn) // every connection comes from listener.Accept
	s := &session{p: h.p, host: h.name, conn: c, raw: raw}
	if raw != nil {
		s.ip = raw.ip
	}
	return s
}

func (s *session) vars(rcpt string) replyVars {
	list, _ := s.p.blocklist("")
	return replyVars{ip: s.ip, host: s.host, from: s.from, rcpt: rcpt, list: list}
}

// refuse logs a refusal and turns r into the session's answer; a 421 also
// ends the session, as RFC 5321 section 3.8 has servers do.
func (s *session) refuse(stage, rcpt string, r *reply.Reply) error {
	s.p.sim.opts.Logger.Info("refused", "provider", s.p.cfg.Name, "mx", s.host, "ip", s.ip, "stage", stage,
		"from", s.from, "rcpt", rcpt, "reply", r.String())
	if r.Code == 421 && s.raw != nil {
		s.raw.hangup.Store(true)
	}
	return smtpError(r)
}

// Reset discards the current transaction.
func (s *session) Reset() {
	s.from = ""
	s.rcpts = nil
}

// Logout ends the session.
func (s *session) Logout() error { return nil }

// Mail starts a transaction, subject to the rate limit.
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	s.rcpts = nil
	if !s.p.allowMail(s.ip) {
		return s.refuse("mail", "", s.p.replies.render(kindRateLimited, s.vars("")))
	}
	return nil
}

// Rcpt adds a recipient unless the provider refuses it.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	rules := s.p.cfg.Recipients
	var reason string
	var kind replyKind
	switch {
	case s.isBlockedAtRcpt():
		reason, kind = ReasonBlocked, kindBlocked
	case localHasPrefix(to, rules.UnknownPrefix):
		reason, kind = ReasonUnknownUser, kindUnknownUser
	case localHasPrefix(to, rules.FullPrefix):
		reason, kind = ReasonMailboxFull, kindMailboxFull
	case localHasPrefix(to, rules.SpamPrefix):
		reason, kind = ReasonSpam, kindSpam
	case s.p.greylisted(s.from, to, s.ip):
		return s.refuse("rcpt", to, s.p.replies.render(kindGreylisted, s.vars(to)))
	default:
		s.rcpts = append(s.rcpts, to)
		return nil
	}
	s.p.reject(reason)
	return s.refuse("rcpt", to, s.p.replies.render(kind, s.vars(to)))
}

func (s *session) isBlockedAtRcpt() bool {
	_, at := s.p.blocklist("rcpt")
	return at && s.p.blocked[s.ip]
}

// Data receives the message, refuses it if it carries the spam marker, and
// otherwise records one delivery per recipient and schedules the bounces
// and complaints the provider will send later.
func (s *session) Data(r io.Reader) error {
	msg, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if m := s.p.cfg.SpamMarker; m != "" && bytes.Contains(msg, []byte(m)) {
		s.p.reject(ReasonSpam)
		return s.refuse("data", strings.Join(s.rcpts, ","), s.p.replies.render(kindSpam, s.vars(strings.Join(s.rcpts, ","))))
	}
	header, bodySize := splitMessage(msg)
	fields := readHeader(header)
	id := s.p.nextID()
	_, usedTLS := s.conn.TLSConnectionState()
	now := s.p.sim.opts.Now()
	for i, rcpt := range s.rcpts {
		complains := s.p.accept()
		s.p.sim.record(Delivery{
			Provider: s.p.cfg.Name, MXHost: s.host, Recipient: rcpt, From: s.from, SourceIP: s.ip,
			TLS: usedTLS, MessageID: fields.Get("Message-Id"), Header: header, BodySize: bodySize, Time: now,
		})
		orig := original{
			provider: s.p, mxHost: s.host, from: s.from, rcpt: rcpt, ip: s.ip, arrival: now,
			header: header, subject: fields.Get("Subject"), queueID: id,
			ref: fmt.Sprintf("%s.%d", id, i),
		}
		if a := s.p.cfg.AsyncBounce; a != nil && localHasPrefix(rcpt, a.Prefix) {
			s.p.sim.scheduleBounce(orig)
		} else if complains {
			s.p.sim.scheduleComplaint(orig)
		}
	}
	s.p.sim.opts.Logger.Info("accepted", "provider", s.p.cfg.Name, "mx", s.host, "ip", s.ip, "tls", usedTLS,
		"from", s.from, "rcpts", strings.Join(s.rcpts, ","), "message_id", fields.Get("Message-Id"), "queue_id", id)
	v := s.vars("")
	v.id = id
	return smtpError(s.p.replies.render(kindAccepted, v))
}

// localHasPrefix reports whether the local part of addr starts with prefix,
// ignoring case; an empty prefix matches nothing.
func localHasPrefix(addr, prefix string) bool {
	local, _, _ := strings.Cut(addr, "@")
	return prefix != "" && strings.HasPrefix(strings.ToLower(local), strings.ToLower(prefix))
}

// splitMessage returns the header (ending with the CRLF of its last field,
// at most maxHeaderBytes) and the size of the body.
func splitMessage(msg []byte) (header []byte, bodySize int) {
	end, sep := bytes.Index(msg, []byte("\r\n\r\n")), 4
	if end < 0 {
		end, sep = bytes.Index(msg, []byte("\n\n")), 2
	}
	if end < 0 {
		end, sep = len(msg), 0
	}
	hdrLen := end + sep/2
	header = bytes.Clone(msg[:min(hdrLen, maxHeaderBytes)])
	return header, len(msg) - min(end+sep, len(msg))
}

// readHeader parses header fields leniently: a malformed header yields the
// fields before the problem.
func readHeader(header []byte) textproto.Header {
	h, _ := textproto.ReadHeader(bufio.NewReader(io.MultiReader(bytes.NewReader(header), strings.NewReader("\r\n"))))
	return h
}
