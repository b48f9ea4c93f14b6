package dkim

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	msgdkim "github.com/emersion/go-msgauth/dkim"
)

const shopRules = `return {
  platform = "platform.test",
  domains = {
    ["platform.test"] = { keys = { { selector = "p1", algorithm = "rsa-sha256", file = "keys/rsa3.pem" } } },
    ["shop.test"] = {
      keys = {
        { selector = "r1", algorithm = "rsa-sha256", file = "keys/rsa1.pem" },
        { selector = "e1", algorithm = "ed25519-sha256", file = "keys/ed1.pem" },
      },
      subdomains = true,
    },
    ["solo-ed.test"] = { keys = { { selector = "e2", algorithm = "ed25519-sha256", file = "keys/ed2.pem" } } },
    ["exact.test"] = { keys = { { selector = "r2", algorithm = "rsa-sha256", file = "keys/rsa2.pem" } } },
    ["acme-only.test"] = {
      keys = { { selector = "a1", algorithm = "ed25519-sha256", file = "keys/ed3.pem" } },
      tenants = { "acme" },
    },
  },
  tenants = {
    acme = { domain = "acme-only.test" },
    bolt = { domain = "bolt.platform.test", keys = { { selector = "b1", algorithm = "ed25519-sha256", file = "keys/ed1.pem" } } },
  },
}`

func TestSignChoosesDomain(t *testing.T) {
	r := loadRules(t, shopRules)
	lookup := dnsOf(r)
	for _, tc := range []struct {
		name, from, tenant, author string
		wantDomain                 string
		wantSelectors              []string
		wantWhy                    string
	}{
		{name: "From domain, RSA and Ed25519", from: "news@shop.test", wantDomain: "shop.test", wantSelectors: []string{"r1", "e1"}, wantWhy: "from"},
		{name: "From domain case and display name", from: `"Shop" <News@SHOP.Test>`, wantDomain: "shop.test", wantSelectors: []string{"r1", "e1"}, wantWhy: "from"},
		{name: "subdomain of a domain that allows them", from: "a@mail.news.shop.test", wantDomain: "shop.test", wantSelectors: []string{"r1", "e1"}, wantWhy: "from"},
		{name: "Ed25519 only", from: "x@solo-ed.test", wantDomain: "solo-ed.test", wantSelectors: []string{"e2"}, wantWhy: "from"},
		{name: "subdomain of an exact-only domain", from: "x@sub.exact.test", wantWhy: "none"},
		{name: "re-enveloped: the platform signs", from: "mario@gmail.example", author: "mario@gmail.example", wantDomain: "platform.test", wantSelectors: []string{"p1"}, wantWhy: "platform"},
		{name: "re-enveloped with a From: domain that has keys", from: "news@shop.test", author: "news@shop.test", wantDomain: "platform.test", wantSelectors: []string{"p1"}, wantWhy: "platform"},
		{name: "tenant fallback to a shared domain", from: "ceo@acme.example", tenant: "acme", wantDomain: "acme-only.test", wantSelectors: []string{"a1"}, wantWhy: "tenant"},
		{name: "tenant's own keys", from: "ceo@bolt.example", tenant: "bolt", wantDomain: "bolt.platform.test", wantSelectors: []string{"b1"}, wantWhy: "tenant"},
		{name: "domain restricted to another tenant", from: "x@acme-only.test", tenant: "bolt", wantDomain: "bolt.platform.test", wantSelectors: []string{"b1"}, wantWhy: "tenant"},
		{name: "domain restricted to this tenant", from: "x@acme-only.test", tenant: "acme", wantDomain: "acme-only.test", wantSelectors: []string{"a1"}, wantWhy: "from"},
		{name: "no key: unsigned", from: "someone@elsewhere.example", tenant: "other", wantWhy: "none"},
		{name: "no From: unsigned", wantWhy: "none"},
		{name: "unparsable From: unsigned", from: "not an address", wantWhy: "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := testMessage
			if tc.from == "" {
				raw = raw[strings.Index(raw, "\r\n")+2:]
			} else {
				raw = strings.Replace(raw, `"Negozio Esempio" <news@shop.test>`, tc.from, 1)
			}
			m := newMessage(t, raw, tc.tenant)
			m.Author = tc.author
			s, err := r.Sign(m)
			if err != nil {
				t.Fatal(err)
			}
			if s.Domain != tc.wantDomain || s.Why != tc.wantWhy || !slices.Equal(s.Selectors, tc.wantSelectors) {
				t.Fatalf("Sign = %+v, want domain %q selectors %v why %q", s, tc.wantDomain, tc.wantSelectors, tc.wantWhy)
			}
			signed := m.Bytes()
			if !bytes.HasSuffix(signed, []byte(raw)) {
				t.Fatalf("the original message did not stay byte-exact below the signatures:\n%s", signed)
			}
			vs := verify(t, signed, lookup)
			if len(vs) != len(tc.wantSelectors) {
				t.Fatalf("%d signatures, want %d:\n%s", len(vs), len(tc.wantSelectors), signed)
			}
			for i, v := range vs {
				if v.Err != nil {
					t.Errorf("signature %d (s=%s): %v", i, tc.wantSelectors[i], v.Err)
				}
				if v.Domain != tc.wantDomain {
					t.Errorf("signature %d: d=%s, want %s", i, v.Domain, tc.wantDomain)
				}
			}
		})
	}
}

func TestSignatureTags(t *testing.T) {
	r := loadRules(t, shopRules)
	m := newMessage(t, testMessage, "")
	if _, err := r.Sign(m); err != nil {
		t.Fatal(err)
	}
	sigs := m.Header.Values("DKIM-Signature")
	if len(sigs) != 2 {
		t.Fatalf("%d signatures, want 2", len(sigs))
	}
	for i, want := range []string{"a=rsa-sha256", "a=ed25519-sha256"} {
		tags := map[string]string{}
		for _, tag := range strings.Split(strings.Join(strings.Fields(sigs[i]), ""), ";") {
			k, v, _ := strings.Cut(tag, "=")
			tags[k] = v
		}
		for _, tag := range []string{want, "c=relaxed/relaxed", "d=shop.test"} {
			k, v, _ := strings.Cut(tag, "=")
			if tags[k] != v {
				t.Errorf("signature %d: %s=%s, want %s", i, k, tags[k], v)
			}
		}
		// From, To, Subject and List-Unsubscribe are present once and
		// oversigned; Cc is absent and oversigned; Date is signed once.
		h := tags["h"]
		count := map[string]int{}
		for _, f := range strings.Split(h, ":") {
			count[strings.ToLower(f)]++
		}
		for f, n := range map[string]int{"from": 2, "to": 2, "subject": 2, "list-unsubscribe": 2,
			"list-unsubscribe-post": 2, "cc": 1, "date": 1, "message-id": 1, "feedback-id": 1, "list-id": 0, "received": 0} {
			if count[f] != n {
				t.Errorf("signature %d: h= has %s %d times, want %d (h=%s)", i, f, count[f], n, h)
			}
		}
	}
}

// TestAfterSigning checks what a change on the way does to the signatures:
// an added copy of an oversigned field breaks them, a relay's trace fields
// and whitespace changes do not.
func TestAfterSigning(t *testing.T) {
	r := loadRules(t, shopRules)
	lookup := dnsOf(r)
	m := newMessage(t, testMessage, "")
	if _, err := r.Sign(m); err != nil {
		t.Fatal(err)
	}
	signed := string(m.Bytes())
	sigEnd := strings.Index(signed, "From: ")
	sigs, rest := signed[:sigEnd], signed[sigEnd:]
	for _, tc := range []struct {
		name   string
		edit   func() string
		passes bool
	}{
		{"unchanged", func() string { return signed }, true},
		{"Received added on top", func() string {
			return "Received: from mta.test by mx.test; Tue, 25 Nov 2025 10:00:01 +0100\r\n" + signed
		}, true},
		{"List-Id added (signed only when present)", func() string { return sigs + "List-Id: <x.shop.test>\r\n" + rest }, true},
		{"header whitespace refolded (relaxed)", func() string {
			return strings.Replace(signed, "To: Mario Rossi <mario.rossi@gmail.example>", "To:   Mario Rossi\r\n\t<mario.rossi@gmail.example>", 1)
		}, true},
		{"trailing blank lines added to the body (relaxed)", func() string { return signed + "\r\n\r\n" }, true},
		{"second From: added on top", func() string { return sigs + "From: ceo@bank.example\r\n" + rest }, false},
		{"second From: added at the bottom", func() string {
			return strings.Replace(signed, "\r\n\r\n", "\r\nFrom: ceo@bank.example\r\n\r\n", 1)
		}, false},
		{"Subject added", func() string { return sigs + "Subject: Your account is locked\r\n" + rest }, false},
		{"List-Unsubscribe added", func() string { return sigs + "List-Unsubscribe: <https://evil.example/>\r\n" + rest }, false},
		{"Cc added (absent and oversigned)", func() string { return sigs + "Cc: victim@example.org\r\n" + rest }, false},
		{"Subject changed", func() string {
			return strings.Replace(signed, "Subject: =?UTF-8?Q?Saldi", "Subject: =?UTF-8?Q?Sconti", 1)
		}, false},
		{"body changed", func() string { return strings.Replace(signed, "fino al 50%", "fino al 90%", 1) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := verify(t, []byte(tc.edit()), lookup)
			if len(vs) != 2 {
				t.Fatalf("%d signatures, want 2", len(vs))
			}
			for i, v := range vs {
				if (v.Err == nil) != tc.passes {
					t.Errorf("signature %d: err = %v, want pass = %v", i, v.Err, tc.passes)
				}
			}
		})
	}
}

// TestHeaderEditsBeforeSigning signs a message after the kind of edits that
// the rewrite hook makes, and checks that the signature covers the edited
// message.
func TestHeaderEditsBeforeSigning(t *testing.T) {
	r := loadRules(t, shopRules)
	m := newMessage(t, testMessage, "")
	m.Header.Del("Feedback-ID")
	m.Header.Set("Feedback-ID", "autumn:shop:newsletter:corriere")
	m.Header.Set("Reply-To", "Negozio Esempio <help@shop.test>")
	m.Header.Add("X-Campaign-Id", "autumn")
	if _, err := r.Sign(m); err != nil {
		t.Fatal(err)
	}
	signed := m.Bytes()
	for i, v := range verify(t, signed, dnsOf(r)) {
		if v.Err != nil {
			t.Errorf("signature %d: %v", i, v.Err)
		}
		if !slices.ContainsFunc(v.HeaderKeys, func(k string) bool { return strings.EqualFold(k, "Reply-To") }) {
			t.Errorf("signature %d does not cover the Reply-To the rewrite added: h=%v", i, v.HeaderKeys)
		}
	}
	tampered := bytes.Replace(signed, []byte("autumn:shop"), []byte("winter:shop"), 1)
	for i, v := range verify(t, tampered, dnsOf(r)) {
		if v.Err == nil {
			t.Errorf("signature %d passes with a changed Feedback-ID", i)
		}
	}
}

func TestRotation(t *testing.T) {
	for _, tc := range []struct {
		name, active string
		want         []string
	}{
		{"old selector active, new one waiting", `active = { "r1" },`, []string{"r1"}},
		{"new selector active", `active = { "r2" },`, []string{"r2"}},
		{"both during the switch", `active = { "r2", "r1" },`, []string{"r2", "r1"}},
		{"RSA and Ed25519 with RSA on top", `active = { "e1", "r2" },`, []string{"r2", "e1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := loadRules(t, `return { domains = { ["shop.test"] = {
        keys = {
          { selector = "r1", algorithm = "rsa-sha256", file = "keys/rsa1.pem" },
          { selector = "r2", algorithm = "rsa-sha256", file = "keys/rsa2.pem" },
          { selector = "e1", algorithm = "ed25519-sha256", file = "keys/ed1.pem" },
        },
        `+tc.active+`
      } } }`)
			m := newMessage(t, testMessage, "")
			s, err := r.Sign(m)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Selectors, tc.want) {
				t.Fatalf("selectors %v, want %v", s.Selectors, tc.want)
			}
			for i, v := range verify(t, m.Bytes(), dnsOf(r)) {
				if v.Err != nil {
					t.Errorf("signature %d: %v", i, v.Err)
				}
			}
			var active []string
			for _, k := range r.Keys() {
				if k.Active {
					active = append(active, k.Selector)
				}
			}
			slices.Sort(active)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(active, want) {
				t.Errorf("Keys() reports %v active, want %v", active, want)
			}
		})
	}
}

// failingSigner is a key whose signing fails, as a hardware token or a
// corrupted key might.
type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("token removed")
}

func TestSignFailureLeavesMessageUnchanged(t *testing.T) {
	r := loadRules(t, shopRules)
	d := r.domains["shop.test"]
	broken := *d.active[1]
	broken.signer = failingSigner{broken.signer}
	d.active = []*key{d.active[0], &broken}
	m := newMessage(t, testMessage, "")
	before := m.Bytes()
	if _, err := r.Sign(m); err == nil || !strings.Contains(err.Error(), "token removed") {
		t.Fatalf("Sign error = %v, want the key's failure", err)
	}
	if !bytes.Equal(m.Bytes(), before) {
		t.Error("a failed signing changed the message")
	}
}

func TestBareLFAndEmptyBody(t *testing.T) {
	r := loadRules(t, shopRules)
	for name, raw := range map[string]string{
		"empty body":       "From: a@shop.test\r\nSubject: x\r\n\r\n",
		"no body at all":   "From: a@shop.test\r\nSubject: x\r\n",
		"bare LF":          "From: a@shop.test\nSubject: x\n\nline one\nline two\n",
		"8-bit UTF-8 body": "From: a@shop.test\r\nSubject: x\r\n\r\nPerché è così \xe2\x82\xac\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			m := newMessage(t, raw, "")
			if _, err := r.Sign(m); err != nil {
				t.Fatal(err)
			}
			for i, v := range verify(t, m.Bytes(), dnsOf(r)) {
				if v.Err != nil {
					t.Errorf("signature %d: %v", i, v.Err)
				}
			}
		})
	}
}

func TestVerificationNeedsThePublishedKey(t *testing.T) {
	r := loadRules(t, shopRules)
	other := loadRules(t, `return { domains = { ["shop.test"] = { keys = {
    { selector = "r1", algorithm = "rsa-sha256", file = "keys/rsa2.pem" },
    { selector = "e1", algorithm = "ed25519-sha256", file = "keys/ed2.pem" } } } } }`)
	m := newMessage(t, testMessage, "")
	if _, err := r.Sign(m); err != nil {
		t.Fatal(err)
	}
	for i, v := range verify(t, m.Bytes(), dnsOf(other)) {
		if v.Err == nil || msgdkim.IsTempFail(v.Err) {
			t.Errorf("signature %d verified with another key's record: %v", i, v.Err)
		}
	}
}
