package luart

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/reply"
)

func TestClassifyDefaultPolicy(t *testing.T) {
	t.Parallel()
	e := defaultEngine(t, Options{})
	many := make([]string, 25)
	for i := range many {
		many[i] = fmt.Sprintf("member%02d@example.net", i)
	}
	tests := []struct {
		name, file, tenant string
		rcpts              []string
		preset             message.Class // class given by the HTTP API
		class              message.Class
		campaign           string
		priority           int
	}{
		{"list headers", "newsletter.eml", "example", nil, "", message.Newsletter, "spring-2025", 0},
		{"system to one person", "transactional.eml", "example", nil, "", message.Transactional, "", 50},
		{"reply from a mail client", "personal.eml", "", nil, "", message.Personal, "", 50},
		{"tenant rule on encoded subject", "otp-encoded.eml", "example", nil, "", message.Critical, "", 100},
		{"same message, no tenant rules", "otp-encoded.eml", "", nil, "", message.Transactional, "", 50},
		{"tenant rule beats Precedence: bulk", "alert.eml", "example", nil, "", message.Critical, "", 100},
		{"Precedence: bulk without tenant rule", "alert.eml", "", nil, "", message.Newsletter, "", 0},
		{"tenant override script", "order-confirmation.eml", "example", nil, "", message.Transactional, "", 50},
		{"no override for this tenant", "order-confirmation.eml", "clinic", nil, "", message.Newsletter, "", 0},
		{"declared critical is not trusted", "declared-critical.eml", "example", nil, "", message.Transactional, "", 50},
		{"declared personal", "declared-personal.eml", "", nil, "", message.Personal, "", 50},
		{"tenant rule with campaign", "prescription.eml", "clinic", nil, "", message.Critical, "prescriptions", 100},
		{"many recipients", "plain-bulk.eml", "example", many, "", message.Newsletter, "", 0},
		{"one recipient", "plain-bulk.eml", "example", nil, "", message.Transactional, "", 50},
		{"class from the API", "transactional.eml", "example", nil, message.Newsletter, message.Newsletter, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loadMessage(t, tt.file, tt.tenant, tt.rcpts...)
			m.Class = tt.preset
			c, err := e.Classify(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			want := policy.Classification{Tenant: tt.tenant, Class: tt.class, Campaign: tt.campaign, Priority: tt.priority}
			if c != want {
				t.Errorf("Classify = %+v, want %+v", c, want)
			}
		})
	}
}

func TestRewriteDefaultPolicy(t *testing.T) {
	t.Parallel()
	e := defaultEngine(t, Options{})
	tests := []struct {
		name, file, tenant string
		want               map[string]string // header field -> value; "" means absent
		sender, author     string
	}{
		{
			name: "newsletter with its own unsubscribe", file: "newsletter.eml", tenant: "example",
			want: map[string]string{
				"Feedback-ID":         "spring-2025:example:newsletter:corriere",
				"X-Campaign-Id":       "spring-2025",
				"Precedence":          "bulk",
				"X-Corriere-Campaign": "",
				"List-Unsubscribe":    "<https://example.com/u/4f2a>, <mailto:unsubscribe@example.com?subject=4f2a>",
			},
			sender: "news@example.com",
		},
		{
			name: "bulk without unsubscribe gets the tenant's", file: "plain-bulk.eml", tenant: "example",
			want: map[string]string{
				"List-Unsubscribe":      "<https://example.com/unsubscribe>, <mailto:unsubscribe@example.com?subject=unsubscribe>",
				"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
				"Feedback-ID":           "example:newsletter:corriere",
			},
			sender: "club@example.com",
		},
		{
			name: "transactional stays lean", file: "transactional.eml", tenant: "example",
			want: map[string]string{
				"Feedback-ID":      "example:transactional:corriere",
				"Precedence":       "",
				"List-Unsubscribe": "",
				"X-Campaign-Id":    "",
			},
			sender: "noreply@example.com",
		},
		{
			name: "re-enveloping", file: "prescription.eml", tenant: "clinic",
			want: map[string]string{
				"Sender":      "bounces@bounces.clinic.example",
				"Reply-To":    "Dr. Elena Conti <elena.conti@studio-conti.it>",
				"From":        "Dr. Elena Conti <elena.conti@studio-conti.it>",
				"Feedback-ID": "prescriptions:clinic:critical:corriere",
			},
			sender: "bounces@bounces.clinic.example", author: "elena.conti@studio-conti.it",
		},
		{
			name: "declared class header removed", file: "declared-personal.eml", tenant: "",
			want:   map[string]string{"X-Corriere-Class": "", "Feedback-ID": "personal:corriere"},
			sender: "elena.conti@studio-conti.it",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loadMessage(t, tt.file, tt.tenant)
			if tt.file == "plain-bulk.eml" {
				m.Class = message.Newsletter
			}
			c, err := e.Classify(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			m.Class, m.Campaign, m.Priority = c.Class, c.Campaign, c.Priority
			if err := e.Rewrite(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got := m.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if m.Sender != tt.sender || m.Author != tt.author {
				t.Errorf("sender, author = %q, %q; want %q, %q", m.Sender, m.Author, tt.sender, tt.author)
			}
			if _, _, err := message.Parse(m.Bytes()); err != nil {
				t.Errorf("rewritten message does not parse: %v", err)
			}
		})
	}
}

func TestRewriteKeepsFieldNameSpelling(t *testing.T) {
	t.Parallel()
	e := defaultEngine(t, Options{})
	m := loadMessage(t, "transactional.eml", "example")
	m.Class = message.Transactional
	if err := e.Rewrite(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m.HeaderBytes()), "\r\nFeedback-ID: example:transactional:corriere\r\n") &&
		!strings.HasPrefix(string(m.HeaderBytes()), "Feedback-ID: ") {
		t.Errorf("Feedback-ID not written as spelled in the script:\n%s", m.HeaderBytes())
	}
}

func TestProvider(t *testing.T) {
	t.Parallel()
	e := defaultEngine(t, Options{})
	tests := []struct{ mx, want string }{
		{"gmail-smtp-in.l.google.com", "gmail"},
		{"ALT1.ASPMX.L.GOOGLE.COM.", "gmail"}, // a Google Workspace domain
		{"example-com.mail.protection.outlook.com", "microsoft"},
		{"hotmail-com.olc.protection.outlook.com", "microsoft"},
		{"mta5.am0.yahoodns.net", "yahoo"},
		{"mx-aol.mail.gm0.yahoodns.net", "yahoo"},
		{"mx01.mail.icloud.com", "icloud"},
		{"smtp-in.libero.it", "libero"},
		{"mx.virgilio.it", "virgilio"},
		{"mx.alice.it", "tim"},
		{"mx.aruba.it", "aruba"},
		{"mx00.gmx.net", "gmx"},
		{"mx-ha03.web.de", "gmx"},
		{"smtp-in.orange.fr", "orange"},
		{"mx1.example.net", "example.net"},
		{"mail.example.co.uk", "example.co.uk"},
		{"google.com", "google.com"}, // "*.google.com" needs a label before the suffix
	}
	for _, tt := range tests {
		if got := e.Provider(tt.mx); got != tt.want {
			t.Errorf("Provider(%q) = %q, want %q", tt.mx, got, tt.want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"mx*.libero.it", "mx1.libero.it", true},
		{"mx*.libero.it", "smtp-in.libero.it", false},
		{"*.mail.*.com", "a.mail.b.com", true},
		{"*", "anything", true},
		{"exact.host", "exact.host", true},
		{"exact.host", "exact.hostx", false},
		{"a*b*c", "abbbc", true},
		{"a*b*c", "abbbd", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// delivery builds the Delivery route sees for a classified message.
func delivery(m *message.Message, rcpt, provider string) *policy.Delivery {
	return &policy.Delivery{Message: m, Recipient: rcpt, Domain: rcpt[strings.IndexByte(rcpt, '@')+1:], Provider: provider}
}

func TestRouteDefaultPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	counters := &memCounters{}
	e := defaultEngine(t, Options{Sources: threeSources, Counters: counters})
	msg := func(file string, class message.Class) *message.Message {
		m := loadMessage(t, file, "example")
		m.Class = class
		return m
	}

	t.Run("same kind, sender and provider: same IP", func(t *testing.T) {
		first, err := e.Route(ctx, delivery(msg("transactional.eml", message.Transactional), "a@gmail.com", "gmail"))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			rt, err := e.Route(ctx, delivery(msg("transactional.eml", message.Transactional), fmt.Sprintf("r%d@gmail.com", i), "gmail"))
			if err != nil {
				t.Fatal(err)
			}
			if rt != first {
				t.Fatalf("route changed: %+v then %+v", first, rt)
			}
		}
		if first.Pool != "transactional" || first.Source == "" || first.Helo == "" {
			t.Errorf("route = %+v, want the transactional pool with a source and its EHLO name", first)
		}
	})

	t.Run("classes on different IPs", func(t *testing.T) {
		seen := map[string]message.Class{}
		for _, c := range []struct {
			file  string
			class message.Class
		}{{"newsletter.eml", message.Newsletter}, {"transactional.eml", message.Transactional}, {"personal.eml", message.Personal}} {
			rt, err := e.Route(ctx, delivery(msg(c.file, c.class), "x@libero.it", "libero"))
			if err != nil {
				t.Fatal(err)
			}
			if other, dup := seen[rt.Source]; dup {
				t.Errorf("%s and %s both leave from %s", other, c.class, rt.Source)
			}
			seen[rt.Source] = c.class
		}
	})

	t.Run("unhealthy IP without reserve stays", func(t *testing.T) {
		m := msg("transactional.eml", message.Transactional)
		before, _ := e.Route(ctx, delivery(m, "a@yahoo.it", "yahoo"))
		counters.set(before.Source, "yahoo", policy.Counts{Attempted: 100, Deferred: 80})
		after, err := e.Route(ctx, delivery(m, "a@yahoo.it", "yahoo"))
		if err != nil || after != before {
			t.Errorf("route = %+v, %v; want %+v (no reserve configured)", after, err, before)
		}
	})
}

func TestRouteReserveFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	counters := &memCounters{}
	scripts, rules := policyDirs(t, map[string]string{"rules/pools.lua": `
return {
  pools = {
    transactional = { ips = { { ip = "192.0.2.10", helo = "out10.mta.example.net" } } },
    bulk = { ips = { { ip = "192.0.2.11", helo = "out11.mta.example.net" } } },
  },
  reserve = { { ip = "198.51.100.20", helo = "spare20.mta.example.net" } },
  classes = { critical = "transactional", transactional = "transactional", personal = "transactional", newsletter = "bulk" },
  health = { window = "5m", min_attempts = 50, max_deferral_rate = 0.3, max_bounce_rate = 0.1 },
  warmup = { ["198.51.100.20"] = { per_hour = 100, connections = 1 } },
}`})
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, Counters: counters})
	m := loadMessage(t, "transactional.eml", "example")
	m.Class = message.Transactional
	d := delivery(m, "a@gmail.com", "gmail")

	tests := []struct {
		name   string
		counts policy.Counts
		want   policy.Route
	}{
		{"healthy", policy.Counts{Attempted: 500, Deferred: 10}, policy.Route{Pool: "transactional", Source: "192.0.2.10", Helo: "out10.mta.example.net"}},
		{"too few attempts to judge", policy.Counts{Attempted: 10, Deferred: 10}, policy.Route{Pool: "transactional", Source: "192.0.2.10", Helo: "out10.mta.example.net"}},
		{"deferrals", policy.Counts{Attempted: 100, Deferred: 40}, policy.Route{Pool: "reserve", Source: "198.51.100.20", Helo: "spare20.mta.example.net"}},
		{"bounces", policy.Counts{Attempted: 100, Bounced: 20}, policy.Route{Pool: "reserve", Source: "198.51.100.20", Helo: "spare20.mta.example.net"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counters.set("192.0.2.10", "gmail", tt.counts)
			rt, err := e.Route(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if rt != tt.want {
				t.Errorf("Route = %+v, want %+v", rt, tt.want)
			}
		})
	}

	// The reserve IP is warming up: its caps lower the provider's limits.
	l, err := e.Shape(ctx, "gmail", "198.51.100.20")
	if err != nil {
		t.Fatal(err)
	}
	if l.MaxConnections != 1 || l.PerHour != 100 || l.PerMinute != 1200 {
		t.Errorf("Shape(gmail, reserve) = %+v, want warm-up caps over Gmail's limits", l)
	}
}

func TestRouteWithoutSources(t *testing.T) {
	t.Parallel()
	e := defaultEngine(t, Options{})
	m := loadMessage(t, "transactional.eml", "example")
	m.Class = message.Transactional
	rt, err := e.Route(context.Background(), delivery(m, "a@gmail.com", "gmail"))
	if err != nil {
		t.Fatal(err)
	}
	if rt != (policy.Route{Pool: "transactional"}) {
		t.Errorf("Route = %+v, want the pool and no source", rt)
	}
}

func TestShapeDefaultPolicy(t *testing.T) {
	t.Parallel()
	e := defaultEngine(t, Options{Sources: threeSources})
	tests := []struct {
		provider, source string
		want             policy.Limits
	}{
		{"gmail", "192.0.2.10", policy.Limits{MaxConnections: 20, MaxMessagesPerConnection: 100, MaxRecipientsPerMessage: 100, PerMinute: 1200, Burst: 100}},
		{"libero", "", policy.Limits{MaxConnections: 2, MaxMessagesPerConnection: 10, MaxRecipientsPerMessage: 10, PerMinute: 60, PerHour: 2000, Burst: 5, CriticalReserve: policy.DefaultCriticalReserve}},
		{"example.net", "192.0.2.11", policy.Limits{MaxConnections: 5, MaxMessagesPerConnection: 100, MaxRecipientsPerMessage: 50, PerMinute: 300}},
	}
	for _, tt := range tests {
		l, err := e.Shape(context.Background(), tt.provider, tt.source)
		if err != nil {
			t.Fatal(err)
		}
		if l != tt.want {
			t.Errorf("Shape(%s, %q) = %+v, want %+v", tt.provider, tt.source, l, tt.want)
		}
	}
}

// TestShapeThrottleSettings: suspend_delay, recovery_interval and
// recovery_step reach the limits as written, and stay zero (the queue's
// defaults) when absent.
func TestShapeThrottleSettings(t *testing.T) {
	providers := readRepoFile(t, "rules/providers.lua")
	base := policy.Limits{MaxConnections: 2, MaxMessagesPerConnection: 10, MaxRecipientsPerMessage: 10, PerMinute: 60, PerHour: 2000, Burst: 5, CriticalReserve: policy.DefaultCriticalReserve}
	tests := []struct {
		name, fields string
		want         func(*policy.Limits)
	}{
		{"absent", "", func(*policy.Limits) {}},
		{"strings", `suspend_delay = "2m", recovery_interval = "90s", recovery_step = 1.5,`, func(l *policy.Limits) {
			l.SuspendDelay, l.RecoveryInterval, l.RecoveryStep = 2*time.Minute, 90*time.Second, 1.5
		}},
		{"seconds", `suspend_delay = 600, recovery_interval = 5,`, func(l *policy.Limits) {
			l.SuspendDelay, l.RecoveryInterval = 10*time.Minute, 5*time.Second
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scripts, rules := policyDirs(t, map[string]string{
				"rules/providers.lua": replaceOnce(t, providers, "per_hour = 2000,", "per_hour = 2000, "+tt.fields),
			})
			e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules})
			l, err := e.Shape(context.Background(), "libero", "")
			if err != nil {
				t.Fatal(err)
			}
			want := base
			tt.want(&want)
			if l != want {
				t.Errorf("Shape = %+v, want %+v", l, want)
			}
		})
	}
}

func TestOnResponseDefaultPolicy(t *testing.T) {
	t.Parallel()
	e := defaultEngine(t, Options{})
	tests := []struct {
		name     string
		provider string
		stage    policy.Stage
		reply    *reply.Reply
		network  bool
		want     policy.Verdict
	}{
		{"accepted", "gmail", policy.StageData, reply.New(250, "2.0.0", "OK 1717400000 a1si123"), false,
			policy.Verdict{Action: policy.Deliver, Scope: policy.ScopeRecipient}},
		{"gmail rate", "gmail", policy.StageData, reply.New(421, "4.7.28", "[192.0.2.10] Our system has detected an unusual rate of unsolicited mail originating from your IP address."), false,
			policy.Verdict{Action: policy.Suspend, Delay: time.Hour, Category: "speeding", Scope: policy.ScopeSource, RateFactor: 0.5}},
		{"microsoft block list", "microsoft", policy.StageRcpt, reply.New(550, "5.7.1", "Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150)."), false,
			policy.Verdict{Action: policy.Suspend, Delay: 6 * time.Hour, Category: "blocked", Scope: policy.ScopeSource}},
		{"microsoft throttling", "microsoft", policy.StageRcpt, reply.New(451, "4.7.650", "The mail server [192.0.2.10] has been temporarily rate limited due to IP reputation. (S775)"), false,
			policy.Verdict{Action: policy.Suspend, Delay: time.Hour, Category: "speeding", Scope: policy.ScopeSource, RateFactor: 0.5}},
		{"yahoo TSS04", "yahoo", policy.StageConnect, reply.New(421, "4.7.0", "[TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints"), false,
			policy.Verdict{Action: policy.Suspend, Delay: time.Hour, Category: "speeding", Scope: policy.ScopeSource, RateFactor: 0.5}},
		{"too many connections at connect", "libero", policy.StageConnect, reply.New(421, "", "Too many connections from your IP"), false,
			policy.Verdict{Action: policy.Suspend, Delay: 5 * time.Minute, Category: "toomanyconn", Scope: policy.ScopeSource}},
		{"orange", "orange", policy.StageConnect, reply.New(421, "", "mwinf5c21 ME Trop de connexions, veuillez verifier votre configuration. Too many connections, slow down. OFR005_104 [104]"), false,
			policy.Verdict{Action: policy.Suspend, Delay: 10 * time.Minute, Category: "toomanyconn", Scope: policy.ScopeSource}},
		{"greylisting", "example.net", policy.StageRcpt, reply.New(450, "4.2.0", "<x@example.net>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.net.html"), false,
			policy.Verdict{Action: policy.Retry, Delay: 5 * time.Minute, Scope: policy.ScopeRecipient}},
		{"user unknown", "gmail", policy.StageRcpt, reply.New(550, "5.1.1", "The email account that you tried to reach does not exist."), false,
			policy.Verdict{Action: policy.Bounce, Category: "userunknown", Scope: policy.ScopeRecipient, Hard: true}},
		{"mailbox full, permanent", "libero", policy.StageRcpt, reply.New(552, "5.2.2", "Mailbox full"), false,
			policy.Verdict{Action: policy.Bounce, Category: "mailboxfull", Scope: policy.ScopeRecipient}},
		{"mailbox full, temporary", "libero", policy.StageRcpt, reply.New(452, "4.2.2", "Mailbox full"), false,
			policy.Verdict{Action: policy.Retry, Category: "mailboxfull", Scope: policy.ScopeRecipient}},
		{"network failure", "gmail", policy.StageConnect, reply.New(421, "4.4.1", "dial tcp 192.0.2.99:25: connection timed out"), true,
			policy.Verdict{Action: policy.Retry, Category: "networkerror", Scope: policy.ScopeRecipient}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := e.OnResponse(context.Background(), &policy.Attempt{
				Stage: tt.stage, Reply: tt.reply, Network: tt.network, Recipient: "x@example.net",
				Tenant: "example", Class: message.Transactional, Provider: tt.provider, Source: "192.0.2.10",
			})
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.Category == "" {
				v.Category = "" // left to the bounce rules
			}
			if v != tt.want {
				t.Errorf("OnResponse = %+v, want %+v", v, tt.want)
			}
		})
	}
}

func TestOnResponseBlockedAtConnectSuspendsTheIP(t *testing.T) {
	t.Parallel()
	e := defaultEngine(t, Options{})
	a := &policy.Attempt{Stage: policy.StageConnect, Provider: "example.net", Source: "192.0.2.10",
		Reply: reply.New(554, "5.7.1", "Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org")}
	v, err := e.OnResponse(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if v.Action != policy.Suspend || v.Scope != policy.ScopeSource {
		t.Errorf("OnResponse at connect = %+v, want the source suspended, not the recipient bounced", v)
	}
	a.Stage = policy.StageData
	if v, _ := e.OnResponse(context.Background(), a); v.Action != policy.Bounce {
		t.Errorf("OnResponse after DATA = %+v, want a bounce", v)
	}
}

func TestOnBounceDefaultPolicy(t *testing.T) {
	t.Parallel()
	e := defaultEngine(t, Options{})
	tests := []struct {
		name   string
		report policy.BounceReport
		want   policy.BounceVerdict
	}{
		{"user unknown", policy.BounceReport{Kind: "dsn", Recipient: "x@libero.it", Action: "failed", Status: "5.1.1", ReplyCode: 550,
			Diagnostic: "smtp; 550 5.1.1 <x@libero.it>: Recipient address rejected: User unknown"},
			policy.BounceVerdict{Category: "userunknown", Hard: true}},
		{"mailbox full", policy.BounceReport{Kind: "dsn", Recipient: "x@libero.it", Action: "failed", Status: "5.2.2", ReplyCode: 552,
			Diagnostic: "smtp; 552 5.2.2 Mailbox full"},
			policy.BounceVerdict{Category: "mailboxfull", Hard: false}},
		{"complaint", policy.BounceReport{Kind: "arf", Recipient: "x@yahoo.com", FeedbackType: "abuse"},
			policy.BounceVerdict{Category: "feedback", Hard: true}},
		{"out of office", policy.BounceReport{Kind: "autoreply", Recipient: "x@gmail.com", Subject: "Out of office"},
			policy.BounceVerdict{Category: "vacation", Hard: false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := e.OnBounce(context.Background(), &tt.report)
			if err != nil {
				t.Fatal(err)
			}
			if v != tt.want {
				t.Errorf("OnBounce = %+v, want %+v", v, tt.want)
			}
		})
	}
}

func TestLookupTenants(t *testing.T) {
	t.Parallel()
	e := defaultEngine(t, Options{})
	ex, ok := e.Lookup("example")
	if !ok {
		t.Fatal("tenant example not found")
	}
	if err := ex.CheckPassword("corriere-demo"); err != nil {
		t.Errorf("example's documented demo password: %v", err)
	}
	if !ex.MaySend("example.com") || ex.MaySend("elsewhere.net") || ex.Reenvelope || ex.SuppressionMode != "reject" {
		t.Errorf("example = %+v", ex)
	}
	clinic, ok := e.Lookup("clinic")
	if !ok || !clinic.Reenvelope || clinic.SuppressionMode != "drop" || !clinic.MaySend("anything.example") {
		t.Errorf("clinic = %+v, %v", clinic, ok)
	}
	if _, ok := e.Lookup("nobody"); ok {
		t.Error("Lookup(nobody) found a tenant")
	}
}
