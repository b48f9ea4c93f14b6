package smtpclient

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"time"
)

// TLSMode says whether and how the client upgrades a connection with
// STARTTLS.
type TLSMode int

const (
	// TLSOpportunistic uses STARTTLS when the server offers it, without
	// verifying the certificate (RFC 7435), and goes on in clear when the
	// server does not offer it or refuses the command.
	TLSOpportunistic TLSMode = iota
	// TLSDisabled never sends STARTTLS.
	TLSDisabled
	// TLSRequired fails unless STARTTLS succeeds with a certificate that
	// verifies for the server name.
	TLSRequired
)

// String returns the mode's name.
func (m TLSMode) String() string {
	switch m {
	case TLSOpportunistic:
		return "opportunistic"
	case TLSDisabled:
		return "disabled"
	case TLSRequired:
		return "required"
	}
	return fmt.Sprintf("TLSMode(%d)", int(m))
}

// Options configures Dial. The zero value is usable: every field has a
// default, applied by EnsureDefaults.
type Options struct {
	// LocalAddr is the source IP address the connection is bound to, so
	// that mail leaves from the IP whose reputation the route chose. The
	// default value "" lets the system choose.
	LocalAddr string

	// Helo is the name sent with EHLO or HELO; it should resolve back to
	// LocalAddr. The default value is the host name (os.Hostname), or
	// "localhost" when it is unknown.
	Helo string

	// TLSMode says whether STARTTLS is used. The default value is
	// TLSOpportunistic.
	TLSMode TLSMode

	// TLSConfig is the base TLS configuration, cloned for each handshake;
	// tests set RootCAs here. ServerName is always taken from Dial, and
	// InsecureSkipVerify from TLSMode. The default value nil means Go's
	// defaults.
	TLSConfig *tls.Config

	// TLSVerify, when set, replaces the certificate verification of
	// TLSRequired: the handshake fails unless it returns nil for the
	// server's connection state. DANE (core/dane) authenticates servers
	// this way, by TLSA records instead of certificate authorities. The
	// default value nil verifies the chain and the name with TLSConfig's
	// roots.
	TLSVerify func(tls.ConnectionState) error

	// ConnectTimeout bounds the TCP connection. The default value is 30s.
	ConnectTimeout time.Duration

	// GreetingTimeout bounds the wait for the server's 220 greeting. The
	// default value is 5m (RFC 5321 section 4.5.3.2.1).
	GreetingTimeout time.Duration

	// CommandTimeout bounds the wait for each command's reply, and the TLS
	// handshake. The default value is 5m (RFC 5321 section 4.5.3.2).
	CommandTimeout time.Duration

	// DataTimeout bounds the transfer of the message content together with
	// the wait for the final reply. The default value is 10m (RFC 5321
	// section 4.5.3.2.6).
	DataTimeout time.Duration
}

// EnsureDefaults fills every zero field of o with its default value.
func (o *Options) EnsureDefaults() {
	if o.Helo == "" {
		o.Helo = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" {
			o.Helo = h
		}
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.GreetingTimeout == 0 {
		o.GreetingTimeout = 5 * time.Minute
	}
	if o.CommandTimeout == 0 {
		o.CommandTimeout = 5 * time.Minute
	}
	if o.DataTimeout == 0 {
		o.DataTimeout = 10 * time.Minute
	}
}

// Validate reports the first invalid field of o, after defaults are applied.
func (o *Options) Validate() error {
	if o.LocalAddr != "" && net.ParseIP(o.LocalAddr) == nil {
		return fmt.Errorf("smtpclient: options: local address %q is not an IP address", o.LocalAddr)
	}
	if o.Helo == "" || hasSpaceOrControl(o.Helo) {
		return fmt.Errorf("smtpclient: options: invalid HELO name %q", o.Helo)
	}
	if o.TLSMode < TLSOpportunistic || o.TLSMode > TLSRequired {
		return fmt.Errorf("smtpclient: options: unknown %v", o.TLSMode)
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{
		{"connect", o.ConnectTimeout},
		{"greeting", o.GreetingTimeout},
		{"command", o.CommandTimeout},
		{"data", o.DataTimeout},
	} {
		if t.d <= 0 {
			return fmt.Errorf("smtpclient: options: %s timeout %v is not positive", t.name, t.d)
		}
	}
	return nil
}

// hasSpaceOrControl reports whether s contains a space, a control character
// or DEL.
func hasSpaceOrControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}
