package dns

import (
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestParseAnswer(t *testing.T) {
	soa := func(ttl, minimum uint32) mdns.RR {
		return &mdns.SOA{Hdr: mdns.RR_Header{Name: "test.", Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: ttl},
			Ns: "ns.test.", Mbox: "h.test.", Minttl: minimum}
	}
	rr := func(t *testing.T, s string) mdns.RR {
		t.Helper()
		r, err := mdns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name     string
		qtype    uint16
		rcode    int
		answer   []string
		ns       []mdns.RR
		wantMX   []MX
		wantNull bool
		wantStrs []string
		nxdomain bool
		ttl      time.Duration
	}{
		{name: "a.test", qtype: mdns.TypeMX, answer: []string{"a.test. 100 IN MX 10 B.test.", "a.test. 50 IN MX 5 c.test."},
			wantMX: []MX{{"c.test", 5}, {"b.test", 10}}, ttl: 50 * time.Second},
		{name: "a.test", qtype: mdns.TypeMX, answer: []string{"A.TEST. 100 IN MX 0 ."}, wantNull: true, ttl: 100 * time.Second},
		{name: "a.test", qtype: mdns.TypeMX, answer: []string{"a.test. 100 IN MX 0 .", "a.test. 100 IN MX 0 ."}, wantNull: true, ttl: 100 * time.Second},
		{name: "a.test", qtype: mdns.TypeMX, answer: []string{"a.test. 100 IN MX 0 .", "a.test. 100 IN MX 1 b.test."},
			wantMX: []MX{{"b.test", 1}}, ttl: 100 * time.Second},
		{name: "a.test", qtype: mdns.TypeMX, answer: []string{"other.test. 100 IN MX 1 b.test."}, ns: []mdns.RR{soa(300, 30)}, ttl: 30 * time.Second},
		{name: "a.test", qtype: mdns.TypeMX, answer: []string{"a.test. 100 CH MX 1 b.test."}, ttl: defaultNegTTL},
		{name: "a.test", qtype: mdns.TypeMX, answer: []string{"a.test. 20 IN CNAME b.test.", "b.test. 100 IN CNAME c.test.", "c.test. 100 IN MX 1 mx.test."},
			wantMX: []MX{{"mx.test", 1}}, ttl: 20 * time.Second},
		{name: "loop.test", qtype: mdns.TypeMX, answer: []string{"loop.test. 20 IN CNAME loop2.test.", "loop2.test. 20 IN CNAME loop.test."}, ttl: defaultNegTTL},
		{name: "a.test", qtype: mdns.TypeMX, rcode: mdns.RcodeNameError, ns: []mdns.RR{soa(30, 300)}, nxdomain: true, ttl: 30 * time.Second},
		{name: "a.test", qtype: mdns.TypeMX, rcode: mdns.RcodeNameError, ns: []mdns.RR{soa(1, 1)}, nxdomain: true, ttl: minTTL},
		{name: "a.test", qtype: mdns.TypeMX, ns: []mdns.RR{soa(86400, 86400)}, ttl: maxNegativeTTL},
		{name: "a.test", qtype: mdns.TypeTXT, answer: []string{`a.test. 0 IN TXT "a" "b"`, `a.test. 0 IN TXT "c"`}, wantStrs: []string{"ab", "c"}, ttl: minTTL},
		{name: "a.test", qtype: mdns.TypePTR, answer: []string{"a.test. 99999999 IN PTR X.test.", "a.test. 9 IN PTR x.test."}, wantStrs: []string{"x.test"}, ttl: 9 * time.Second},
		{name: "a.test", qtype: mdns.TypePTR, answer: []string{"a.test. 99999999 IN PTR X.test."}, wantStrs: []string{"x.test"}, ttl: maxPositiveTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+strings.Join(tt.answer, ","), func(t *testing.T) {
			m := new(mdns.Msg)
			m.SetQuestion(tt.name+".", tt.qtype)
			m.Rcode = tt.rcode
			for _, s := range tt.answer {
				m.Answer = append(m.Answer, rr(t, s))
			}
			m.Ns = tt.ns
			a := parseAnswer(m, key{tt.name, tt.qtype}, "s")
			if !slices.Equal(a.mx, tt.wantMX) || a.nullMX != tt.wantNull || !slices.Equal(a.strs, tt.wantStrs) || a.nxdomain != tt.nxdomain || a.ttl != tt.ttl {
				t.Errorf("parseAnswer = %+v", a)
			}
		})
	}
}

// FuzzParseAnswer feeds arbitrary replies, as a hostile server could send,
// to parseAnswer.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range [][]string{
		{"a.test. 100 IN MX 10 b.test.", "a.test. 100 IN MX 0 ."},
		{"a.test. 20 IN CNAME a.test."},
		{"a.test. 20 IN A 192.0.2.1", "a.test. 20 IN AAAA 2001:db8::1"},
		{`a.test. 20 IN TXT "x" "y"`},
	} {
		m := new(mdns.Msg)
		m.SetQuestion("a.test.", mdns.TypeMX)
		for _, r := range s {
			rr, _ := mdns.NewRR(r)
			m.Answer = append(m.Answer, rr)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	qtypes := []uint16{mdns.TypeMX, mdns.TypeA, mdns.TypeAAAA, mdns.TypeTXT, mdns.TypePTR}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(mdns.Msg)
		if m.Unpack(b) != nil {
			return
		}
		for _, qt := range qtypes {
			a := parseAnswer(m, key{"a.test", qt}, "s")
			if a.ttl < minTTL || a.ttl > maxPositiveTTL {
				t.Fatalf("ttl %v out of bounds", a.ttl)
			}
			if a.nullMX && len(a.mx) > 0 {
				t.Fatal("null MX with hosts")
			}
			if !slices.IsSortedFunc(a.mx, func(x, y MX) int { return int(x.Pref) - int(y.Pref) }) {
				t.Fatalf("MX not sorted: %v", a.mx)
			}
			for _, mx := range a.mx {
				if mx.Host == "" || strings.HasSuffix(mx.Host, ".") || strings.ToLower(mx.Host) != mx.Host {
					t.Fatalf("MX host %q not normalised", mx.Host)
				}
			}
		}
	})
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
		err      string
	}{
		{in: "Example.ORG.", want: "example.org"},
		{in: "_dmarc.example.org", want: "_dmarc.example.org"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "localhost", want: "localhost"},
		{in: "", err: "empty name"},
		{in: ".", err: "empty name"},
		{in: "a..b", err: "empty label"},
		{in: "a b.test", err: `character ' ' not allowed`},
		{in: "[192.0.2.1]", err: `character '[' not allowed`},
		{in: strings.Repeat("a", 64) + ".test", err: "label longer than 63 octets"},
		{in: strings.Repeat("abcdefg.", 32) + "test", err: "longer than 253 octets"},
	}
	for _, tt := range tests {
		got, err := normalize(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("normalize(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// FuzzNormalize checks that normalize, which sees recipient domains from the
// network, accepts only names it can send and is idempotent.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"example.org", "Example.ORG.", "_dmarc.x.test", "bücher.example", "a..b", "[1.2.3.4]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normalize(s)
		if err != nil {
			return
		}
		if _, ok := mdns.IsDomainName(n + "."); !ok {
			t.Fatalf("normalize(%q) = %q, not a domain name", s, n)
		}
		if again, err := normalize(n); err != nil || again != n {
			t.Fatalf("normalize(%q) = %q, then %q, %v", s, n, again, err)
		}
	})
}
