package smtpclient

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"corriere/core/mailtest"
	"corriere/core/testlib"
)

// TestTLSVerify checks that TLSVerify replaces the certificate
// authorities under TLSRequired: a certificate no authority vouches for
// passes when the callback accepts it (DANE), and a valid one fails when
// the callback refuses it.
func TestTLSVerify(t *testing.T) {
	t.Parallel()
	cert, _ := testlib.Certificate(t, "mx.example.test")
	r := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	refused := errors.New("no TLSA record matches")
	for _, tc := range []struct {
		name   string
		verify func(tls.ConnectionState) error
		ok     bool
	}{
		{"no callback: the unknown authority fails", nil, false},
		{"callback accepts the server's own certificate", func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !cs.PeerCertificates[0].Equal(cert.Leaf) {
				return refused
			}
			return nil
		}, true},
		{"callback refuses", func(tls.ConnectionState) error { return refused }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Helo: "client.test", TLSMode: TLSRequired, TLSVerify: tc.verify, CommandTimeout: 5 * time.Second}
			c, err := Dial(context.Background(), r.Addr, "mx.example.test", opts)
			if tc.ok {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.Close()
				if _, on := c.TLS(); !on {
					t.Fatal("session not under TLS")
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Stage != StageStartTLS || !errors.Is(err, ErrTLSFailed) {
				t.Fatalf("Dial: %v; want a failed STARTTLS", err)
			}
			if tc.verify != nil && !errors.Is(err, refused) {
				t.Errorf("Dial: %v; want the callback's error in the chain", err)
			}
		})
	}
}
