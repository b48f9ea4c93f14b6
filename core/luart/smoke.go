package luart

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/reply"
)

// smokeRaw is the message every generation is smoke-tested with before it
// may become current.
const smokeRaw = "From: Smoke Test <smoke@example.com>\r\n" +
	"To: Someone <someone@gmail.com>\r\n" +
	"Subject: corriere policy smoke test\r\n" +
	"Message-ID: <smoke@corriere.invalid>\r\n" +
	"Date: Mon, 2 Jun 2025 10:00:00 +0200\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"This message only exercises the policy hooks; it is never sent.\r\n"

// smokeReplies are the replies on_response is smoke-tested with: a success,
// a greylisting, a rate complaint at connect, a user unknown, and a network
// failure.
var smokeReplies = []policy.Attempt{
	{Stage: policy.StageData, Reply: reply.New(250, "2.0.0", "OK queued")},
	{Stage: policy.StageRcpt, Reply: reply.New(450, "4.2.0", "Greylisted, please try again later")},
	{Stage: policy.StageConnect, Reply: reply.New(421, "4.7.0", "Too many connections, slow down")},
	{Stage: policy.StageRcpt, Reply: reply.New(550, "5.1.1", "The email account that you tried to reach does not exist")},
	{Stage: policy.StageConnect, Reply: reply.New(421, "4.4.1", "connection timed out"), Network: true},
}

// smokeBounces are the reports on_bounce is smoke-tested with.
var smokeBounces = []policy.BounceReport{
	{Kind: "dsn", Recipient: "someone@gmail.com", Action: "failed", Status: "5.1.1", ReplyCode: 550,
		Diagnostic: "smtp; 550 5.1.1 user unknown", RemoteMTA: "gmail-smtp-in.l.google.com"},
	{Kind: "arf", Recipient: "someone@gmail.com", FeedbackType: "abuse"},
}

// smoke calls every hook once per tenant that has an override or data
// (and once with no tenant), with the smoke message and a Gmail recipient,
// plus shape for every provider. Any error refuses the generation.
func (g *generation) smoke() error {
	ctx := smokeContext
	tenants := []string{""}
	for name := range g.tenants {
		tenants = append(tenants, name)
	}
	for name := range g.overrides {
		if g.tenants[name] == nil {
			tenants = append(tenants, name)
		}
	}
	sort.Strings(tenants[1:])
	raw := []byte(smokeRaw)
	for _, tn := range tenants {
		h, body, err := message.Parse(raw)
		if err != nil {
			return fmt.Errorf("luart: smoke message: %w", err)
		}
		m := &message.Message{
			ID:       "smoke",
			Envelope: message.Envelope{Sender: "smoke@example.com", Recipients: []message.Recipient{{Addr: "someone@gmail.com"}}},
			Header:   h,
			Body:     body,
			Tenant:   tn,
			Received: g.loadedAt.Add(-time.Second),
		}
		c, err := g.classify(ctx, m)
		if err != nil {
			return smokeError(err, tenantLabel(tn))
		}
		m.Tenant, m.Class, m.Campaign, m.Priority = c.Tenant, c.Class, c.Campaign, c.Priority
		if m.Tenant == "" {
			m.Tenant = tn
		}
		if err := g.rewrite(ctx, m); err != nil {
			return smokeError(err, tenantLabel(tn))
		}
		mx := "gmail-smtp-in.l.google.com"
		d := &policy.Delivery{Message: m, Recipient: "someone@gmail.com", Domain: "gmail.com", Provider: g.provider(mx), MXHost: mx}
		rt, err := g.route(ctx, d)
		if err != nil {
			return smokeError(err, tenantLabel(tn))
		}
		for _, a := range smokeReplies {
			a.Recipient, a.Tenant, a.Class, a.Provider, a.MXHost, a.Source = d.Recipient, tn, m.Class, d.Provider, mx, rt.Source
			if _, err := g.onResponse(ctx, &a); err != nil {
				return smokeError(err, tenantLabel(tn))
			}
		}
	}
	providers := append(g.providers.names(), "example.com")
	for _, p := range providers {
		if _, err := g.shape(ctx, p, ""); err != nil {
			return smokeError(err, "provider "+p)
		}
		for _, s := range g.engine.opts.Sources {
			if _, err := g.shape(ctx, p, s.IP); err != nil {
				return smokeError(err, "provider "+p+", source "+s.IP)
			}
		}
	}
	for _, r := range smokeBounces {
		if _, err := g.onBounce(ctx, &r); err != nil {
			return smokeError(err, "a "+r.Kind+" report")
		}
	}
	return nil
}

func tenantLabel(tenant string) string {
	if tenant == "" {
		return ""
	}
	return "tenant " + tenant
}

// smokeError keeps the position of a smoke-call failure and says which
// call it was.
func smokeError(err error, detail string) error {
	var he *HookError
	if !errors.As(err, &he) {
		return err
	}
	what := "smoke call of " + he.Hook
	if detail != "" {
		what += " for " + detail
	}
	var se *ScriptError
	if errors.As(he.Err, &se) {
		c := *se
		c.Msg += " (" + what + ")"
		return &c
	}
	return fmt.Errorf("%s: %w", what, he.Err)
}
