package sim

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// MTASTS is a domain's MTA-STS publication.
type MTASTS struct {
	// Mode is "enforce", "testing" or "none".
	Mode string `json:"mode"`
	// MaxAge is the policy's max_age in seconds. The default value is
	// 86400.
	MaxAge int64 `json:"max_age,omitempty"`
}

// Attacks on the path to a provider's MX hosts.
const (
	AttackStripSTARTTLS    = "strip-starttls"
	AttackWrongCertificate = "wrong-certificate"
)

// validTLS checks a domain's TLS publications and its provider's attack.
func validTLS(p *Provider, d Domain) error {
	switch p.Attack {
	case "", AttackStripSTARTTLS:
	case AttackWrongCertificate:
		if !p.STARTTLS {
			return errors.New("attack wrong-certificate needs starttls")
		}
	default:
		return fmt.Errorf("attack %q; want strip-starttls or wrong-certificate", p.Attack)
	}
	if m := d.MTASTS; m != nil {
		switch m.Mode {
		case "enforce", "testing", "none":
		default:
			return fmt.Errorf("mta_sts.mode %q; want enforce, testing or none", m.Mode)
		}
		if m.MaxAge < 0 {
			return errors.New("mta_sts.max_age is negative")
		}
	}
	if (d.DANE || d.MTASTS != nil) && !p.STARTTLS {
		return errors.New("dane and mta_sts need starttls")
	}
	return nil
}

// makeCertificates makes the certificate every MX host and the MTA-STS
// policy server present, and the attacker's, when the world needs them.
func (s *Sim) makeCertificates(hosts []host) error {
	needTLS := false
	var names []string
	var ips []net.IP
	for _, h := range hosts {
		needTLS = needTLS || h.p.cfg.STARTTLS && !h.dead
		names = append(names, h.name)
		ips = append(ips, net.ParseIP(h.ip))
	}
	if !needTLS {
		return nil
	}
	for _, d := range s.tlsDomains() {
		if d.MTASTS != nil {
			names = append(names, "mta-sts."+strings.ToLower(d.Name))
		}
	}
	ips = append(ips, net.IPv4(127, 0, 0, 1))
	cert, err := selfSigned(names, ips, time.Now()) // TLS clients check validity against the real clock
	if err != nil {
		return fmt.Errorf("sim: tls: %w", err)
	}
	s.cert = cert.Leaf
	s.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	attacker, err := selfSigned(names, ips, time.Now())
	if err != nil {
		return fmt.Errorf("sim: tls: %w", err)
	}
	s.attackerTLS = &tls.Config{Certificates: []tls.Certificate{attacker}, MinVersion: tls.VersionTLS12}
	return nil
}

// serverTLS returns the TLS configuration an MX host of p offers, nil for
// none.
func (s *Sim) serverTLS(p *Provider) *tls.Config {
	switch {
	case !p.STARTTLS || p.Attack == AttackStripSTARTTLS:
		return nil
	case p.Attack == AttackWrongCertificate:
		return s.attackerTLS
	}
	return s.tlsConfig
}

// tlsDomains returns the domains that publish MTA-STS or DANE.
func (s *Sim) tlsDomains() []Domain {
	var out []Domain
	for _, p := range s.world.Providers {
		for _, d := range p.Domains {
			if d.MTASTS != nil || d.DANE {
				out = append(out, d)
			}
		}
	}
	return out
}

// tlsRecords returns the MTA-STS and TLSA records of the world.
func (s *Sim) tlsRecords() []string {
	var rrs []string
	for _, d := range s.tlsDomains() {
		name := strings.ToLower(d.Name)
		if d.MTASTS != nil {
			rrs = append(rrs,
				fmt.Sprintf(`_mta-sts.%s 300 IN TXT "v=STSv1; id=sim1"`, mdns.Fqdn(name)),
				fmt.Sprintf("mta-sts.%s 300 IN A 127.0.0.1", mdns.Fqdn(name)))
		}
		if d.DANE && s.cert != nil {
			h := sha256.Sum256(s.cert.RawSubjectPublicKeyInfo)
			for _, mx := range d.MX {
				rrs = append(rrs, fmt.Sprintf("_25._tcp.%s 300 IN TLSA 3 1 1 %s", mdns.Fqdn(strings.ToLower(mx.Host)), hex.EncodeToString(h[:])))
			}
		}
	}
	return rrs
}

// secureZones marks the names of DANE domains as DNSSEC-signed: their MX
// and TLSA answers carry the AD bit.
func (s *Sim) secureZones() {
	for _, d := range s.tlsDomains() {
		if !d.DANE {
			continue
		}
		s.dns.SetSecure(d.Name, true)
		for _, mx := range d.MX {
			s.dns.SetSecure("_25._tcp."+mx.Host, true)
		}
	}
}

// policyText returns the MTA-STS policy of d.
func policyText(d Domain) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: STSv1\r\nmode: %s\r\n", d.MTASTS.Mode)
	for _, mx := range d.MX {
		fmt.Fprintf(&b, "mx: %s\r\n", strings.ToLower(strings.TrimSuffix(mx.Host, ".")))
	}
	age := d.MTASTS.MaxAge
	if age == 0 {
		age = 86400
	}
	fmt.Fprintf(&b, "max_age: %d\r\n", age)
	return b.String()
}

// servePolicies serves the MTA-STS policies over HTTPS on 127.0.0.1, at
// Options.PolicyPort, when a domain publishes one.
func (s *Sim) servePolicies() error {
	policies := map[string]string{}
	for _, d := range s.tlsDomains() {
		if d.MTASTS != nil {
			policies["mta-sts."+strings.ToLower(d.Name)] = policyText(d)
		}
	}
	if len(policies) == 0 {
		return nil
	}
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", s.opts.PolicyPort))
	if err != nil {
		return fmt.Errorf("sim: MTA-STS policy server: %w", err)
	}
	s.policyPort = l.Addr().(*net.TCPAddr).Port
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			text, ok := policies[strings.ToLower(host)]
			if !ok || r.URL.Path != "/.well-known/mta-sts.txt" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, text)
		}),
		TLSConfig:         s.tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug),
	}
	s.wg.Go(func() {
		if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("sim: MTA-STS policy server", "err", err)
		}
	})
	s.wg.Go(func() {
		<-s.ctx.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return nil
}

// PolicyPort returns the port of the MTA-STS policy server on 127.0.0.1,
// 0 when no domain publishes a policy.
func (s *Sim) PolicyPort() int { return s.policyPort }

// tlsSummary describes a provider's TLS publications and attack, for
// Provider.Summary.
func tlsSummary(p *Provider) []string {
	var parts []string
	for _, d := range p.Domains {
		if d.MTASTS != nil {
			parts = append(parts, fmt.Sprintf("%s MTA-STS %s", d.Name, d.MTASTS.Mode))
		}
		if d.DANE {
			parts = append(parts, d.Name+" DANE")
		}
	}
	if p.Attack != "" {
		parts = append(parts, "attacked: "+p.Attack)
	}
	return parts
}

// CertificatePEM returns the certificate of Certificate in PEM, for a
// node's --tls-roots; nil when no MX host offers STARTTLS.
func (s *Sim) CertificatePEM() []byte {
	if s.cert == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.cert.Raw})
}
