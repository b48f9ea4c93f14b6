package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TXTResolver looks up TXT records; *dns.Resolver implements it.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// HTTPDoer posts reports; *http.Client implements it.
type HTTPDoer interface {
	Do(req *http.Request) (*http.Response, error)
}

func defaultHTTPClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second}
}

// ParseRecord reads the rua addresses of a TLSRPT record (RFC 8460
// section 3): "v=TLSRPTv1; rua=mailto:a@example.org,https://example.org/r".
// Only mailto: and https: addresses are returned.
func ParseRecord(txt string) ([]*url.URL, error) {
	fields := strings.Split(txt, ";")
	if strings.TrimSpace(fields[0]) != "v=TLSRPTv1" {
		return nil, fmt.Errorf("tlsrpt: record %q does not start with v=TLSRPTv1", txt)
	}
	var out []*url.URL
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok || strings.TrimSpace(k) != "rua" {
			continue
		}
		for _, u := range strings.Split(v, ",") {
			parsed, err := url.Parse(strings.TrimSpace(u))
			if err != nil {
				return nil, fmt.Errorf("tlsrpt: rua %q: %w", u, err)
			}
			switch {
			case parsed.Scheme == "mailto" && strings.Contains(parsed.Opaque, "@"):
				out = append(out, parsed)
			case parsed.Scheme == "https" && parsed.Host != "":
				out = append(out, parsed)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tlsrpt: record %q has no usable rua", txt)
	}
	return out, nil
}

// Send delivers the reports of day to every policy domain that publishes
// a TLSRPT record, then forgets the day's results. It returns how many
// reports went out; the error joins the failures, which do not stop the
// other domains' reports.
func (r *Recorder) Send(ctx context.Context, day time.Time) (int, error) {
	if r.opts.Resolver == nil {
		return 0, errors.New("tlsrpt: no resolver")
	}
	var errs []error
	sent := 0
	for _, domain := range r.Domains(day) {
		rep := r.Report(day, domain)
		if rep == nil {
			continue
		}
		rua, err := r.lookup(ctx, domain)
		if err != nil {
			r.opts.Logger.Info("no TLS-RPT address; report dropped", "domain", domain, "day", dayKey(day), "err", err)
			continue
		}
		for _, u := range rua {
			if err := r.deliver(ctx, domain, rep, u); err != nil {
				errs = append(errs, err)
				continue
			}
			sent++
			r.opts.Logger.Info("TLS-RPT report sent", "domain", domain, "day", dayKey(day), "to", u.String(), "report_id", rep.ReportID)
		}
	}
	r.Forget(day)
	return sent, errors.Join(errs...)
}

// lookup finds the rua addresses of domain.
func (r *Recorder) lookup(ctx context.Context, domain string) ([]*url.URL, error) {
	txts, err := r.opts.Resolver.LookupTXT(ctx, "_smtp._tls."+domain)
	if err != nil {
		return nil, err
	}
	var found []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=TLSRPTv1") {
			found = append(found, t)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("tlsrpt: %d TLSRPTv1 records at _smtp._tls.%s; want one", len(found), domain)
	}
	return ParseRecord(found[0])
}

// deliver sends rep to one address.
func (r *Recorder) deliver(ctx context.Context, domain string, rep *Report, u *url.URL) error {
	gz, err := compress(rep)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(gz))
		if err != nil {
			return fmt.Errorf("tlsrpt: %s: %w", u, err)
		}
		req.Header.Set("Content-Type", "application/tlsrpt+gzip")
		resp, err := r.opts.HTTPClient.Do(req)
		if err != nil {
			return fmt.Errorf("tlsrpt: post to %s: %w", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("tlsrpt: post to %s: HTTP %s", u, resp.Status)
		}
		return nil
	case "mailto":
		if r.opts.Mail == nil {
			return fmt.Errorf("tlsrpt: %s: no mail path configured", u)
		}
		to, _ := url.PathUnescape(u.Opaque)
		if i := strings.IndexByte(to, '?'); i >= 0 {
			to = to[:i]
		}
		msg := r.message(domain, rep, to, gz)
		if err := r.opts.Mail(ctx, r.opts.Contact, to, msg); err != nil {
			return fmt.Errorf("tlsrpt: mail to %s: %w", to, err)
		}
		return nil
	}
	return fmt.Errorf("tlsrpt: unsupported rua %s", u)
}

// compress returns rep as gzipped JSON.
func compress(rep *Report) ([]byte, error) {
	js, err := json.Marshal(rep)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: encode report: %w", err)
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(js)
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("tlsrpt: compress report: %w", err)
	}
	return b.Bytes(), nil
}

// message builds the mail of a report (RFC 8460 section 5.3).
func (r *Recorder) message(domain string, rep *Report, to string, gz []byte) []byte {
	var nonce [8]byte
	rand.Read(nonce[:])
	boundary := "tlsrpt-" + hex.EncodeToString(nonce[:])
	now := r.opts.Clock.Now()
	filename := fmt.Sprintf("%s!%s!%d!%d!%s.json.gz", r.opts.Submitter, domain,
		rep.DateRange.Start.Unix(), rep.DateRange.End.Unix(), hex.EncodeToString(nonce[:4]))
	var b strings.Builder
	fmt.Fprintf(&b, "From: <%s>\r\n", r.opts.Contact)
	fmt.Fprintf(&b, "To: <%s>\r\n", to)
	fmt.Fprintf(&b, "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n", domain, r.opts.Submitter, rep.ReportID)
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s.%s@%s>\r\n", hex.EncodeToString(nonce[:]), "tlsrpt", r.opts.Submitter)
	fmt.Fprintf(&b, "TLS-Report-Domain: %s\r\n", domain)
	fmt.Fprintf(&b, "TLS-Report-Submitter: %s\r\n", r.opts.Submitter)
	b.WriteString("MIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"%s\"\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary)
	fmt.Fprintf(&b, "This is an aggregate TLS report from %s for %s, %s.\r\n\r\n", r.opts.Submitter, domain, rep.DateRange.Start.Format(time.DateOnly))
	fmt.Fprintf(&b, "--%s\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n", boundary)
	fmt.Fprintf(&b, "Content-Disposition: attachment; filename=\"%s\"\r\n\r\n", filename)
	enc := base64.StdEncoding.EncodeToString(gz)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return []byte(b.String())
}
