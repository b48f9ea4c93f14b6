package luart

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"corriere/core/address"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/reply"
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
	// MXHost is the recipient domain's most preferred MX host; empty uses
	// the domain itself (the implicit MX of RFC 5321), noted in the output.
	MXHost string
	// Reply, if set, is a reply line ("421 4.7.0 Try again later") to
	// interpret with on_response, as received at Stage (default "rcpt").
	Reply string
	Stage policy.Stage
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
	// when no MX host was given.
	Domain, MXHost, Provider string
	MXAssumed                bool
	// Route is route's answer and Limits shape's for (Provider, Route.Source).
	Route  policy.Route
	Limits policy.Limits
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
	if d.MXAssumed {
		mx += " (assumed: no MX given)"
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
	from := "the system's address"
	if d.Route.Source != "" {
		from = d.Route.Source
	}
	line("Shape", "%s from %s: %s", d.Provider, from, limitsText(d.Limits))
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
			what += ", category " + v.Category
		}
		if v.RateFactor > 0 {
			what += fmt.Sprintf(", rate x%.2g", v.RateFactor)
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
