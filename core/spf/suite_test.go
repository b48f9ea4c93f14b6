package spf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"go.yaml.in/yaml/v3"

	"corriere/core/dns/authserver"
)

// suiteDir is the official SPF test suite, ../shared/spf from the root of
// the repository.
var suiteDir = filepath.Join("..", "..", "..", "shared", "spf")

// suiteDoc is one YAML document of the openspf test suite: scenarios that
// share zone data.
type suiteDoc struct {
	Description string               `yaml:"description"`
	Tests       map[string]suiteTest `yaml:"tests"`
	Zonedata    map[string][]any     `yaml:"zonedata"`
}

type suiteTest struct {
	Helo        string `yaml:"helo"`
	Host        string `yaml:"host"`
	Mailfrom    string `yaml:"mailfrom"`
	Result      any    `yaml:"result"`
	Explanation string `yaml:"explanation"`
}

// TestOfficialSuite runs the openspf RFC 7208 test suite, each scenario's
// zone data served by a real DNS server on loopback.
func TestOfficialSuite(t *testing.T) {
	f, err := os.Open(filepath.Join(suiteDir, "rfc7208-tests.yml"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("the SPF test suite is not at %s (../shared is absent): skipped", suiteDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	for {
		var doc suiteDoc
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("suite: %v", err)
		}
		t.Run(strings.ReplaceAll(doc.Description, " ", "_"), func(t *testing.T) {
			addr := serveSuiteZone(t, doc.Zonedata)
			c := &Checker{Resolver: &DNS{Server: addr, Timeout: 2 * time.Second}, DefaultExplanation: "DEFAULT"}
			for name, tc := range doc.Tests {
				t.Run(name, func(t *testing.T) {
					ip := netip.MustParseAddr(tc.Host)
					out := c.Check(context.Background(), ip, tc.Mailfrom, tc.Helo)
					want := acceptedResults(tc.Result)
					if !slices.Contains(want, out.Result) {
						t.Fatalf("result %s, want %v (reason %q, trail %q)", out.Result, want, out.Reason, out.Trail)
					}
					// The suite writes IPv6 nibbles in upper case where
					// RFC 7208's examples (and we) use lower case.
					if tc.Explanation != "" && out.Result == Fail && !strings.EqualFold(out.Explanation, tc.Explanation) {
						t.Errorf("explanation %q, want %q", out.Explanation, tc.Explanation)
					}
				})
			}
		})
	}
}

func acceptedResults(v any) []Result {
	switch r := v.(type) {
	case string:
		return []Result{Result(r)}
	case []any:
		var out []Result
		for _, x := range r {
			out = append(out, Result(fmt.Sprint(x)))
		}
		return out
	}
	return nil
}

// suiteZone is the zone data of one suite document.
type suiteZone struct {
	records map[string]map[uint16][]mdns.RR // raw lower-case name → type → records without header name
	timeout map[string]bool
}

// serveSuiteZone serves zone data in the suite's format and returns the
// server's address. As the suite asks of its drivers, SPF records are
// served as TXT records when a name has no TXT entry ("TXT: NONE" says it
// has none); a TIMEOUT entry makes every other type of the name fail,
// served here as SERVFAIL, which a checker treats as it treats a timeout.
func serveSuiteZone(t *testing.T, data map[string][]any) string {
	t.Helper()
	z := &suiteZone{records: map[string]map[uint16][]mdns.RR{}, timeout: map[string]bool{}}
	for name, entries := range data {
		key := strings.ToLower(strings.TrimSuffix(name, "."))
		types := map[uint16][]mdns.RR{}
		var spf []mdns.RR
		hasTXT := false
		for _, entry := range entries {
			m, ok := entry.(map[string]any)
			if !ok {
				if entry == "TIMEOUT" {
					z.timeout[key] = true
					continue
				}
				t.Fatalf("zone %s: entry %v", name, entry)
			}
			for typ, v := range m {
				switch typ {
				case "SPF":
					spf = append(spf, txtRR(v))
				case "TXT":
					hasTXT = true
					if v != "NONE" {
						types[mdns.TypeTXT] = append(types[mdns.TypeTXT], txtRR(v))
					}
				default:
					rr, qtype := suiteRR(t, typ, v)
					types[qtype] = append(types[qtype], rr)
				}
			}
		}
		if !hasTXT {
			types[mdns.TypeTXT] = spf
		}
		z.records[key] = types
	}
	ep, err := authserver.Serve("127.0.0.1:0", z)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ep.Close)
	return ep.Addr
}

func txtRR(v any) mdns.RR {
	var strs []string
	switch s := v.(type) {
	case string:
		strs = []string{s}
	case []any:
		for _, x := range s {
			strs = append(strs, fmt.Sprint(x))
		}
	}
	if len(strs) == 0 {
		strs = []string{""}
	}
	var chunks []string
	for _, s := range strs {
		for len(s) > 255 {
			chunks = append(chunks, escapeTXT(s[:255]))
			s = s[255:]
		}
		chunks = append(chunks, escapeTXT(s))
	}
	return &mdns.TXT{Hdr: mdns.RR_Header{Rrtype: mdns.TypeTXT, Class: mdns.ClassINET, Ttl: 60}, Txt: chunks}
}

// escapeTXT writes s in the presentation form miekg/dns packs, so that
// every octet is served as the suite gives it.
func escapeTXT(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			fmt.Fprintf(&b, "\\%03d", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func suiteRR(t *testing.T, typ string, v any) (mdns.RR, uint16) {
	t.Helper()
	hdr := func(qtype uint16) mdns.RR_Header {
		return mdns.RR_Header{Rrtype: qtype, Class: mdns.ClassINET, Ttl: 60}
	}
	switch typ {
	case "A":
		return &mdns.A{Hdr: hdr(mdns.TypeA), A: net.ParseIP(fmt.Sprint(v)).To4()}, mdns.TypeA
	case "AAAA":
		return &mdns.AAAA{Hdr: hdr(mdns.TypeAAAA), AAAA: net.ParseIP(fmt.Sprint(v))}, mdns.TypeAAAA
	case "MX":
		mx := v.([]any)
		return &mdns.MX{Hdr: hdr(mdns.TypeMX), Preference: uint16(mx[0].(int)), Mx: presentationName(fmt.Sprint(mx[1]))}, mdns.TypeMX
	case "PTR":
		return &mdns.PTR{Hdr: hdr(mdns.TypePTR), Ptr: presentationName(fmt.Sprint(v))}, mdns.TypePTR
	case "CNAME":
		return &mdns.CNAME{Hdr: hdr(mdns.TypeCNAME), Target: presentationName(fmt.Sprint(v))}, mdns.TypeCNAME
	}
	t.Fatalf("zone: record type %s", typ)
	return nil, 0
}

// ServeDNS answers from the zone, following CNAMEs for a bounded number of
// steps.
func (z *suiteZone) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	reply := new(mdns.Msg)
	reply.SetReply(req)
	reply.Authoritative = true
	if len(req.Question) != 1 {
		reply.Rcode = mdns.RcodeFormatError
		_ = w.WriteMsg(reply)
		return
	}
	q := req.Question[0]
	owner := q.Name
	name := strings.ToLower(rawName(owner))
	for range 8 {
		types, exists := z.records[name]
		if rrs := types[q.Qtype]; len(rrs) > 0 {
			for _, rr := range rrs {
				rr = mdns.Copy(rr)
				rr.Header().Name = owner
				reply.Answer = append(reply.Answer, rr)
			}
			break
		}
		if cn := types[mdns.TypeCNAME]; len(cn) > 0 && q.Qtype != mdns.TypeCNAME {
			rr := mdns.Copy(cn[0]).(*mdns.CNAME)
			rr.Hdr.Name = owner
			reply.Answer = append(reply.Answer, rr)
			owner, name = rr.Target, strings.ToLower(rawName(rr.Target))
			continue
		}
		switch {
		case z.timeout[name]:
			reply.Rcode = mdns.RcodeServerFailure
		case !exists:
			reply.Rcode = mdns.RcodeNameError
		}
		break
	}
	_ = w.WriteMsg(reply)
}
