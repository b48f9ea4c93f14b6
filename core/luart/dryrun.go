package luart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"corriere/core/address"
	"corriere/core/dns"
	"corriere/core/message"
	"corriere/core/mtasts"
	"corriere/core/policy"
	"corriere/core/reply"
	"corriere/core/shape"
)

// DryRunInput is one message to take through the policy without sending
// it, for `corriere rules test`.
type DryRunInput struct {
	// Name labels the message in the output (usually its file name).
	Name string
	// Message is the raw RFC 5322 message.
	Message []byte
	// Sender is the envelope sender; empty takes the From: address.
	Sender string
	// Recipient is the envelope recipient whose delivery is simulated.
	Recipient string
	// Tenant is the authenticated tenant the message arrives from.
	Tenant string
	// MXHost is the recipient domain's most preferred MX host. When it is
	// empty, Resolver looks it up; without a Resolver the domain itself
	// stands in (the implicit MX of RFC 5321), noted in the output.
	MXHost string
	// Resolver looks up the recipient domain's MX when MXHost is empty, as
	// the node's queue does: its most preferred host names the provider.
	// A failed lookup is reported in the result (DryRun.MXError), and the
	// domain itself stands in for the rest of the dry run.
	Resolver MXResolver
	// Reply, if set, is a reply line ("421 4.7.0 Try again later") to
	// interpret with on_response, as received at Stage (default "rcpt").
	Reply string
	Stage policy.Stage
}

// MXResolver finds the MX hosts of a domain; *dns.Resolver implements it.
type MXResolver interface {
	LookupMX(ctx context.Context, domain string) (*dns.MXResult, error)
}

// DryRun is what every hook decided for a DryRunInput.
type DryRun struct {
	// Generation is the policy generation that decided.
	Generation uint64
	// Name, Size and Recipient describe the input.
	Name      string
	Size      int
	Recipient string
	// Tenant is the authenticated tenant; TenantKnown says whether
	// rules/tenants defines it; Overrides lists its hook overrides.
	Tenant      string
	TenantKnown bool
	Overrides   []string
	// Classification is classify's answer.
	Classification policy.Classification
	// Added and Removed are the header fields rewrite added and removed, as
	// "Name: value" (a changed field is one of each).
	Added, Removed []string
	// SenderBefore and SenderAfter are the envelope sender around rewrite;
	// Author is who receives the bounces, when rewrite set one.
	SenderBefore, SenderAfter, Author string
	// Header is the header section after rewrite.
	Header []byte
	// Domain, MXHost and Provider describe the delivery; MXAssumed is true
	// when the domain itself stands in for an MX host nobody gave or found.
	Domain, MXHost, Provider string
	MXAssumed                bool
	// MXLookedUp is true when MXHost comes from a DNS lookup, and
	// MXImplicit when that lookup found no MX records but an address, so
	// the domain itself is the MX, as the node would use it.
	MXLookedUp, MXImplicit bool
	// MXError is why the MX lookup failed, and MXBounce whether the node
	// would bounce the recipient for it (the domain does not exist or takes
	// no mail) rather than try again later.
	MXError  string
	MXBounce bool
	// MTASTS says whether the recipient domain publishes an MTA-STS
	// record, when the MX was looked up with a resolver that finds TXT
	// records; "" when it was not looked up.
	MTASTS string
	// Route is route's answer and Limits shape's for (Provider, Route.Source);
	// Total is shape's answer for the provider as a whole (every source
	// together), which the node enforces as well.
	Route  policy.Route
	Limits policy.Limits
	Total  policy.Limits
	// Burst and TotalBurst are what the node's limiters let through for
	// Limits and Total, which is not always the burst asked for.
	Burst, TotalBurst Burst
	// Warmup is the warm-up schedule of Route.Source on the day of the dry
	// run, or nil when the source has none.
	Warmup *WarmupDay
	// Reply, Stage and Verdict are on_response's input and answer, when a
	// reply was given.
	Reply   *reply.Reply
	Stage   policy.Stage
	Verdict *policy.Verdict
}

// DryRun takes one message through classify, rewrite, route, shape and
// (with a reply) on_response of the current generation, as ingest and
// delivery would, without sending anything.
func (e *Engine) DryRun(ctx context.Context, in DryRunInput) (*DryRun, error) {
	g := e.cur.Load()
	rcpt, err := address.Parse(in.Recipient, address.Options{AllowUTF8: true})
	if err != nil {
		return nil, fmt.Errorf("luart: dry run: recipient %q: %w", in.Recipient, err)
	}
	h, body, err := message.Parse(in.Message)
	if err != nil {
		return nil, fmt.Errorf("luart: dry run: %w", err)
	}
	m := &message.Message{
		ID:       "dry-run",
		Envelope: message.Envelope{Sender: in.Sender, Recipients: []message.Recipient{{Addr: rcpt.String()}}},
		Header:   h,
		Body:     body,
		Tenant:   in.Tenant,
		AuthUser: in.Tenant,
		Received: e.now(),
	}
	if m.Sender == "" {
		m.Sender = fromAddress(h)
	}
	d := &DryRun{
		Generation:   g.number,
		Name:         in.Name,
		Size:         len(in.Message),
		Recipient:    rcpt.String(),
		Tenant:       in.Tenant,
		Overrides:    g.overrides[in.Tenant],
		SenderBefore: m.Sender,
		Domain:       rcpt.Domain,
		MXHost:       in.MXHost,
	}
	_, d.TenantKnown = g.tenants[in.Tenant]
	before := fieldLines(m.Header)

	if d.Classification, err = g.classify(ctx, m); err != nil {
		return nil, err
	}
	c := d.Classification
	m.Tenant, m.Class, m.Campaign, m.Priority = c.Tenant, c.Class, c.Campaign, c.Priority
	if err := g.rewrite(ctx, m); err != nil {
		return nil, err
	}
	d.Added, d.Removed = diffLines(before, fieldLines(m.Header))
	d.SenderAfter, d.Author, d.Header = m.Sender, m.Author, m.HeaderBytes()

	if d.MXHost == "" && in.Resolver != nil {
		d.lookupMX(ctx, in.Resolver)
	}
	if d.MXHost == "" {
		d.MXHost, d.MXAssumed = rcpt.Domain, true
	}
	d.Provider = g.provider(d.MXHost)
	if d.Route, err = g.route(ctx, &policy.Delivery{
		Message: m, Recipient: d.Recipient, Domain: d.Domain, Provider: d.Provider, MXHost: d.MXHost,
	}); err != nil {
		return nil, err
	}
	if d.Limits, err = g.shape(ctx, d.Provider, d.Route.Source); err != nil {
		return nil, err
	}
	if d.Total, err = g.shape(ctx, d.Provider, policy.AllSources); err != nil {
		return nil, err
	}
	d.Burst, d.TotalBurst = enforcedBurst(d.Limits), enforcedBurst(d.Total)
	if w, ok := g.warmups[d.Route.Source]; ok {
		wd := &WarmupDay{Start: w.Start, Days: len(w.Daily)}
		wd.Cap, wd.Day, wd.Warming = w.Cap(e.now())
		d.Warmup = wd
	}
	if in.Reply != "" {
		r, err := reply.Parse([]string{strings.TrimSpace(in.Reply)})
		if err != nil {
			return nil, fmt.Errorf("luart: dry run: --reply: %w", err)
		}
		d.Reply, d.Stage = r, in.Stage
		if d.Stage == "" {
			d.Stage = policy.StageRcpt
		}
		v, err := g.onResponse(ctx, &policy.Attempt{
			Stage: d.Stage, Reply: r, Recipient: d.Recipient, Tenant: m.Tenant, Class: m.Class,
			Provider: d.Provider, MXHost: d.MXHost, Source: d.Route.Source,
		})
		if err != nil {
			return nil, err
		}
		d.Verdict = &v
	}
	return d, nil
}

// lookupMX looks the recipient domain's MX up as the queue does, and
// records what it found or why it failed.
func (d *DryRun) lookupMX(ctx context.Context, r MXResolver) {
	mx, err := r.LookupMX(ctx, d.Domain)
	if err == nil && len(mx.Hosts) == 0 {
		err = errors.New("empty MX set")
	}
	if err != nil {
		d.MXError = err.Error()
		var de *dns.Error
		d.MXBounce = errors.As(err, &de) && !de.Temporary()
		return
	}
	d.MXHost, d.MXLookedUp, d.MXImplicit = mx.Hosts[0].Host, true, mx.Implicit
	if tr, ok := r.(TXTResolver); ok {
		d.MTASTS = lookupMTASTS(ctx, tr, d.Domain)
	}
}

// TXTResolver is the optional capability of an MXResolver that also finds
// TXT records, with which a dry run tells whether the recipient domain
// publishes MTA-STS; *dns.Resolver implements it.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// lookupMTASTS describes the domain's _mta-sts record for the TLS line.
func lookupMTASTS(ctx context.Context, r TXTResolver, domain string) string {
	txts, err := r.LookupTXT(ctx, "_mta-sts."+domain)
	var de *dns.Error
	switch {
	case errors.As(err, &de) && de.Kind == dns.NotFound:
		return "no MTA-STS record"
	case err != nil:
		return "MTA-STS record lookup failed: " + err.Error()
	}
	id, err := mtasts.FindRecord(txts)
	switch {
	case errors.Is(err, mtasts.ErrNoRecord):
		return "no MTA-STS record"
	case err != nil:
		return "an invalid MTA-STS record (" + err.Error() + "): no policy"
	}
	return "an MTA-STS record (id " + id + "): the node fetches and applies its policy"
}

// Burst is how many messages a limiter lets go back to back, and how long
// the next one then waits.
type Burst struct {
	// N is the number of messages that may go at once; 0 when nothing
	// limits it (no rate or volume is set).
	N int
	// Then is the wait after the N-th message.
	Then time.Duration
	// AtLeast is true when N stopped at maxBurstProbe, not at the limit.
	AtLeast bool
}

// maxBurstProbe bounds how many messages enforcedBurst sends through a
// limiter: a per-day volume alone may let a whole day's mail go at once.
const maxBurstProbe = 100000

// enforcedBurst measures the burst the node enforces for l by asking a
// fresh limiter, the one the queue uses, for messages at one instant until
// it says wait. The limiter bounds the burst by the rates (never more than
// a second's or a minute's worth) and by at least one message, so the burst
// asked for and the burst enforced differ; measuring it cannot drift from
// what the limiter does.
func enforcedBurst(l policy.Limits) Burst {
	if l.PerSecond <= 0 && l.PerMinute <= 0 && l.PerHour <= 0 && l.PerDay <= 0 {
		return Burst{}
	}
	lim := shape.NewLimiter(l)
	now := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	var b Burst
	for b.N < maxBurstProbe {
		if wait := lim.Reserve(now, true); wait > 0 {
			b.Then = wait
			return b
		}
		b.N++
	}
	b.AtLeast = true
	return b
}

// WarmupDay is where a warming source IP stands in its schedule.
type WarmupDay struct {
	// Start is day 1, and Days the length of the schedule.
	Start time.Time
	Days  int
	// Day is today's day of the schedule (1-based; 0 before Start), Cap
	// the most messages it may send to each provider today, and Warming
	// whether it is still warming up (false once the schedule is over).
	Day, Cap int
	Warming  bool
}

// fieldLines lists the header fields as "Name: value", top to bottom.
func fieldLines(h textproto.Header) []string {
	var out []string
	for f := h.Fields(); f.Next(); {
		name := f.Key()
		if raw, err := f.Raw(); err == nil {
			if i := strings.IndexByte(string(raw), ':'); i > 0 {
				name = strings.TrimSpace(string(raw[:i])) // as spelled in the message
			}
		}
		out = append(out, name+": "+f.Value())
	}
	return out
}

// diffLines returns the lines of after missing from before (added) and of
// before missing from after (removed), counting repeats.
func diffLines(before, after []string) (added, removed []string) {
	count := map[string]int{}
	for _, l := range before {
		count[l]++
	}
	for _, l := range after {
		if count[l] > 0 {
			count[l]--
		} else {
			added = append(added, l)
		}
	}
	for _, l := range before {
		if count[l] > 0 {
			count[l]--
			removed = append(removed, l)
		}
	}
	return added, removed
}

// WriteText writes d for a person: one section per hook, aligned.
func (d *DryRun) WriteText(w io.Writer) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-10s %s\n", label, fmt.Sprintf(format, args...))
	}
	more := func(format string, args ...any) {
		fmt.Fprintf(&b, "%-10s %s\n", "", fmt.Sprintf(format, args...))
	}
	name := d.Name
	if name == "" {
		name = "message"
	}
	line("Message", "%s (%s), from <%s> to <%s>", name, byteSize(d.Size), d.SenderBefore, d.Recipient)
	tenant := "(none: not authenticated)"
	if d.Tenant != "" {
		tenant = d.Tenant
		if !d.TenantKnown {
			tenant += " (not defined in rules/tenants)"
		}
		if len(d.Overrides) > 0 {
			tenant += " (scripts/tenants overrides: " + strings.Join(d.Overrides, ", ") + ")"
		}
	}
	line("Tenant", "%s", tenant)
	line("Policy", "generation %d", d.Generation)
	b.WriteByte('\n')

	c := d.Classification
	campaign := "no campaign"
	if c.Campaign != "" {
		campaign = "campaign " + strconv.Quote(c.Campaign)
	}
	line("Classify", "%s, %s, priority %d, tenant %s", c.Class, campaign, c.Priority, orNone(c.Tenant))

	if len(d.Added)+len(d.Removed) == 0 {
		line("Rewrite", "no header changes")
	} else {
		label := "Rewrite"
		for _, l := range d.Removed {
			line(label, "- %s", l)
			label = ""
		}
		for _, l := range d.Added {
			line(label, "+ %s", l)
			label = ""
		}
	}
	if d.SenderAfter != d.SenderBefore {
		more("envelope sender <%s> -> <%s>", d.SenderBefore, d.SenderAfter)
	}
	if d.Author != "" {
		more("bounces go to the author <%s>", d.Author)
	}
	b.WriteByte('\n')

	mx := d.MXHost
	switch {
	case d.MXError != "":
		line("MX", "lookup FAILED: %s", d.MXError)
		if d.MXBounce {
			more("the node would bounce this recipient")
		} else {
			more("the node would not deliver now, and would try the lookup again later")
		}
		more("below, the domain itself stands in for its MX (pass --mx HOST or --dns ADDR for the real one)")
		mx += " (assumed: the lookup failed)"
	case d.MXAssumed:
		mx += " (assumed: no MX given)"
	case d.MXImplicit:
		mx += " (looked up: no MX records, the domain itself takes mail)"
	case d.MXLookedUp:
		mx += " (looked up)"
	}
	line("Delivery", "to %s via MX %s: provider %s", d.Domain, mx, d.Provider)
	src := "chosen by the system (no egress IPs: pass --source)"
	if d.Route.Source != "" {
		src = d.Route.Source
		if d.Route.Helo != "" {
			src += " (EHLO " + d.Route.Helo + ")"
		}
	}
	line("Route", "pool %s, source %s", orNone(d.Route.Pool), src)
	line("TLS", "%s", tlsText(d.Route.TLS))
	if d.MTASTS != "" {
		more("%s publishes %s", d.Domain, d.MTASTS)
	}
	from := "the system's address"
	if d.Route.Source != "" {
		from = d.Route.Source
	}
	line("Shape", "%s from %s: %s", d.Provider, from, limitsText(d.Limits))
	if t := burstText(d.Limits, d.Burst); t != "" {
		more("%s", t)
	}
	if d.Total != (policy.Limits{}) {
		line("Total", "%s from every source together: %s", d.Provider, limitsText(d.Total))
		if t := burstText(d.Total, d.TotalBurst); t != "" {
			more("%s", t)
		}
	}
	if w := d.Warmup; w != nil {
		start := w.Start.Format(time.DateOnly)
		switch {
		case w.Day == 0:
			line("Warm-up", "%s starts its %d-day warm-up on %s: it may send nothing before", from, w.Days, start)
		case w.Warming:
			line("Warm-up", "%s is on day %d of %d (from %s): at most %d messages to %s today", from, w.Day, w.Days, start, w.Cap, d.Provider)
			more("past the cap, route sends from another IP, or the node holds the mail for tomorrow")
		default:
			line("Warm-up", "%s finished its %d-day warm-up (from %s): no cap", from, w.Days, start)
		}
	} else if d.Route.Source != "" {
		line("Warm-up", "none for %s (not in rules/pools.lua warmup): no daily cap", from)
	}
	if d.Verdict != nil {
		v := d.Verdict
		line("Reply", "%s (at %s)", d.Reply, d.Stage)
		what := string(v.Action)
		switch v.Action {
		case policy.Suspend:
			what += " " + string(v.Scope) + " for " + durationText(v.Delay)
		case policy.Retry:
			if v.Delay > 0 {
				what += " in " + durationText(v.Delay)
			} else {
				what += " on the normal schedule"
			}
		}
		if v.Category != "" {
			what += ", category " + string(v.Category)
		}
		if v.RateFactor > 0 {
			what += fmt.Sprintf(", rate x%.2g", v.RateFactor)
		}
		if v.Action == policy.Bounce {
			if v.Hard {
				what += ", hard: the recipient goes on the tenant's suppression list"
			} else {
				what += ", soft: the recipient is not suppressed"
			}
		}
		more("-> %s", what)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func byteSize(n int) string {
	if n < 1024 {
		return strconv.Itoa(n) + " B"
	}
	return fmt.Sprintf("%.1f kB", float64(n)/1024)
}

func durationText(d time.Duration) string {
	if d == 0 {
		return "the default time"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// burstText says what burst the node enforces, where it is not simply the
// one asked for, or how it is bounded.
func burstText(l policy.Limits, b Burst) string {
	switch {
	case b.N == 0:
		return ""
	case b.AtLeast:
		return fmt.Sprintf("burst enforced: more than %d messages at once", b.N)
	}
	asked := ""
	if b.N != l.Burst {
		asked = fmt.Sprintf(" (burst %d asked; the rates allow %d)", l.Burst, b.N)
		if l.Burst <= 0 {
			asked = " (no burst set)"
		}
	}
	return fmt.Sprintf("burst enforced: %d back to back%s, then the next after %s", b.N, asked, b.Then)
}

// limitsText formats the limits that are set, in the order of the fields.
func limitsText(l policy.Limits) string {
	var parts []string
	add := func(n float64, unit string) {
		if n > 0 {
			parts = append(parts, strconv.FormatFloat(n, 'f', -1, 64)+" "+unit)
		}
	}
	add(float64(l.MaxConnections), "connections")
	add(float64(l.MaxMessagesPerConnection), "messages/connection")
	add(float64(l.MaxRecipientsPerMessage), "recipients/transaction")
	add(l.PerSecond, "/second")
	add(l.PerMinute, "/minute")
	add(l.PerHour, "/hour")
	add(l.PerDay, "/day")
	if l.Burst > 0 {
		parts = append(parts, "burst "+strconv.Itoa(l.Burst))
	}
	if len(parts) == 0 {
		return "no limits"
	}
	return strings.ReplaceAll(strings.Join(parts, ", "), " /", "/")
}

// tlsText says what a route's TLS policy does.
func tlsText(p policy.TLSPolicy) string {
	switch p {
	case policy.TLSOpportunistic:
		return "opportunistic: STARTTLS when offered, any certificate; DANE and MTA-STS ignored"
	case policy.TLSRequired:
		return "required: TLS with a certificate valid for the MX host (DANE where published, else the certificate authorities), or the mail waits"
	case policy.TLSDANE:
		return "dane: only MX hosts authenticated by DNSSEC-signed TLSA records, or the mail waits"
	case policy.TLSMTASTS:
		return "mta-sts: the domain's MTA-STS policy, enforced even in testing mode; without a policy the mail waits"
	}
	return "auto: DANE where the MX hosts publish TLSA records, else the domain's MTA-STS policy, else opportunistic STARTTLS"
}
