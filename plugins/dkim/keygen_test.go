package dkim

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// TestKeygenRoundTrip makes keys as `corriere dkim keygen` does, adds the
// printed rules entry to rules/dkim.lua, publishes the printed zone line, and
// verifies a signature against what DNS would serve.
func TestKeygenRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		opts      KeyOptions
		wantParts int
	}{
		{"RSA-2048", KeyOptions{Domain: "Shop.Test.", Selector: "c2025a"}, 2},
		{"RSA-3072", KeyOptions{Domain: "shop.test", Selector: "c2025b", Algorithm: RSASHA256, Bits: 3072}, 3},
		{"Ed25519", KeyOptions{Domain: "shop.test", Selector: "c2025e", Algorithm: Ed25519SHA256}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := GenerateKey(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if k.RecordName != tc.opts.Selector+"._domainkey.shop.test." {
				t.Errorf("RecordName = %q", k.RecordName)
			}
			parts := SplitTXT(k.Record)
			if len(parts) != tc.wantParts || strings.Join(parts, "") != k.Record {
				t.Errorf("SplitTXT gave %d parts, want %d that join back to the record", len(parts), tc.wantParts)
			}
			for _, p := range parts {
				if len(p) > 255 {
					t.Errorf("a TXT string of %d octets", len(p))
				}
			}
			rr, err := mdns.NewRR(k.ZoneLine(3600))
			if err != nil {
				t.Fatalf("zone line %q: %v", k.ZoneLine(3600), err)
			}
			txt := rr.(*mdns.TXT)
			if strings.Join(txt.Txt, "") != k.Record || txt.Hdr.Name != k.RecordName {
				t.Errorf("zone line publishes %q at %s, want %q", txt.Txt, txt.Hdr.Name, k.Record)
			}

			rules := t.TempDir()
			file := filepath.Join(rules, "keys", k.FileName())
			if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := WriteKeyFile(file, k.PEM); err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("key file mode %v, %v; want 0600", st.Mode().Perm(), err)
			}
			if err := WriteKeyFile(file, k.PEM); !errors.Is(err, fs.ErrExist) {
				t.Errorf("WriteKeyFile over an existing key: %v, want fs.ErrExist", err)
			}
			src := "return {\n  domains = {\n" + k.RulesSnippet(filepath.Join("keys", k.FileName())) + "  },\n}\n"
			if err := os.WriteFile(filepath.Join(rules, FileName), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Load(rules, nil)
			if err != nil {
				t.Fatalf("the printed entry does not load: %v\n%s", err, src)
			}
			m := newMessage(t, testMessage, "")
			if _, err := r.Sign(m); err != nil {
				t.Fatal(err)
			}
			lookup := func(name string) ([]string, error) {
				if mdns.Fqdn(name) != k.RecordName {
					return nil, errors.New("NXDOMAIN")
				}
				return []string{strings.Join(txt.Txt, "")}, nil
			}
			vs := verify(t, m.Bytes(), lookup)
			if len(vs) != 1 || vs[0].Err != nil {
				t.Fatalf("verification: %v", vs[0].Err)
			}
		})
	}
}

func TestKeygenRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts KeyOptions
		err  string
	}{
		{"no domain", KeyOptions{Selector: "s"}, "not a domain name"},
		{"single label", KeyOptions{Domain: "localhost", Selector: "s"}, "not a domain name"},
		{"bad selector", KeyOptions{Domain: "shop.test", Selector: "s 1"}, "not a selector"},
		{"short RSA", KeyOptions{Domain: "shop.test", Selector: "s", Bits: 1024}, "under 2048 bits"},
		{"Ed25519 with bits", KeyOptions{Domain: "shop.test", Selector: "s", Algorithm: Ed25519SHA256, Bits: 256}, "no size"},
		{"unknown algorithm", KeyOptions{Domain: "shop.test", Selector: "s", Algorithm: "rsa-sha1"}, "algorithm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := GenerateKey(tc.opts); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("GenerateKey error = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestSplitTXT(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 510, 511} {
		s := strings.Repeat("a", n)
		parts := SplitTXT(s)
		if strings.Join(parts, "") != s {
			t.Errorf("%d: parts do not join back", n)
		}
		if want := max(1, (n+254)/255); len(parts) != want {
			t.Errorf("%d octets: %d parts, want %d", n, len(parts), want)
		}
	}
}
