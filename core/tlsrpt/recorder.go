package tlsrpt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"corriere/core/clock"
)

// Recorder aggregates session results per day and policy domain. It is
// safe for concurrent use.
type Recorder struct {
	opts Options

	mu    sync.Mutex
	days  map[string]map[string]*domainDay // "2026-12-03" → domain → results
	dirty bool
}

// domainDay is one policy domain's results of one day.
type domainDay struct {
	Policies []*policyResults `json:"policies"`
}

// policyResults are the sessions under one policy.
type policyResults struct {
	Type      string            `json:"type"`
	Policy    []string          `json:"policy,omitempty"`
	MX        []string          `json:"mx,omitempty"`
	Successes int64             `json:"successes"`
	Failures  []*failureResults `json:"failures,omitempty"`
}

// failureResults count the sessions that failed one way.
type failureResults struct {
	Result      string `json:"result"`
	SendingIP   string `json:"sending_ip,omitempty"`
	ReceivingIP string `json:"receiving_ip,omitempty"`
	MXHost      string `json:"mx_host,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Count       int64  `json:"count"`
}

// NewRecorder returns a Recorder, loaded from Options.Path when that file
// exists.
func NewRecorder(opts Options) (*Recorder, error) {
	opts.ensureDefaults()
	r := &Recorder{opts: opts, days: map[string]map[string]*domainDay{}}
	if opts.Path == "" {
		return r, nil
	}
	b, err := os.ReadFile(opts.Path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: load %s: %w", opts.Path, err)
	}
	if err := json.Unmarshal(b, &r.days); err != nil {
		opts.Logger.Warn("TLS-RPT results unreadable; starting empty", "path", opts.Path, "err", err)
		r.days = map[string]map[string]*domainDay{}
	}
	return r, nil
}

// dayKey names the UTC day of t.
func dayKey(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// Record counts one session's result.
func (r *Recorder) Record(res Result) {
	if res.Domain == "" || res.PolicyType == "" {
		return
	}
	at := res.At
	if at.IsZero() {
		at = r.opts.Clock.Now()
	}
	day, domain := dayKey(at), strings.ToLower(res.Domain)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirty = true
	domains := r.days[day]
	if domains == nil {
		domains = map[string]*domainDay{}
		r.days[day] = domains
	}
	dd := domains[domain]
	if dd == nil {
		dd = &domainDay{}
		domains[domain] = dd
	}
	i := slices.IndexFunc(dd.Policies, func(p *policyResults) bool {
		return p.Type == res.PolicyType && slices.Equal(p.Policy, res.Policy) && slices.Equal(p.MX, res.MXPatterns)
	})
	if i < 0 {
		dd.Policies = append(dd.Policies, &policyResults{Type: res.PolicyType, Policy: res.Policy, MX: res.MXPatterns})
		i = len(dd.Policies) - 1
	}
	p := dd.Policies[i]
	if res.Failure == "" {
		p.Successes++
		return
	}
	j := slices.IndexFunc(p.Failures, func(f *failureResults) bool {
		return f.Result == res.Failure && f.SendingIP == res.SendingIP && f.ReceivingIP == res.ReceivingIP && f.MXHost == res.MXHost
	})
	if j < 0 {
		p.Failures = append(p.Failures, &failureResults{Result: res.Failure, SendingIP: res.SendingIP,
			ReceivingIP: res.ReceivingIP, MXHost: res.MXHost, Reason: truncate(res.Reason, 200)})
		j = len(p.Failures) - 1
	}
	p.Failures[j].Count++
}

// truncate shortens s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// Domains returns the policy domains with results on day, sorted.
func (r *Recorder) Domains(day time.Time) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for d := range r.days[dayKey(day)] {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// Report builds the RFC 8460 report of domain for day, or returns nil
// when there were no sessions.
func (r *Recorder) Report(day time.Time, domain string) *Report {
	key := dayKey(day)
	r.mu.Lock()
	defer r.mu.Unlock()
	dd := r.days[key][strings.ToLower(domain)]
	if dd == nil {
		return nil
	}
	start, _ := time.Parse(time.DateOnly, key)
	rep := &Report{
		OrganizationName: r.opts.Organization,
		DateRange:        DateRange{Start: start, End: start.Add(24*time.Hour - time.Second)},
		ContactInfo:      r.opts.Contact,
		ReportID:         fmt.Sprintf("%s_%s@%s", key, domain, r.opts.Submitter),
	}
	for _, p := range dd.Policies {
		pr := PolicyReport{Policy: PolicyDesc{Type: p.Type, String: p.Policy, Domain: domain, MXHost: p.MX}}
		pr.Summary.Successful = p.Successes
		for _, f := range p.Failures {
			pr.Summary.Failed += f.Count
			pr.FailureDetails = append(pr.FailureDetails, FailureDetail{
				ResultType: f.Result, SendingMTAIP: f.SendingIP, ReceivingIP: f.ReceivingIP,
				ReceivingMXHostname: f.MXHost, FailedSessionCount: f.Count, FailureReasonCode: f.Reason,
			})
		}
		rep.Policies = append(rep.Policies, pr)
	}
	return rep
}

// Forget drops the results of day, once its reports are sent.
func (r *Recorder) Forget(day time.Time) {
	r.mu.Lock()
	delete(r.days, dayKey(day))
	r.dirty = true
	r.mu.Unlock()
}

// Save writes the results to Options.Path when they changed.
func (r *Recorder) Save() error {
	if r.opts.Path == "" {
		return nil
	}
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return nil
	}
	b, err := json.Marshal(r.days)
	r.dirty = false
	r.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := r.opts.Path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("tlsrpt: save: %w", err)
	}
	if err := os.Rename(tmp, r.opts.Path); err != nil {
		return fmt.Errorf("tlsrpt: save: %w", err)
	}
	return nil
}

// Run saves the results every minute and sends the reports of every day
// before today that it holds (yesterday's shortly after midnight UTC, and
// after a restart any day missed while the node was down), until ctx
// ends; it saves once more on the way out.
func (r *Recorder) Run(ctx context.Context) {
	defer r.save()
	for {
		t := r.opts.Clock.NewTimer(time.Minute)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		r.SendDue(ctx)
		r.save()
	}
}

// SendDue sends the reports of every recorded day before today (UTC).
func (r *Recorder) SendDue(ctx context.Context) {
	today := dayKey(r.opts.Clock.Now())
	r.mu.Lock()
	var due []string
	for day := range r.days {
		if day < today {
			due = append(due, day)
		}
	}
	r.mu.Unlock()
	slices.Sort(due)
	for _, key := range due {
		day, _ := time.Parse(time.DateOnly, key)
		if _, err := r.Send(ctx, day); err != nil {
			r.opts.Logger.Warn("TLS-RPT reports not all sent", "day", key, "err", err)
		}
	}
}

func (r *Recorder) save() {
	if err := r.Save(); err != nil {
		r.opts.Logger.Error("TLS-RPT results not saved", "path", r.opts.Path, "err", err)
	}
}

// Options configure a Recorder.
type Options struct {
	// Path is the file the results are kept in until they are reported,
	// normally "tls-rpt.json" in the spool directory. The default value
	// "" keeps them in memory only.
	Path string
	// Organization is the report's organization-name. The default value
	// is Submitter.
	Organization string
	// Submitter is the host name of the reporting MTA, in the report ID
	// and the TLS-Report-Submitter field. The default value is
	// "localhost".
	Submitter string
	// Contact is the report's contact-info, and the From of mailed
	// reports. The default value is "postmaster@" + Submitter.
	Contact string
	// Resolver looks up the _smtp._tls TXT records. Required by Send.
	Resolver TXTResolver
	// Mail queues a mailed report; the node points it at its own queue.
	// The default value nil skips mailto: addresses.
	Mail func(ctx context.Context, from, to string, content []byte) error
	// HTTPClient posts https: reports. The default value is a client with
	// a 30s timeout and the system's roots.
	HTTPClient HTTPDoer
	// Clock tells the time. The default value is clock.Real{}.
	Clock clock.Clock
	// Logger logs the reports sent. The default value is slog.Default().
	Logger *slog.Logger
}

func (o *Options) ensureDefaults() {
	if o.Submitter == "" {
		o.Submitter = "localhost"
	}
	if o.Organization == "" {
		o.Organization = o.Submitter
	}
	if o.Contact == "" {
		o.Contact = "postmaster@" + o.Submitter
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = defaultHTTPClient()
	}
}
