package dane

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// TLSA usages, selectors and matching types (RFC 6698, RFC 7218 names).
const (
	UsagePKIXTA = 0
	UsagePKIXEE = 1
	UsageDANETA = 2
	UsageDANEEE = 3

	SelectorCert = 0
	SelectorSPKI = 1

	MatchFull   = 0
	MatchSHA256 = 1
	MatchSHA512 = 2
)

// Record is one TLSA record.
type Record struct {
	// Usage is the certificate usage (UsageDANEEE, UsageDANETA, ...),
	// Selector what is matched (SelectorCert, SelectorSPKI) and
	// MatchingType how (MatchFull, MatchSHA256, MatchSHA512).
	Usage, Selector, MatchingType uint8
	// Data is the certificate association data.
	Data []byte
}

// String renders r as in a zone file: "3 1 1 <hex>".
func (r Record) String() string {
	return fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, hex.EncodeToString(r.Data))
}

// Usable reports whether r can authenticate an SMTP server (RFC 7672
// section 3.1): DANE-TA or DANE-EE, with a known selector and matching
// type.
func (r Record) Usable() bool {
	return (r.Usage == UsageDANEEE || r.Usage == UsageDANETA) &&
		(r.Selector == SelectorCert || r.Selector == SelectorSPKI) &&
		(r.MatchingType == MatchFull || r.MatchingType == MatchSHA256 || r.MatchingType == MatchSHA512)
}

// matches reports whether cert matches r's selector and matching type.
func (r Record) matches(cert *x509.Certificate) bool {
	var data []byte
	switch r.Selector {
	case SelectorCert:
		data = cert.Raw
	case SelectorSPKI:
		data = cert.RawSubjectPublicKeyInfo
	default:
		return false
	}
	switch r.MatchingType {
	case MatchFull:
	case MatchSHA256:
		h := sha256.Sum256(data)
		data = h[:]
	case MatchSHA512:
		h := sha512.Sum512(data)
		data = h[:]
	default:
		return false
	}
	return bytes.Equal(data, r.Data)
}

// Result types of RFC 8460 section 4.3 that DANE failures report.
const (
	ResultTLSAInvalid   = "tlsa-invalid"
	ResultDNSSECInvalid = "dnssec-invalid"
)

// ErrMismatch is wrapped by Verify's error when no usable record matches
// the server's certificates.
var ErrMismatch = errors.New("no TLSA record matches the server's certificate")

// Verify checks the TLS connection state of a session with host against
// records. It returns nil when one usable record matches. When no record
// is usable, RFC 7672 section 2.2 asks for encryption without
// authentication: Verify accepts any certificate then.
func Verify(cs tls.ConnectionState, host string, records []Record, now time.Time) error {
	chain := cs.PeerCertificates
	if len(chain) == 0 {
		return fmt.Errorf("dane: %s: %w: no certificate", host, ErrMismatch)
	}
	usable := 0
	for _, r := range records {
		if !r.Usable() {
			continue
		}
		usable++
		switch r.Usage {
		case UsageDANEEE:
			if r.matches(chain[0]) {
				return nil
			}
		case UsageDANETA:
			if verifyTA(r, chain, host, now) {
				return nil
			}
		}
	}
	if usable == 0 {
		return nil
	}
	return fmt.Errorf("dane: %s: %w (%d usable records)", host, ErrMismatch, usable)
}

// verifyTA reports whether a certificate of chain matches r and signs the
// leaf, through the rest of the chain, for host. RFC 7672 section 3.1.2
// has the server send the trust anchor in its chain.
func verifyTA(r Record, chain []*x509.Certificate, host string, now time.Time) bool {
	for _, ta := range chain {
		if !r.matches(ta) {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(ta)
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		_, err := chain[0].Verify(x509.VerifyOptions{
			DNSName: strings.TrimSuffix(host, "."), Roots: roots, Intermediates: inter,
			CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err == nil {
			return true
		}
	}
	return false
}

// ParseRecord parses the presentation form of a TLSA record's data:
// "3 1 1 <hex>".
func ParseRecord(s string) (Record, error) {
	rr, err := mdns.NewRR("x. 300 IN TLSA " + s)
	if err != nil {
		return Record{}, fmt.Errorf("dane: TLSA %q: %w", s, err)
	}
	t, ok := rr.(*mdns.TLSA)
	if !ok {
		return Record{}, fmt.Errorf("dane: TLSA %q: not a TLSA record", s)
	}
	return fromRR(t)
}

func fromRR(t *mdns.TLSA) (Record, error) {
	data, err := hex.DecodeString(t.Certificate)
	if err != nil {
		return Record{}, fmt.Errorf("dane: TLSA data %q: %w", t.Certificate, err)
	}
	return Record{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: data}, nil
}
