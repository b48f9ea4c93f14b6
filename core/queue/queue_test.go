package queue_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"

	"corriere/core/clock"
	"corriere/core/deliver"
	"corriere/core/dns"
	"corriere/core/dns/authserver"
	"corriere/core/event"
	"corriere/core/event/eventtest"
	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/smtpclient"
	"corriere/core/spool"
	"corriere/core/testlib"
	"corriere/core/warmup"
)

// world is a small internet on loopback: a DNS server, MX receivers on
// 127.0.0.x sharing one port, a spool and a running queue.
type world struct {
	t      testing.TB
	dns    *authserver.Server
	port   int
	res    *dns.Resolver
	dir    string
	spool  *spool.Spool
	q      *queue.Queue
	opts   queue.Options
	bus    *event.Bus
	events *eventtest.Recorder
	// warmupClock, when set, gives the warm-up tracker (re)opened with the
	// spool its clock.
	warmupClock func() time.Time
}

// mxIPs are the addresses the test MX hosts listen on.
var mxIPs = []string{"127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24", "127.0.0.31", "127.0.0.32"}

func newWorld(t testing.TB, pol policy.Policy, tune func(*queue.Options)) *world {
	t.Helper()
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	w := &world{t: t, dns: ds, port: mailtest.FreePort(t, mxIPs...), events: &eventtest.Recorder{}, dir: t.TempDir()}
	sp, err := spool.Open(spool.Options{Dir: w.dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.spool.Close() })
	w.spool = sp
	res, err := dns.New(dns.Options{Servers: []string{ds.Addr}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.res = res
	tr, err := deliver.New(deliver.Options{Resolver: res, Port: w.port, Client: smtpclient.Options{ConnectTimeout: time.Second, CommandTimeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	bus := &event.Bus{}
	bus.Subscribe(w.events)
	w.bus = bus
	if pol == nil {
		pol = &policy.Default{}
	}
	opts := queue.Options{
		Spool: sp, Policy: pol, Resolver: res, Transport: tr, Events: bus,
		Hostname: "mta.test", Retry: []time.Duration{50 * time.Millisecond}, Linger: 100 * time.Millisecond,
	}
	if tune != nil {
		tune(&opts)
	}
	w.opts = opts
	w.startQueue()
	t.Cleanup(w.stopQueue)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("queue status at the failure: %+v", w.q.Status())
		}
	})
	return w
}

func (w *world) startQueue() {
	w.t.Helper()
	if w.warmupClock != nil {
		tr, err := warmup.Open(w.spool, w.warmupClock)
		if err != nil {
			w.t.Fatal(err)
		}
		w.opts.Warmup = tr
	}
	w.opts.Spool = w.spool
	q, err := queue.New(w.opts)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, _, err := q.Recover(); err != nil {
		w.t.Fatal(err)
	}
	q.Start()
	w.q = q
}

func (w *world) stopQueue() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.q.Stop(ctx)
}

// restart stops the queue, closes and reopens the spool, and starts a new
// queue on it, as a process restart would.
func (w *world) restart() {
	w.t.Helper()
	w.stopQueue()
	if err := w.spool.Close(); err != nil {
		w.t.Fatal(err)
	}
	sp, err := spool.Open(spool.Options{Dir: w.dir})
	if err != nil {
		w.t.Fatal(err)
	}
	w.spool = sp
	w.startQueue()
}

// mx publishes domain's MX hosts: name → ip, in preference order.
func (w *world) mx(domain string, hosts ...string) {
	for i := 0; i+1 < len(hosts); i += 2 {
		w.dns.MustAdd(fmt.Sprintf("%s. 300 IN MX %d %s.", domain, 10*(i/2+1), hosts[i]),
			fmt.Sprintf("%s. 300 IN A %s", hosts[i], hosts[i+1]))
	}
}

func (w *world) receiver(ip string, opts mailtest.Options) *mailtest.Receiver {
	return mailtest.Start(w.t, fmt.Sprintf("%s:%d", ip, w.port), opts)
}

// send spools a message and hands it to the queue, as ingest does.
func (w *world) send(sender string, notify message.Notify, ret message.Ret, rcpts ...string) *spool.Meta {
	w.t.Helper()
	return w.sendAs(message.Transactional, sender, notify, ret, rcpts...)
}

// sendAs spools and queues a message of the given class.
func (w *world) sendAs(class message.Class, sender string, notify message.Notify, ret message.Ret, rcpts ...string) *spool.Meta {
	w.t.Helper()
	raw := "From: <" + sender + ">\r\nTo: undisclosed-recipients:;\r\nSubject: test\r\nMessage-ID: <m" + fmt.Sprint(time.Now().UnixNano()) + "@test>\r\n\r\nHello.\r\n"
	h, body, err := message.Parse([]byte(raw))
	if err != nil {
		w.t.Fatal(err)
	}
	now := w.now()
	m := &message.Message{Header: h, Body: body, Class: class, Tenant: "acme", Received: now}
	m.Sender, m.Ret = sender, ret
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, message.Recipient{Addr: r, Notify: notify, ORCPT: "rfc822;" + r})
	}
	meta, entries, err := w.spool.Put(m, now)
	if err != nil {
		w.t.Fatal(err)
	}
	w.q.Add(meta, entries)
	return meta
}

// now returns the time on the queue's clock.
func (w *world) now() time.Time {
	if w.opts.Clock != nil {
		return w.opts.Clock.Now()
	}
	return time.Now()
}

// waitDone waits until the queue holds nothing.
func (w *world) waitDone(timeout time.Duration) {
	w.t.Helper()
	testlib.WaitForWithin(w.t, timeout, "the queue to empty", func() bool { return w.q.Pending() == 0 })
}

// driveUntilDone advances the fake clock c by step at every poll until the
// queue holds nothing: retries, rate waits, lingering runners and
// suspensions then pass in fake time, in milliseconds of the test's.
func (w *world) driveUntilDone(c *clock.Fake, step time.Duration) {
	w.t.Helper()
	testlib.WaitFor(w.t, "the queue to empty while the fake clock runs", func() bool {
		if w.q.Pending() == 0 {
			return true
		}
		c.Advance(step)
		return false
	})
}

// dsnFields parses a DSN and returns its delivery-status part.
func dsnFields(t *testing.T, raw []byte) string {
	t.Helper()
	e, err := gomessage.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("DSN does not parse: %v", err)
	}
	if ct, params, _ := e.Header.ContentType(); ct != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("DSN content type %s %v", ct, params)
	}
	mr := e.MultipartReader()
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no delivery-status part: %v", err)
		}
		if ct, _, _ := p.Header.ContentType(); ct == "message/delivery-status" {
			var b bytes.Buffer
			b.ReadFrom(p.Body)
			return b.String()
		}
	}
}

func TestDeliverAccepted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	w.mx("a.test", "mx.a.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{})
	w.send("s@s.test", 0, "", "x@a.test", "y@a.test", "z@a.test")
	w.waitDone(5 * time.Second)
	msgs := rx.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 3 {
		t.Fatalf("want one transaction with three recipients, got %d messages: %+v", len(msgs), msgs)
	}
	if !bytes.Contains(msgs[0].Data, []byte("Subject: test")) {
		t.Errorf("content not delivered: %q", msgs[0].Data)
	}
	if w.events.Count(event.Delivered, "") != 3 {
		t.Errorf("delivered events = %d, want 3", w.events.Count(event.Delivered, ""))
	}
	if w.spool.Messages() != 0 {
		t.Errorf("spool still holds %d messages", w.spool.Messages())
	}
}

func TestTempfailThenAccept(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	w.mx("grey.test", "mx.grey.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(rcpt string, n int) error {
		if n == 0 {
			return mailtest.Reply(451, "4.7.1", "Greylisted, try again later")
		}
		return nil
	}})
	w.send("s@s.test", 0, "", "x@grey.test")
	w.waitDone(5 * time.Second)
	if len(rx.Messages()) != 1 {
		t.Fatalf("messages = %d, want 1", len(rx.Messages()))
	}
	if w.events.Count(event.Deferred, "x@grey.test") != 1 || w.events.Count(event.Delivered, "x@grey.test") != 1 {
		t.Errorf("events: deferred %d delivered %d", w.events.Count(event.Deferred, ""), w.events.Count(event.Delivered, ""))
	}
}

func TestPermfailSendsDSN(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	w.mx("a.test", "mx.a.test", "127.0.0.21")
	w.mx("s.test", "mx.s.test", "127.0.0.22")
	w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(rcpt string, _ int) error {
		if strings.HasPrefix(rcpt, "unknown") {
			return mailtest.Reply(550, "5.1.1", "The email account that you tried to reach does not exist")
		}
		return nil
	}})
	senderMX := w.receiver("127.0.0.22", mailtest.Options{})
	w.send("s@s.test", 0, message.RetHdrs, "unknown@a.test", "ok@a.test")
	w.waitDone(5 * time.Second)
	got := senderMX.Wait(t, 1, 5*time.Second)
	if got[0].From != "" {
		t.Errorf("DSN sent with reverse-path %q, want null", got[0].From)
	}
	if len(got[0].To) != 1 || got[0].To[0] != "s@s.test" {
		t.Errorf("DSN to %v", got[0].To)
	}
	fields := dsnFields(t, got[0].Data)
	for _, want := range []string{"Final-Recipient: rfc822; unknown@a.test", "Action: failed", "Status: 5.1.1",
		"Remote-MTA: dns; mx.a.test", "Diagnostic-Code: smtp; 550 5.1.1", "Original-Recipient: rfc822;unknown@a.test"} {
		if !strings.Contains(fields, want) {
			t.Errorf("DSN lacks %q:\n%s", want, fields)
		}
	}
	if strings.Contains(fields, "ok@a.test") {
		t.Errorf("DSN reports the delivered recipient:\n%s", fields)
	}
	if w.events.Count(event.Bounced, "unknown@a.test") != 1 {
		t.Errorf("no bounced event")
	}
}

func TestNextMXWhenPrimaryDown(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	// Nolisting: the primary has no listener at all.
	w.mx("nolist.test", "mx1.nolist.test", "127.0.0.31", "mx2.nolist.test", "127.0.0.32")
	rx := w.receiver("127.0.0.32", mailtest.Options{})
	w.send("s@s.test", 0, "", "x@nolist.test")
	w.waitDone(5 * time.Second)
	if len(rx.Messages()) != 1 {
		t.Fatalf("secondary got %d messages", len(rx.Messages()))
	}
	if w.events.Count(event.Deferred, "") != 0 {
		t.Errorf("a dead primary caused a deferral")
	}
}

func TestDNSFailuresBounceAtOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	w.dns.MustAdd("nullmx.test. 300 IN MX 0 .")
	w.mx("s.test", "mx.s.test", "127.0.0.22")
	senderMX := w.receiver("127.0.0.22", mailtest.Options{})
	w.send("s@s.test", 0, "", "x@nullmx.test")
	w.send("s@s.test", 0, "", "y@nxdomain.test")
	w.waitDone(5 * time.Second)
	got := senderMX.Wait(t, 2, 5*time.Second)
	all := dsnFields(t, got[0].Data) + dsnFields(t, got[1].Data)
	for _, want := range []string{"Status: 5.1.10", "Status: 5.1.2", "x@nullmx.test", "y@nxdomain.test"} {
		if !strings.Contains(all, want) {
			t.Errorf("DSNs lack %q:\n%s", want, all)
		}
	}
	if w.events.Count(event.Deferred, "") != 0 {
		t.Errorf("a permanent DNS failure was retried")
	}
}

func TestNoDSNToNullSender(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	w.mx("a.test", "mx.a.test", "127.0.0.21")
	w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(string, int) error { return mailtest.Reply(550, "5.1.1", "no") }})
	w.send("", 0, "", "x@a.test")
	w.waitDone(5 * time.Second)
	if w.events.Count(event.DSNQueued, "") != 0 || w.events.Count(event.Bounced, "x@a.test") != 1 {
		t.Errorf("bounce of a null-sender message: dsn events %d", w.events.Count(event.DSNQueued, ""))
	}
}

func TestNotifyNever(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	w.mx("a.test", "mx.a.test", "127.0.0.21")
	w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(string, int) error { return mailtest.Reply(550, "5.1.1", "no") }})
	w.send("s@s.test", message.NotifyNever, "", "x@a.test")
	w.waitDone(5 * time.Second)
	if w.events.Count(event.DSNQueued, "") != 0 {
		t.Errorf("DSN sent despite NOTIFY=NEVER")
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, func(o *queue.Options) { o.MaxAge = 300 * time.Millisecond })
	w.mx("slow.test", "mx.slow.test", "127.0.0.21")
	w.mx("s.test", "mx.s.test", "127.0.0.22")
	w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(string, int) error { return mailtest.Reply(452, "4.2.2", "Mailbox full") }})
	senderMX := w.receiver("127.0.0.22", mailtest.Options{})
	w.send("s@s.test", 0, "", "x@slow.test")
	w.waitDone(5 * time.Second)
	fields := dsnFields(t, senderMX.Wait(t, 1, 5*time.Second)[0].Data)
	if !strings.Contains(fields, "Status: 4.4.7") || !strings.Contains(fields, "Action: failed") {
		t.Errorf("expiry DSN:\n%s", fields)
	}
	if w.events.Count(event.Expired, "x@slow.test") != 1 || w.events.Count(event.Deferred, "x@slow.test") == 0 {
		t.Errorf("events: expired %d deferred %d", w.events.Count(event.Expired, ""), w.events.Count(event.Deferred, ""))
	}
}

// sourceByLocal routes recipients whose local part starts with "b" from
// 127.0.0.3 and the rest from 127.0.0.2.
type sourceByLocal struct{ policy.Default }

func (p *sourceByLocal) Route(_ context.Context, d *policy.Delivery) (policy.Route, error) {
	if strings.HasPrefix(d.Recipient, "b") {
		return policy.Route{Source: "127.0.0.3", Helo: "mta3.test"}, nil
	}
	return policy.Route{Source: "127.0.0.2", Helo: "mta2.test"}, nil
}

func TestSourceIPBinding(t *testing.T) {
	t.Parallel()
	w := newWorld(t, &sourceByLocal{}, nil)
	w.mx("a.test", "mx.a.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{})
	w.send("s@s.test", 0, "", "alice@a.test", "bob@a.test")
	w.waitDone(5 * time.Second)
	peers := map[string]string{}
	for _, m := range rx.Messages() {
		for _, to := range m.To {
			peers[to] = m.Peer + " " + m.Helo
		}
	}
	if peers["alice@a.test"] != "127.0.0.2 mta2.test" || peers["bob@a.test"] != "127.0.0.3 mta3.test" {
		t.Errorf("peers = %v", peers)
	}
}

func TestConnectionReuseAndLimits(t *testing.T) {
	t.Parallel()
	lim := policy.Limits{MaxConnections: 2, MaxMessagesPerConnection: 10, MaxRecipientsPerMessage: 2}
	w := newWorld(t, &policy.Default{Limits: &lim}, nil)
	w.mx("a.test", "mx.a.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{})
	for i := 0; i < 20; i++ {
		w.send("s@s.test", 0, "", fmt.Sprintf("r%d@a.test", i), fmt.Sprintf("q%d@a.test", i), fmt.Sprintf("p%d@a.test", i))
	}
	w.waitDone(10 * time.Second)
	msgs := rx.Messages()
	rcpts := 0
	for _, m := range msgs {
		if len(m.To) > 2 {
			t.Errorf("transaction with %d recipients, limit 2", len(m.To))
		}
		rcpts += len(m.To)
	}
	if rcpts != 60 {
		t.Errorf("delivered %d recipients, want 60", rcpts)
	}
	if rx.PeakConnections() > 2 {
		t.Errorf("peak connections %d, limit 2", rx.PeakConnections())
	}
	if c := rx.Connections(); c > len(msgs)/5 {
		t.Errorf("%d connections for %d transactions: connections are not reused", c, len(msgs))
	}
}
