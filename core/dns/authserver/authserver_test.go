package authserver

import (
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestServer(t *testing.T) {
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.MustAdd(
		"example.org. 300 IN MX 10 mx.example.org.",
		"mx.example.org. 300 IN A 127.0.0.2",
		"alias.example.org. 300 IN CNAME mx.example.org.",
	)
	s.SetServFail("broken.example.", true)

	tests := []struct {
		name    string
		qtype   uint16
		rcode   int
		answers int
	}{
		{"example.org.", mdns.TypeMX, mdns.RcodeSuccess, 1},
		{"EXAMPLE.org.", mdns.TypeMX, mdns.RcodeSuccess, 1},
		{"example.org.", mdns.TypeA, mdns.RcodeSuccess, 0},
		{"alias.example.org.", mdns.TypeA, mdns.RcodeSuccess, 2},
		{"missing.example.org.", mdns.TypeMX, mdns.RcodeNameError, 0},
		{"broken.example.", mdns.TypeMX, mdns.RcodeServerFailure, 0},
	}
	for _, net := range []string{"udp", "tcp"} {
		c := &mdns.Client{Net: net, Timeout: 2 * time.Second}
		for _, tt := range tests {
			q := new(mdns.Msg)
			q.SetQuestion(tt.name, tt.qtype)
			r, _, err := c.Exchange(q, s.Addr)
			if err != nil {
				t.Fatalf("%s %s: %v", net, tt.name, err)
			}
			if r.Rcode != tt.rcode || len(r.Answer) != tt.answers {
				t.Errorf("%s %s %s: rcode %d answers %d, want %d %d", net, tt.name, mdns.TypeToString[tt.qtype], r.Rcode, len(r.Answer), tt.rcode, tt.answers)
			}
		}
	}
}

func TestTruncatesLargeUDPAnswers(t *testing.T) {
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for i := 0; i < 20; i++ {
		s.MustAdd(`big.example. 300 IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789"`)
	}
	q := new(mdns.Msg)
	q.SetQuestion("big.example.", mdns.TypeTXT)
	r, _, err := (&mdns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(q, s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated {
		t.Errorf("a %d-answer UDP reply without EDNS was not truncated", len(r.Answer))
	}
	r, _, err = (&mdns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(q, s.Addr)
	if err != nil || r.Truncated || len(r.Answer) != 20 {
		t.Errorf("TCP: err %v truncated %v answers %d", err, r.Truncated, len(r.Answer))
	}
}

// TestServeHandler: a handler of one's own is served on one port over UDP
// and TCP, as the records of Start are.
func TestServeHandler(t *testing.T) {
	ep, err := Serve("127.0.0.1:0", mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetRcode(req, mdns.RcodeRefused)
		_ = w.WriteMsg(m)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ep.Close)
	for _, net := range []string{"udp", "tcp"} {
		q := new(mdns.Msg)
		q.SetQuestion("example.org.", mdns.TypeMX)
		r, _, err := (&mdns.Client{Net: net, Timeout: 2 * time.Second}).Exchange(q, ep.Addr)
		if err != nil || r.Rcode != mdns.RcodeRefused {
			t.Errorf("%s: %v, %v; want REFUSED", net, r, err)
		}
	}
}
