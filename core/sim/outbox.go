package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	mdns "github.com/miekg/dns"

	"corriere/core/address"
)

// Bounds and timing of asynchronous mail.
const (
	maxPending   = 1000
	maxAttempts  = 3
	retryDelay   = 2 * time.Second
	sendTimeout  = 10 * time.Second
	lookupTimout = 2 * time.Second
)

// outKind says what an asynchronous message is, for counting.
type outKind int

const (
	outBounce outKind = iota
	outComplaint
)

// String names k in logs.
func (k outKind) String() string {
	if k == outBounce {
		return "bounce"
	}
	return "complaint"
}

// outMail is one asynchronous message waiting to be sent.
type outMail struct {
	due      time.Time // wall clock
	kind     outKind
	p        *provider
	from, to string // envelope
	ref      string
	data     string
	attempts int
}

// errPermanent marks failures that retrying cannot fix.
var errPermanent = errors.New("permanent failure")

func (p *provider) outIPString() string {
	if p.outIP == nil {
		return "127.0.0.1"
	}
	return p.outIP.String()
}

// scheduleBounce queues the bounce of o, unless asynchronous mail is off
// or the message had the null sender (bounces are never bounced).
func (s *Sim) scheduleBounce(o original) {
	if s.outbox == nil || o.from == "" {
		return
	}
	a := o.provider.cfg.AsyncBounce
	diag := o.provider.replies.render(kindUnknownUser, replyVars{ip: o.ip, host: o.mxHost, from: o.from, rcpt: o.rcpt})
	if a.Reply != "" {
		diag, _ = parseReply(a.Reply) // validated with the world
	}
	format := a.Format
	if format == "" {
		format = "dsn"
	}
	s.outbox.add(&outMail{
		due: time.Now().Add(time.Duration(a.Delay)), kind: outBounce, p: o.provider,
		to: o.from, ref: o.ref, data: bounceFormats[format](o, diag, s.opts.Now()),
	})
}

// scheduleComplaint queues an abuse report about o.
func (s *Sim) scheduleComplaint(o original) {
	if s.outbox == nil {
		return
	}
	c := o.provider.cfg.Complaints
	from := c.From
	if from == "" {
		from = "feedback@" + o.provider.cfg.Domains[0].Name
	}
	s.outbox.add(&outMail{
		due: time.Now().Add(time.Duration(c.Delay)), kind: outComplaint, p: o.provider,
		from: from, to: c.To, ref: o.ref, data: arfReport(o, from, c.To, s.opts.Now()),
	})
}

// outbox sends asynchronous mail in order of due time, one message at a
// time, as the foreign MTAs of the providers.
type outbox struct {
	sim   *Sim
	mu    sync.Mutex
	queue []*outMail // by due time
	wake  chan struct{}
}

func newOutbox(s *Sim) *outbox {
	return &outbox{sim: s, wake: make(chan struct{}, 1)}
}

func (o *outbox) add(m *outMail) {
	o.mu.Lock()
	if len(o.queue) >= maxPending {
		o.mu.Unlock()
		o.sim.opts.Logger.Warn("async mail dropped: too many pending", "provider", m.p.cfg.Name, "kind", m.kind, "to", m.to, "ref", m.ref)
		return
	}
	i := sort.Search(len(o.queue), func(i int) bool { return o.queue[i].due.After(m.due) })
	o.queue = slices.Insert(o.queue, i, m)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// next pops the first due message, or says how long to wait for it.
func (o *outbox) next() (*outMail, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) == 0 {
		return nil, time.Hour
	}
	if wait := time.Until(o.queue[0].due); wait > 0 {
		return nil, wait
	}
	m := o.queue[0]
	o.queue = o.queue[1:]
	return m, 0
}

func (o *outbox) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m, wait := o.next()
		if m != nil {
			o.deliver(ctx, m)
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-timer.C:
		}
	}
}

func (o *outbox) deliver(ctx context.Context, m *outMail) {
	log := o.sim.opts.Logger.With("provider", m.p.cfg.Name, "kind", m.kind, "to", m.to, "ref", m.ref)
	err := o.send(ctx, m)
	switch {
	case err == nil:
		m.p.countSent(m.kind)
		log.Info("async mail sent")
	case ctx.Err() != nil:
	case errors.Is(err, errPermanent) || m.attempts+1 >= maxAttempts:
		log.Warn("async mail given up", "attempts", m.attempts+1, "err", err)
	default:
		m.attempts++
		m.due = time.Now().Add(retryDelay)
		log.Debug("async mail deferred", "attempts", m.attempts, "err", err)
		o.add(m)
	}
}

// send delivers m to the MX hosts of its recipient's domain, in preference
// order, on the return port.
func (o *outbox) send(ctx context.Context, m *outMail) error {
	ips, err := o.sim.lookupMX(ctx, address.Domain(m.to))
	if err != nil {
		return err
	}
	var errs []error
	for _, ip := range ips {
		err := o.sendTo(ctx, m, ip)
		if err == nil {
			return nil
		}
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			return fmt.Errorf("%w: %s: %w", errPermanent, ip, err)
		}
		errs = append(errs, fmt.Errorf("%s: %w", ip, err))
	}
	return errors.Join(errs...)
}

func (o *outbox) sendTo(ctx context.Context, m *outMail, ip string) error {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	d := net.Dialer{}
	if m.p.outIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: m.p.outIP}
	}
	conn, err := d.DialContext(ctx, "tcp4", net.JoinHostPort(ip, strconv.Itoa(o.sim.opts.ReturnPort)))
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello(m.p.outHost); err != nil {
		return err
	}
	if err := c.Mail(m.from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(m.to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(m.data)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// lookupMX resolves domain's mail exchangers to addresses through the
// simulator's own DNS, in preference order, with the implicit MX of RFC
// 5321 section 5.1 when there is none.
func (s *Sim) lookupMX(ctx context.Context, domain string) ([]string, error) {
	if domain == "" {
		return nil, fmt.Errorf("%w: no domain", errPermanent)
	}
	ans, err := s.query(ctx, domain, mdns.TypeMX)
	if err != nil {
		return nil, err
	}
	var mxs []*mdns.MX
	for _, rr := range ans {
		if mx, ok := rr.(*mdns.MX); ok {
			mxs = append(mxs, mx)
		}
	}
	if len(mxs) == 1 && mxs[0].Mx == "." {
		return nil, fmt.Errorf("%w: %s has a null MX", errPermanent, domain)
	}
	sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Preference < mxs[j].Preference })
	hosts := []string{domain}
	if len(mxs) > 0 {
		hosts = hosts[:0]
		for _, mx := range mxs {
			hosts = append(hosts, mx.Mx)
		}
	}
	var ips []string
	for _, h := range hosts {
		ans, err := s.query(ctx, h, mdns.TypeA)
		if err != nil && !errors.Is(err, errPermanent) {
			return nil, err
		}
		for _, rr := range ans {
			if a, ok := rr.(*mdns.A); ok {
				ips = append(ips, a.A.String())
			}
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%w: no address for the MX of %s", errPermanent, domain)
	}
	return ips, nil
}

func (s *Sim) query(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error) {
	q := new(mdns.Msg)
	q.SetQuestion(mdns.Fqdn(strings.ToLower(name)), qtype)
	c := &mdns.Client{Net: "udp", Timeout: lookupTimout}
	r, _, err := c.ExchangeContext(ctx, q, s.dns.Addr)
	if err != nil {
		return nil, fmt.Errorf("dns %s %s: %w", name, mdns.TypeToString[qtype], err)
	}
	switch r.Rcode {
	case mdns.RcodeSuccess:
		return r.Answer, nil
	case mdns.RcodeNameError:
		return nil, fmt.Errorf("%w: %s does not exist", errPermanent, name)
	default:
		return nil, fmt.Errorf("dns %s %s: %s", name, mdns.TypeToString[qtype], mdns.RcodeToString[r.Rcode])
	}
}
