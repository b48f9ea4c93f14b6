package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"corriere"
	"corriere/core/address"
)

// Duration is a time.Duration written in JSON as a Go duration string such
// as "3s" or "250ms".
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"3s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// World describes a simulated mail internet. It is read from JSON (see
// testdata/sim/world.json) or built in Go by tests.
type World struct {
	// Notes are free text for the people who edit the world file.
	Notes string `json:"notes,omitempty"`
	// Providers are the simulated mailbox providers.
	Providers []Provider `json:"providers"`
	// NullMX lists domains that publish a null MX ("0 .", RFC 7505): they
	// accept no mail at all.
	NullMX []string `json:"null_mx,omitempty"`
	// NXDomains lists domains that do not exist (typos such as gmial.com).
	// They have no records; listing them documents the world and keeps other
	// entries from defining them.
	NXDomains []string `json:"nxdomains,omitempty"`
	// Records are extra DNS records in zone-file syntax with fully qualified
	// names, for example the SPF, DKIM and DMARC TXT records of sender
	// domains, the PTR records of the MTA's source addresses and the MX of
	// its bounce domain (which must point at 127.0.0.1 or another address
	// where the MTA listens on ReturnPort).
	Records []string `json:"records,omitempty"`
}

// Provider is one simulated mailbox provider: its domains and MX hosts, and
// how its MX servers behave. Counters and limits are per provider, across
// all of its MX hosts, as at a real provider's fleet.
type Provider struct {
	// Name identifies the provider in stats and logs ("gmail").
	Name string `json:"name"`
	// Notes say what real provider this one imitates and why it behaves
	// as it does.
	Notes string `json:"notes,omitempty"`
	// Style chooses the reply texts and the greeting domain style: "gmail",
	// "microsoft", "yahoo", "libero", "tim" or "generic" (Postfix-like). The
	// default value is "generic".
	Style string `json:"style,omitempty"`
	// Domains are the mail domains the provider hosts, each with its MX
	// hosts.
	Domains []Domain `json:"domains"`
	// STARTTLS makes the MX servers offer STARTTLS with the simulator's
	// self-signed certificate.
	STARTTLS bool `json:"starttls,omitempty"`
	// Attack puts an attacker on the path to the provider's MX hosts:
	// "strip-starttls" removes STARTTLS from their EHLO replies,
	// "wrong-certificate" has them present a certificate of the
	// attacker's instead of the simulator's. The default value "" leaves
	// them alone.
	Attack string `json:"attack,omitempty"`
	// Tarpit delays every reply (the greeting included) by this duration.
	Tarpit Duration `json:"tarpit,omitempty"`
	// MaxConnectionsPerIP is how many connections one source address may
	// hold open at once; one more gets the too_many_connections reply at
	// greeting. Zero means no limit.
	MaxConnectionsPerIP int `json:"max_connections_per_ip,omitempty"`
	// MessagesPerMinutePerIP is how many MAIL transactions one source address
	// may start in any minute; more get the rate_limited reply. Zero means no
	// limit.
	MessagesPerMinutePerIP int `json:"messages_per_minute_per_ip,omitempty"`
	// Greylist, when set, defers the first attempt of each triplet.
	Greylist *Greylist `json:"greylist,omitempty"`
	// Blocklist, when set, refuses listed source addresses.
	Blocklist *Blocklist `json:"blocklist,omitempty"`
	// Recipients chooses which local parts are refused at RCPT.
	Recipients Recipients `json:"recipients,omitzero"`
	// SpamMarker, when not empty, refuses after DATA with the spam reply any
	// message that contains it (in the Subject or the body).
	SpamMarker string `json:"spam_marker,omitempty"`
	// AsyncBounce, when set, accepts some recipients and bounces them later.
	AsyncBounce *AsyncBounce `json:"async_bounce,omitempty"`
	// Complaints, when set, reports a share of accepted mail as abuse.
	Complaints *Complaints `json:"complaints,omitempty"`
	// Replies overrides the style's reply for a kind: "accepted",
	// "greylisted", "too_many_connections", "rate_limited", "unknown_user",
	// "mailbox_full", "spam" or "blocked". A reply is one line, "code
	// enhanced-code text", and may use {ip} (source address), {host} (MX
	// host), {from}, {rcpt}, {list} (blocklist name) and {id} (queue id).
	Replies map[string]string `json:"replies,omitempty"`
}

// Domain is a mail domain and its MX records.
type Domain struct {
	// Name is the domain ("gmail.com").
	Name string `json:"name"`
	// MX are the domain's MX hosts.
	MX []MX `json:"mx"`
	// MTASTS, when set, publishes an MTA-STS policy naming the domain's MX
	// hosts, served over HTTPS by the simulator (see Sim.PolicyPort).
	MTASTS *MTASTS `json:"mta_sts,omitempty"`
	// DANE publishes TLSA records for the domain's MX hosts, answered with
	// the AD bit as from a DNSSEC-signed zone.
	DANE bool `json:"dane,omitempty"`
}

// MX is one MX record and the host it names. A host shared by several
// domains must be written the same way in each.
type MX struct {
	// Host is the MX host name ("gmail-smtp-in.l.google.com").
	Host string `json:"host"`
	// Preference is the MX preference; lower is tried first.
	Preference uint16 `json:"preference"`
	// IP is the host's address, in 127.0.0.0/8 but outside 127.0.0.0/24.
	IP string `json:"ip"`
	// Dead leaves the host without a listener, so connections are refused:
	// a nolisting primary.
	Dead bool `json:"dead,omitempty"`
}

// Greylist configures greylisting.
type Greylist struct {
	// Delay is how long after the first attempt a retry is accepted.
	Delay Duration `json:"delay"`
	// By is the source part of the triplet: "ip" (exact address) or "net24"
	// (the address's /24, as Postgrey does). The default value is "net24".
	By string `json:"by,omitempty"`
}

// Blocklist configures a reputation block of given source addresses.
type Blocklist struct {
	// IPs are the blocked source addresses.
	IPs []string `json:"ips"`
	// At is when the block is applied: "connect" (the greeting) or "rcpt".
	// The default value is "connect".
	At string `json:"at,omitempty"`
	// List is the blocklist named in the reply. The default value is
	// "zen.spamhaus.org".
	List string `json:"list,omitempty"`
}

// Recipients configures which recipients are refused at RCPT, by the start
// of their local part (case-insensitive). Empty prefixes are off.
type Recipients struct {
	// UnknownPrefix marks unknown users (550 5.1.1).
	UnknownPrefix string `json:"unknown_prefix,omitempty"`
	// FullPrefix marks full mailboxes (452 4.2.2).
	FullPrefix string `json:"full_prefix,omitempty"`
	// SpamPrefix marks recipients whose mail is refused as spam (550 5.7.1).
	SpamPrefix string `json:"spam_prefix,omitempty"`
}

// AsyncBounce configures accept-then-bounce.
type AsyncBounce struct {
	// Prefix marks the recipients (by the start of the local part) that are
	// accepted and bounced later.
	Prefix string `json:"prefix"`
	// Delay is how long after acceptance the bounce is sent.
	Delay Duration `json:"delay"`
	// Format is "dsn" (RFC 3464 multipart/report), "qmail" (qmail-send
	// plain text) or "exchange" (Exchange-like plain-text NDR). The default
	// value is "dsn".
	Format string `json:"format,omitempty"`
	// Reply is the diagnostic quoted in the bounce. The default value is the
	// provider's unknown_user reply.
	Reply string `json:"reply,omitempty"`
}

// Complaints configures feedback-loop reports.
type Complaints struct {
	// Rate is the share of accepted recipients reported, from 0 to 1.
	Rate float64 `json:"rate"`
	// Delay is how long after acceptance the report is sent.
	Delay Duration `json:"delay"`
	// To is the feedback-loop address the sender registered.
	To string `json:"to"`
	// From is the report's sender. The default value is "feedback@" the
	// provider's first domain.
	From string `json:"from,omitempty"`
}

// ParseWorld decodes a world from JSON and validates it. Unknown fields are
// errors, so a misspelt behaviour is not silently ignored.
func ParseWorld(data []byte) (*World, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w World
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("sim: world: %w", err)
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return &w, nil
}

// LoadWorld reads and validates a world file; an empty path reads the
// world built into the binary (the repository's testdata/sim/world.json),
// so the simulator and the demo run from any directory.
func LoadWorld(path string) (*World, error) {
	var data []byte
	var err error
	if path == "" {
		path = "the built-in world.json"
		data, err = fs.ReadFile(corriere.SimWorld(), "world.json")
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("sim: load world: %w", err)
	}
	w, err := ParseWorld(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return w, nil
}

// Validate reports the first problem in w, naming the provider and field.
func (w *World) Validate() error {
	v := validator{
		domains:  map[string]string{},
		hosts:    map[string]MX{},
		ips:      map[string]string{},
		ipOwners: map[string]string{},
		names:    map[string]bool{},
	}
	for i := range w.Providers {
		p := &w.Providers[i]
		if err := v.provider(p); err != nil {
			name := p.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i)
			}
			return fmt.Errorf("sim: world: provider %q: %w", name, err)
		}
	}
	for i, d := range w.NullMX {
		if err := v.domain(d, "null_mx"); err != nil {
			return fmt.Errorf("sim: world: null_mx[%d]: %w", i, err)
		}
	}
	for i, d := range w.NXDomains {
		if err := v.domain(d, "nxdomains"); err != nil {
			return fmt.Errorf("sim: world: nxdomains[%d]: %w", i, err)
		}
	}
	for i, r := range w.Records {
		if _, err := parseRecord(r); err != nil {
			return fmt.Errorf("sim: world: records[%d]: %w", i, err)
		}
	}
	return nil
}

func parseRecord(r string) (mdns.RR, error) {
	rr, err := mdns.NewRR(r)
	if err != nil {
		return nil, fmt.Errorf("record %q: %w", r, err)
	}
	if rr == nil {
		return nil, fmt.Errorf("record %q is empty", r)
	}
	if !strings.HasSuffix(rr.Header().Name, ".") || !strings.HasSuffix(strings.Fields(r)[0], ".") {
		return nil, fmt.Errorf("record %q: name must be fully qualified (end with a dot)", r)
	}
	return rr, nil
}

// validator carries what earlier providers defined, to find clashes.
type validator struct {
	domains  map[string]string // domain → where it was defined
	hosts    map[string]MX     // host → its first definition
	ips      map[string]string // IP → host
	ipOwners map[string]string // IP → provider
	names    map[string]bool   // provider names
}

func (v *validator) provider(p *Provider) error {
	if p.Name == "" {
		return errors.New("name is empty")
	}
	if v.names[p.Name] {
		return errors.New("name is used by another provider")
	}
	v.names[p.Name] = true
	if _, ok := styles[p.Style]; !ok && p.Style != "" {
		return fmt.Errorf("style %q is not one of %s", p.Style, styleNames())
	}
	if len(p.Domains) == 0 {
		return errors.New("domains is empty")
	}
	for i, d := range p.Domains {
		if err := v.domain(d.Name, "provider "+p.Name); err != nil {
			return fmt.Errorf("domains[%d].name: %w", i, err)
		}
		if len(d.MX) == 0 {
			return fmt.Errorf("domains[%d] (%s): mx is empty", i, d.Name)
		}
		for j, mx := range d.MX {
			if err := v.mx(p.Name, mx); err != nil {
				return fmt.Errorf("domains[%d].mx[%d] (%s): %w", i, j, d.Name, err)
			}
		}
		if err := validTLS(p, d); err != nil {
			return fmt.Errorf("domains[%d] (%s): %w", i, d.Name, err)
		}
	}
	if p.Tarpit < 0 {
		return errors.New("tarpit is negative")
	}
	if p.MaxConnectionsPerIP < 0 {
		return errors.New("max_connections_per_ip is negative")
	}
	if p.MessagesPerMinutePerIP < 0 {
		return errors.New("messages_per_minute_per_ip is negative")
	}
	if g := p.Greylist; g != nil {
		if g.Delay < 0 {
			return errors.New("greylist.delay is negative")
		}
		if g.By != "" && g.By != "ip" && g.By != "net24" {
			return fmt.Errorf("greylist.by %q is not \"ip\" or \"net24\"", g.By)
		}
	}
	if b := p.Blocklist; b != nil {
		if b.At != "" && b.At != "connect" && b.At != "rcpt" {
			return fmt.Errorf("blocklist.at %q is not \"connect\" or \"rcpt\"", b.At)
		}
		for i, ip := range b.IPs {
			if _, err := netip.ParseAddr(ip); err != nil {
				return fmt.Errorf("blocklist.ips[%d]: %w", i, err)
			}
		}
	}
	if a := p.AsyncBounce; a != nil {
		if a.Prefix == "" {
			return errors.New("async_bounce.prefix is empty")
		}
		if a.Delay < 0 {
			return errors.New("async_bounce.delay is negative")
		}
		if _, ok := bounceFormats[a.Format]; !ok && a.Format != "" {
			return fmt.Errorf("async_bounce.format %q is not \"dsn\", \"qmail\" or \"exchange\"", a.Format)
		}
		if a.Reply != "" {
			if _, err := parseReply(a.Reply); err != nil {
				return fmt.Errorf("async_bounce.reply: %w", err)
			}
		}
	}
	if c := p.Complaints; c != nil {
		if c.Rate < 0 || c.Rate > 1 {
			return fmt.Errorf("complaints.rate %v is not between 0 and 1", c.Rate)
		}
		if c.Delay < 0 {
			return errors.New("complaints.delay is negative")
		}
		if _, err := address.Parse(c.To, address.Options{}); err != nil {
			return fmt.Errorf("complaints.to %q: %w", c.To, err)
		}
		if c.From != "" {
			if _, err := address.Parse(c.From, address.Options{}); err != nil {
				return fmt.Errorf("complaints.from %q: %w", c.From, err)
			}
		}
	}
	for kind := range p.Replies {
		if _, ok := styles[""][replyKind(kind)]; !ok {
			return fmt.Errorf("replies: unknown kind %q", kind)
		}
	}
	_, err := newReplies(p)
	return err
}

func (v *validator) domain(name, where string) error {
	d := strings.ToLower(strings.TrimSuffix(name, "."))
	if _, ok := mdns.IsDomainName(d); !ok || d == "" || !strings.Contains(d, ".") {
		return fmt.Errorf("%q is not a domain name", name)
	}
	if prev, dup := v.domains[d]; dup {
		return fmt.Errorf("domain %s is already defined by %s", d, prev)
	}
	v.domains[d] = where
	return nil
}

func (v *validator) mx(provider string, mx MX) error {
	host := strings.ToLower(strings.TrimSuffix(mx.Host, "."))
	if _, ok := mdns.IsDomainName(host); !ok || host == "" {
		return fmt.Errorf("host %q is not a host name", mx.Host)
	}
	ip, err := netip.ParseAddr(mx.IP)
	if err != nil {
		return fmt.Errorf("ip: %w", err)
	}
	if !ip.Is4() || !netip.MustParsePrefix("127.0.0.0/8").Contains(ip) || netip.MustParsePrefix("127.0.0.0/24").Contains(ip) {
		return fmt.Errorf("ip %s is not in 127.0.0.0/8 outside 127.0.0.0/24 (kept for 127.0.0.1 and the MTA's source addresses)", ip)
	}
	if prev, ok := v.hosts[host]; ok {
		if prev.IP != mx.IP || prev.Dead != mx.Dead {
			return fmt.Errorf("host %s is defined elsewhere with ip %s dead=%v", host, prev.IP, prev.Dead)
		}
		return nil
	}
	if other, ok := v.ips[mx.IP]; ok {
		return fmt.Errorf("ip %s is already the address of %s", mx.IP, other)
	}
	if owner, ok := v.ipOwners[mx.IP]; ok && owner != provider {
		return fmt.Errorf("ip %s belongs to provider %s", mx.IP, owner)
	}
	v.hosts[host] = mx
	v.ips[mx.IP] = host
	v.ipOwners[mx.IP] = provider
	return nil
}

// Summary describes p's behaviour in one line, for tables and logs.
func (p *Provider) Summary() string {
	var parts []string
	if p.STARTTLS {
		parts = append(parts, "starttls")
	}
	if g := p.Greylist; g != nil {
		by := g.By
		if by == "" {
			by = "net24"
		}
		parts = append(parts, fmt.Sprintf("greylist %s by %s", time.Duration(g.Delay), by))
	}
	if p.MaxConnectionsPerIP > 0 {
		parts = append(parts, fmt.Sprintf("%d conn/IP", p.MaxConnectionsPerIP))
	}
	if p.MessagesPerMinutePerIP > 0 {
		parts = append(parts, fmt.Sprintf("%d msg/min/IP", p.MessagesPerMinutePerIP))
	}
	if b := p.Blocklist; b != nil && len(b.IPs) > 0 {
		at := b.At
		if at == "" {
			at = "connect"
		}
		parts = append(parts, fmt.Sprintf("blocks %s at %s", strings.Join(b.IPs, ","), at))
	}
	r := p.Recipients
	for _, x := range []struct{ prefix, what string }{
		{r.UnknownPrefix, "unknown user"}, {r.FullPrefix, "mailbox full"}, {r.SpamPrefix, "spam"},
	} {
		if x.prefix != "" {
			parts = append(parts, fmt.Sprintf("%s*@→%s", x.prefix, x.what))
		}
	}
	if p.SpamMarker != "" {
		parts = append(parts, fmt.Sprintf("%q→spam", p.SpamMarker))
	}
	if a := p.AsyncBounce; a != nil {
		f := a.Format
		if f == "" {
			f = "dsn"
		}
		parts = append(parts, fmt.Sprintf("%s*@→bounce after %s (%s)", a.Prefix, time.Duration(a.Delay), f))
	}
	if c := p.Complaints; c != nil && c.Rate > 0 {
		parts = append(parts, fmt.Sprintf("complaints %g%% to %s", c.Rate*100, c.To))
	}
	if p.Tarpit > 0 {
		parts = append(parts, fmt.Sprintf("tarpit %s", time.Duration(p.Tarpit)))
	}
	parts = append(parts, tlsSummary(p)...)
	if len(parts) == 0 {
		return "accepts everything"
	}
	return strings.Join(parts, ", ")
}
