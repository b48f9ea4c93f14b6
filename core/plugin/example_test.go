package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"corriere/core/extension"
	"corriere/core/plugin"
	"corriere/core/reply"
)

// Blocklist is a plugin that refuses recipients at domains its
// configuration section lists.
type Blocklist struct {
	domains []string
}

func init() {
	plugin.Register("example.blocklist", func() any { return new(Blocklist) })
}

// Provision reads the configuration section.
func (b *Blocklist) Provision(ctx *extension.Context) error {
	list, _ := ctx.Config["domains"].(string)
	for _, d := range strings.Fields(list) {
		b.domains = append(b.domains, strings.ToLower(d))
	}
	return nil
}

// Validate refuses an empty list: the plugin would do nothing.
func (b *Blocklist) Validate() error {
	if len(b.domains) == 0 {
		return errors.New("blocklist: no domains")
	}
	return nil
}

// CheckRecipient refuses a recipient at a listed domain.
func (b *Blocklist) CheckRecipient(_ context.Context, _, rcpt string) error {
	_, domain, _ := strings.Cut(rcpt, "@")
	for _, d := range b.domains {
		if domain == d {
			return &extension.Refusal{Reason: "blocklisted", Reply: reply.New(550, "5.7.1", "Recipient domain refused by policy")}
		}
	}
	return nil
}

var (
	_ extension.Provisioner    = (*Blocklist)(nil)
	_ extension.Validator      = (*Blocklist)(nil)
	_ extension.RecipientCheck = (*Blocklist)(nil)
)

// Example shows a plugin from registration to use: the node starts the
// enabled plugins and finds what each extends by type assertion.
func Example() {
	base := extension.Context{Logger: slog.New(slog.DiscardHandler)}
	configs := map[string]map[string]any{"example.blocklist": {"domains": "blocked.example"}}
	ps, err := plugin.Start(context.Background(), []string{"example.blocklist"}, base, configs)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer plugin.Close(ps)
	for _, p := range ps {
		if c, ok := p.(extension.RecipientCheck); ok {
			fmt.Println(c.CheckRecipient(context.Background(), "acme", "someone@blocked.example"))
			fmt.Println(c.CheckRecipient(context.Background(), "acme", "someone@dest.example"))
		}
	}
	// Output:
	// 550 5.7.1 Recipient domain refused by policy
	// <nil>
}
