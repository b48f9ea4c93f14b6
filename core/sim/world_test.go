package sim

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

const defaultWorld = "../../testdata/sim/world.json"

func TestDefaultWorld(t *testing.T) {
	w, err := LoadWorld(defaultWorld)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range w.Providers {
		names[p.Name] = true
	}
	for _, want := range []string{"gmail", "microsoft", "yahoo", "libero", "tim", "studio-rossi", "nolisting", "tarpit"} {
		if !names[want] {
			t.Errorf("the default world lacks provider %s", want)
		}
	}
	s := startSim(t, w, Options{})

	mx := query(t, s, "gmail.com.", mdns.TypeMX)
	if len(mx.Answer) != 3 {
		t.Fatalf("gmail.com MX %v", mx.Answer)
	}
	if r := query(t, s, "gmial.com.", mdns.TypeMX); r.Rcode != mdns.RcodeNameError {
		t.Errorf("gmial.com rcode %s, want NXDOMAIN", mdns.RcodeToString[r.Rcode])
	}
	if r := query(t, s, "corriere._domainkey.negozio-esempio.it.", mdns.TypeTXT); len(r.Answer) != 1 ||
		!strings.Contains(r.Answer[0].String(), "v=DKIM1") {
		t.Errorf("DKIM record %v", r.Answer)
	}
	c := mustDial(t, s, "127.0.1.1", "127.0.0.2")
	if err := send(c, "news@negozio-esempio.it", []string{"mario.rossi@gmail.com"}, testMessage("default@negozio-esempio.it", "Ciao")); err != nil {
		t.Fatalf("delivery to gmail.com: %v", err)
	}
	if st := s.Stats()["gmail"]; st.Accepted != 1 {
		t.Errorf("gmail stats %+v", st)
	}

	var table bytes.Buffer
	if err := s.Describe(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"gmail-smtp-in.l.google.com", "127.0.7.1 (no listener)", "fatture-noreply.it", s.DNSAddr()} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, table.String())
		}
	}
	table.Reset()
	if err := s.WriteStats(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "1 (127.0.0.2)") {
		t.Errorf("the stats lack gmail's connection:\n%s", table.String())
	}
}

func TestWorldRoundTrip(t *testing.T) {
	w, err := LoadWorld(defaultWorld)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseWorld(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w, back) {
		t.Error("the world changed through JSON")
	}
}

func TestWorldErrors(t *testing.T) {
	const mx = `"domains": [{"name": "a.test", "mx": [{"host": "mx.a.test", "preference": 10, "ip": "127.0.10.1"}]}]`
	tests := []struct {
		name string
		json string
		want string // in the error
	}{
		{"valid", `{"providers": [{"name": "a", ` + mx + `}]}`, ""},
		{"unknown field", `{"providers": [{"name": "a", "greylisting": {}, ` + mx + `}]}`, `unknown field "greylisting"`},
		{"no name", `{"providers": [{` + mx + `}]}`, `provider "#0": name is empty`},
		{"duplicate provider", `{"providers": [{"name": "a", ` + mx + `}, {"name": "a", "domains": [{"name": "b.test", "mx": [{"host": "mx.b.test", "ip": "127.0.10.2"}]}]}]}`, `provider "a": name is used`},
		{"bad style", `{"providers": [{"name": "a", "style": "hotmail", ` + mx + `}]}`, `provider "a": style "hotmail"`},
		{"no domains", `{"providers": [{"name": "a"}]}`, `provider "a": domains is empty`},
		{"no mx", `{"providers": [{"name": "a", "domains": [{"name": "a.test"}]}]}`, `provider "a": domains[0] (a.test): mx is empty`},
		{"ip outside loopback", `{"providers": [{"name": "a", "domains": [{"name": "a.test", "mx": [{"host": "mx.a.test", "ip": "10.0.0.1"}]}]}]}`, `provider "a": domains[0].mx[0] (a.test): ip 10.0.0.1 is not in 127.0.0.0/8`},
		{"ip of the MTA", `{"providers": [{"name": "a", "domains": [{"name": "a.test", "mx": [{"host": "mx.a.test", "ip": "127.0.0.5"}]}]}]}`, `ip 127.0.0.5 is not in 127.0.0.0/8 outside 127.0.0.0/24`},
		{"bad ip", `{"providers": [{"name": "a", "domains": [{"name": "a.test", "mx": [{"host": "mx.a.test", "ip": "127.0.1"}]}]}]}`, `domains[0].mx[0] (a.test): ip:`},
		{"host with two ips", `{"providers": [{"name": "a", "domains": [{"name": "a.test", "mx": [{"host": "mx.a.test", "ip": "127.0.10.1"}]}, {"name": "b.test", "mx": [{"host": "mx.a.test", "ip": "127.0.10.2"}]}]}]}`, `domains[1].mx[0] (b.test): host mx.a.test is defined elsewhere`},
		{"ip of two hosts", `{"providers": [{"name": "a", "domains": [{"name": "a.test", "mx": [{"host": "mx.a.test", "ip": "127.0.10.1"}, {"host": "mx2.a.test", "ip": "127.0.10.1"}]}]}]}`, `ip 127.0.10.1 is already the address of mx.a.test`},
		{"duplicate domain", `{"providers": [{"name": "a", ` + mx + `}], "null_mx": ["a.test"]}`, `null_mx[0]: domain a.test is already defined by provider a`},
		{"bad duration", `{"providers": [{"name": "a", "tarpit": 5, ` + mx + `}]}`, `duration must be a string`},
		{"greylist by", `{"providers": [{"name": "a", "greylist": {"delay": "1s", "by": "net16"}, ` + mx + `}]}`, `provider "a": greylist.by "net16"`},
		{"blocklist at", `{"providers": [{"name": "a", "blocklist": {"ips": ["127.0.0.9"], "at": "data"}, ` + mx + `}]}`, `provider "a": blocklist.at "data"`},
		{"blocklist ip", `{"providers": [{"name": "a", "blocklist": {"ips": ["127.0.0.x"]}, ` + mx + `}]}`, `provider "a": blocklist.ips[0]`},
		{"bounce format", `{"providers": [{"name": "a", "async_bounce": {"prefix": "b", "delay": "1s", "format": "sendmail"}, ` + mx + `}]}`, `provider "a": async_bounce.format "sendmail"`},
		{"bounce prefix", `{"providers": [{"name": "a", "async_bounce": {"delay": "1s"}, ` + mx + `}]}`, `provider "a": async_bounce.prefix is empty`},
		{"complaint rate", `{"providers": [{"name": "a", "complaints": {"rate": 2, "to": "fbl@x.test"}, ` + mx + `}]}`, `provider "a": complaints.rate 2`},
		{"complaint address", `{"providers": [{"name": "a", "complaints": {"rate": 0.1, "to": "nobody"}, ` + mx + `}]}`, `provider "a": complaints.to "nobody"`},
		{"reply kind", `{"providers": [{"name": "a", "replies": {"bounced": "550 5.1.1 x"}, ` + mx + `}]}`, `provider "a": replies: unknown kind "bounced"`},
		{"reply syntax", `{"providers": [{"name": "a", "replies": {"spam": "five fifty"}, ` + mx + `}]}`, `provider "a": replies.spam`},
		{"reply class", `{"providers": [{"name": "a", "replies": {"accepted": "550 5.7.1 no"}, ` + mx + `}]}`, `provider "a": replies.accepted: "550 5.7.1 no" has the wrong class`},
		{"record", `{"records": ["example.test. 300 IN MX ten mx.example.test."]}`, `records[0]: record`},
		{"relative record", `{"records": ["example.test 300 IN A 127.0.0.1"]}`, `records[0]: record "example.test 300 IN A 127.0.0.1": name must be fully qualified`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWorld([]byte(tt.json))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadWorldNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broken.json")
	if err := os.WriteFile(path, []byte(`{"providers": [{"name": ""}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadWorld(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v does not name %s", err, path)
	}
}

func FuzzParseWorld(f *testing.F) {
	f.Add([]byte(`{"providers": [{"name": "a", "domains": [{"name": "a.test", "mx": [{"host": "mx.a.test", "ip": "127.0.10.1"}]}]}]}`))
	f.Add([]byte(`{"providers": [{"name": "a", "style": "gmail", "tarpit": "1s", "greylist": {"delay": "3s", "by": "ip"},
		"blocklist": {"ips": ["127.0.0.9"], "at": "rcpt"}, "recipients": {"unknown_prefix": "unknown"},
		"async_bounce": {"prefix": "b", "delay": "1s", "format": "qmail"}, "complaints": {"rate": 0.5, "to": "f@x.test"},
		"replies": {"spam": "550 5.7.1 no {ip}"},
		"domains": [{"name": "a.test", "mx": [{"host": "mx.a.test", "preference": 5, "ip": "127.0.10.1", "dead": true}]}]}],
		"null_mx": ["n.test"], "nxdomains": ["x.test"], "records": ["a.test. 300 IN TXT \"v=spf1 -all\""]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ParseWorld(data)
		if err != nil {
			return
		}
		if _, err := newReplies(&Provider{Name: "x"}); err != nil {
			t.Fatal(err)
		}
		for i := range w.Providers {
			if _, err := newReplies(&w.Providers[i]); err != nil {
				t.Fatalf("a valid world's replies do not resolve: %v", err)
			}
			_ = w.Providers[i].Summary()
		}
	})
}
