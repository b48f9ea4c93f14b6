package dane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"
	"time"

	"corriere/core/dns/authserver"
	"corriere/core/testlib"
)

// chain returns a certificate authority and a leaf it signed for host.
func chain(t *testing.T, host string) (ca, leaf *x509.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test TA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ = x509.ParseCertificate(leafDER)
	return ca, leaf
}

// record returns the TLSA record of cert with the given parameters.
func record(usage, selector, matching uint8, cert *x509.Certificate) Record {
	data := cert.Raw
	if selector == SelectorSPKI {
		data = cert.RawSubjectPublicKeyInfo
	}
	switch matching {
	case MatchSHA256:
		h := sha256.Sum256(data)
		data = h[:]
	case MatchSHA512:
		h := sha512.Sum512(data)
		data = h[:]
	}
	return Record{Usage: usage, Selector: selector, MatchingType: matching, Data: data}
}

func TestVerify(t *testing.T) {
	const host = "mx.dane.test"
	ca, leaf := chain(t, host)
	otherCA, otherLeaf := chain(t, host)
	state := tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf, ca}}
	now := time.Now()
	var cases []struct {
		name    string
		records []Record
		host    string
		ok      bool
	}
	add := func(name string, ok bool, host string, records ...Record) {
		cases = append(cases, struct {
			name    string
			records []Record
			host    string
			ok      bool
		}{name, records, host, ok})
	}
	for _, sel := range []uint8{SelectorCert, SelectorSPKI} {
		for _, mt := range []uint8{MatchFull, MatchSHA256, MatchSHA512} {
			add("EE match", true, host, record(UsageDANEEE, sel, mt, leaf))
			add("EE other cert", false, host, record(UsageDANEEE, sel, mt, otherLeaf))
			add("EE ignores the name", true, "another.name", record(UsageDANEEE, sel, mt, leaf))
			add("TA match", true, host, record(UsageDANETA, sel, mt, ca))
			add("TA wrong name", false, "another.name", record(UsageDANETA, sel, mt, ca))
			add("TA other authority", false, host, record(UsageDANETA, sel, mt, otherCA))
		}
	}
	add("one of several matches", true, host, record(UsageDANEEE, 1, 1, otherLeaf), record(UsageDANETA, 1, 1, ca))
	add("PKIX records are unusable: TLS without authentication", true, host, record(UsagePKIXEE, 1, 1, otherLeaf))
	add("unusable beside a usable mismatch", false, host, record(UsagePKIXEE, 1, 1, leaf), record(UsageDANEEE, 1, 1, otherLeaf))
	add("unknown matching type is unusable", true, host, Record{Usage: UsageDANEEE, Selector: 1, MatchingType: 9, Data: []byte{1}})
	for _, tc := range cases {
		err := Verify(state, tc.host, tc.records, now)
		if (err == nil) != tc.ok {
			t.Errorf("%s (%v, host %s): Verify = %v, want ok=%v", tc.name, tc.records, tc.host, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: error %v does not wrap ErrMismatch", tc.name, err)
		}
	}
	if err := Verify(tls.ConnectionState{}, host, []Record{record(UsageDANEEE, 1, 1, leaf)}, now); err == nil {
		t.Error("Verify accepted a session without certificates")
	}
}

func TestParseRecord(t *testing.T) {
	r, err := ParseRecord("3 1 1 0011aabb")
	if err != nil || r.Usage != 3 || r.Selector != 1 || r.MatchingType != 1 || hex.EncodeToString(r.Data) != "0011aabb" {
		t.Fatalf("ParseRecord = %+v, %v", r, err)
	}
	if r.String() != "3 1 1 0011aabb" {
		t.Fatalf("String = %q", r.String())
	}
	if _, err := ParseRecord("3 1"); err == nil {
		t.Fatal("ParseRecord accepted a truncated record")
	}
}

func TestResolverTrustsOnlyAuthenticatedAnswers(t *testing.T) {
	cert, _ := testlib.Certificate(t, "mx.dane.test")
	rec := record(UsageDANEEE, SelectorSPKI, MatchSHA256, cert.Leaf)
	as, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	as.MustAdd(
		"dane.test. 300 IN MX 10 mx.dane.test.",
		"_25._tcp.mx.dane.test. 300 IN TLSA "+rec.String(),
		"plain.test. 300 IN MX 10 mx.plain.test.",
		"_25._tcp.mx.plain.test. 300 IN TLSA "+rec.String(),
		"signed-empty.test. 300 IN MX 10 mx.signed-empty.test.",
		"mx.signed-empty.test. 300 IN A 127.0.0.1",
	)
	for _, n := range []string{"dane.test", "_25._tcp.mx.dane.test", "signed-empty.test", "_25._tcp.mx.signed-empty.test"} {
		as.SetSecure(n, true)
	}
	as.SetServFail("_25._tcp.mx.broken.test", true)
	r, err := New([]string{as.Addr}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		domain, host string
		secureMX     bool
		records      int
		fails        bool
	}{
		{"dane.test", "mx.dane.test", true, 1, false},
		{"plain.test", "mx.plain.test", false, 0, false}, // records without AD are not trusted
		{"signed-empty.test", "mx.signed-empty.test", true, 0, false},
		{"broken.test", "mx.broken.test", false, 0, true},
	} {
		secure, err := r.SecureMX(ctx, tc.domain)
		if err != nil || secure != tc.secureMX {
			t.Errorf("SecureMX(%s) = %v, %v; want %v", tc.domain, secure, err, tc.secureMX)
		}
		recs, err := r.TLSA(ctx, tc.host)
		var le *LookupError
		if tc.fails != errors.As(err, &le) || len(recs) != tc.records {
			t.Errorf("TLSA(%s) = %v, %v; want %d records, failure %v", tc.host, recs, err, tc.records, tc.fails)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add("3 1 1 0011aabb")
	f.Add("2 0 2 " + hex.EncodeToString(make([]byte, 64)))
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecord(s)
		if err != nil {
			return
		}
		// A parsed record renders to a form that parses to the same record.
		again, err := ParseRecord(r.String())
		if err != nil || again.String() != r.String() {
			t.Fatalf("round trip of %q: %q, %v", s, again.String(), err)
		}
	})
}

func BenchmarkVerifyEE(b *testing.B) {
	cert, _ := testlib.Certificate(b, "mx.dane.test")
	state := tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}
	records := []Record{record(UsageDANEEE, SelectorSPKI, MatchSHA256, cert.Leaf)}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(state, "mx.dane.test", records, now); err != nil {
			b.Fatal(err)
		}
	}
}
