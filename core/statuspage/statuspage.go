package statuspage

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"corriere/core/event"
	"corriere/core/luart"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/reputation"
)

//go:embed templates/*.html
var files embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"pct":      func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"ago":      ago,
	"classes":  func() []message.Class { return message.Classes },
	"orSystem": orSystem,
	"dict":     dict,
	"perMin":   func(f float64) string { return fmt.Sprintf("%.1f/min", f) },
}).ParseFS(files, "templates/*.html"))

// Queue is what the page needs of the queue.
type Queue interface {
	Status() queue.Status
}

// Policy is what the page needs of the policy engine.
type Policy interface {
	Status() luart.Status
}

// Options configure the page.
type Options struct {
	// Reputation, Queue and Policy are what the page shows. Required.
	Reputation *reputation.Tracker
	Queue      Queue
	Policy     Policy
	// Hostname names the node in the title.
	Hostname string
	// Refresh is how often the page fetches its live part again. The
	// default value is 2 seconds.
	Refresh time.Duration
	// Now is the clock. The default value is time.Now.
	Now func() time.Time
	// Logger logs rendering failures. The default value is
	// slog.Default().
	Logger *slog.Logger
}

// New returns the page's handler: the whole page at "/" and its live part
// at "/status/live".
func New(opts Options) (http.Handler, error) {
	if opts.Reputation == nil || opts.Queue == nil || opts.Policy == nil {
		return nil, errors.New("statuspage: reputation, queue and policy are required")
	}
	if opts.Refresh <= 0 {
		opts.Refresh = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &page{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { p.render(w, "page") })
	mux.HandleFunc("GET /status/live", func(w http.ResponseWriter, _ *http.Request) { p.render(w, "live") })
	return mux, nil
}

type page struct {
	opts Options
}

// render writes the template name with a fresh view.
func (p *page) render(w http.ResponseWriter, name string) {
	var b strings.Builder
	if err := templates.ExecuteTemplate(&b, name, p.view()); err != nil {
		p.opts.Logger.Error("statuspage: render", "err", err)
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// Nothing on the page comes from elsewhere, and nothing may.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src 'self'; form-action 'self'")
	_, _ = w.Write([]byte(b.String())) // the client is gone if this fails
}

// view is what the templates show.
type view struct {
	Hostname    string
	Now         time.Time
	RefreshMs   int64
	Policy      luart.Status
	Queue       queue.Status
	Providers   []providerQueue
	Lanes       []lane
	Suspensions []reputation.Suspension
	Warmups     []warmup
	// Reputation tables: per provider, per (source IP, provider), per
	// tenant (all providers) and per class (all providers).
	ByProvider, ByIP, ByTenant, ByClass []row
}

// providerQueue is the queue of one provider by class.
type providerQueue struct {
	Provider string
	Queued   map[message.Class]int
	Total    int
	InFlight int
}

// lane is one lane's line.
type lane struct {
	Provider, Source string
	Depth, InFlight  int
	Connections      int
	Limits           string
	SentHour         int64
	// PerMinute is the attempts per minute of the last 10 to 15
	// minutes; RateFactor the slow-down the provider's replies imposed.
	PerMinute  float64
	RateFactor float64
	Suspended  bool
	Until      time.Time
	Reason     string
	Warmup     *queue.WarmupStatus
}

// warmup is one warming source's progress at a provider.
type warmup struct {
	Source, Provider string
	queue.WarmupStatus
	Bar template.HTML
}

// row is a reputation row with its chart.
type row struct {
	reputation.Row
	Chart template.HTML
	// TopBounce names the most frequent bounce category of the day.
	TopBounce string
}

func (p *page) view() view {
	now := p.opts.Now()
	st := p.opts.Queue.Status()
	v := view{Hostname: p.opts.Hostname, Now: now, RefreshMs: p.opts.Refresh.Milliseconds(),
		Policy: p.opts.Policy.Status(), Queue: st, Suspensions: p.opts.Reputation.Suspensions()}
	rows := p.opts.Reputation.Rows(reputation.Filter{Hourly: true})
	sentHour := map[[2]string]int64{}
	for _, r := range rows {
		if r.Dimension == reputation.ByIP && r.Provider != "" {
			sentHour[[2]string{r.Provider, r.Name}] = r.Hour.Sent
		}
	}
	byProv := map[string]*providerQueue{}
	for _, l := range st.Lanes {
		pq, ok := byProv[l.Provider]
		if !ok {
			pq = &providerQueue{Provider: l.Provider, Queued: map[message.Class]int{}}
			byProv[l.Provider] = pq
		}
		depth := 0
		for c, n := range l.Queued {
			pq.Queued[c] += n
			depth += n
		}
		pq.Total += depth
		pq.InFlight += l.InFlight
		ln := lane{Provider: l.Provider, Source: l.Source, Depth: depth, InFlight: l.InFlight, Connections: l.Connections,
			Limits: limitsText(l.Limits), SentHour: sentHour[[2]string{l.Provider, l.Source}], RateFactor: l.RateFactor,
			PerMinute: p.opts.Reputation.Rate(reputation.ByIP, l.Source, l.Provider),
			Until:     l.SuspendedUntil, Warmup: l.Warmup}
		if !l.SuspendedUntil.IsZero() {
			ln.Suspended = true
			ln.Reason = p.opts.Reputation.Reason(l.Provider, l.Source)
		}
		v.Lanes = append(v.Lanes, ln)
		if l.Warmup != nil {
			v.Warmups = append(v.Warmups, warmup{Source: l.Source, Provider: l.Provider, WarmupStatus: *l.Warmup,
				Bar: progressBar(l.Warmup.Sent, int64(l.Warmup.Cap))})
		}
	}
	for _, pq := range byProv {
		v.Providers = append(v.Providers, *pq)
	}
	sort.Slice(v.Providers, func(i, j int) bool {
		if v.Providers[i].Total != v.Providers[j].Total {
			return v.Providers[i].Total > v.Providers[j].Total
		}
		return v.Providers[i].Provider < v.Providers[j].Provider
	})
	for _, r := range rows {
		vr := row{Row: r, Chart: chart(r.Hourly), TopBounce: topBounce(r.Day.BouncedBy)}
		switch {
		case r.Dimension == reputation.ByProvider:
			v.ByProvider = append(v.ByProvider, vr)
		case r.Dimension == reputation.ByIP && r.Provider != "":
			v.ByIP = append(v.ByIP, vr)
		case r.Dimension == reputation.ByTenant && r.Provider == "":
			v.ByTenant = append(v.ByTenant, vr)
		case r.Dimension == reputation.ByClass && r.Provider == "":
			v.ByClass = append(v.ByClass, vr)
		}
	}
	return v
}

// limitsText formats a lane's limits: connections and rates.
func limitsText(lim policy.Limits) string {
	var parts []string
	if lim.MaxConnections > 0 {
		parts = append(parts, fmt.Sprintf("%d conn", lim.MaxConnections))
	}
	for _, r := range []struct {
		v    float64
		unit string
	}{{lim.PerSecond, "/s"}, {lim.PerMinute, "/min"}, {lim.PerHour, "/h"}, {lim.PerDay, "/day"}} {
		if r.v > 0 {
			parts = append(parts, fmt.Sprintf("%g%s", r.v, r.unit))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// topBounce names the most frequent category of by, "" when empty.
func topBounce(by map[event.Category]int64) string {
	best, n := event.Category(""), int64(0)
	for c, k := range by {
		if k > n || (k == n && c < best) {
			best, n = c, k
		}
	}
	return string(best)
}

// ago says how far t is from now, in whole seconds.
func ago(now, t time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d >= 0 {
		return "in " + d.String()
	}
	return (-d).String() + " ago"
}

// dict makes a map of its key, value arguments, for passing several
// values to a template.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// orSystem names the system's choice of source.
func orSystem(s string) string {
	if s == "" {
		return "(system)"
	}
	return s
}
