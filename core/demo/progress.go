package demo

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"corriere/core/event"
	"corriere/core/queue"
)

// counts are the outcomes of some recipients.
type counts struct {
	delivered, deferred, bounced, queued int
}

func (c *counts) add(o counts) {
	c.delivered += o.delivered
	c.deferred += o.deferred
	c.bounced += o.bounced
	c.queued += o.queued
}

// row is one line of the progress table: a provider and a class.
type row struct {
	provider, class string
	counts
}

// classOrder is the order of classes in tables: Corriere's priority order,
// then the DSNs it sent.
var classOrder = []string{"critical", "transactional", "personal", "newsletter", "dsn"}

// notTried names the row of recipients that have not had an attempt yet.
const notTried = "(not tried yet)"

// tally counts the recipients by provider and class. Deferred counts
// deferred attempts; queued counts recipients not settled yet.
func tally(v view, subs map[string]submission, wl *workload) ([]row, counts) {
	byKey := map[[2]string]*row{}
	get := func(provider, class string) *row {
		k := [2]string{provider, class}
		if byKey[k] == nil {
			byKey[k] = &row{provider: provider, class: class}
		}
		return byKey[k]
	}
	for rcpt, m := range wl.byRcpt {
		st, seen := v.rcpts[rcpt]
		if !seen {
			if subs[rcpt].acked {
				get(notTried, string(m.kind)).queued++
			}
			continue
		}
		provider, class := st.provider, st.class
		if provider == "" {
			provider = domainOf(rcpt)
		}
		if class == "" {
			class = string(m.kind)
		}
		r := get(provider, class)
		r.deferred += st.deferrals
		switch st.status {
		case event.Delivered:
			r.delivered++
		case event.Bounced, event.Expired, event.Suppressed:
			r.bounced++
		default:
			r.queued++
		}
	}
	for _, n := range v.notices {
		provider := n.provider
		if provider == "" {
			provider = domainOf(n.rcpt)
		}
		r := get(provider, "dsn")
		r.deferred += n.deferrals
		switch n.status {
		case event.Delivered:
			r.delivered++
		case event.Bounced, event.Expired, event.Suppressed:
			r.bounced++
		default:
			r.queued++
		}
	}
	rows := make([]row, 0, len(byKey))
	var total counts
	for _, r := range byKey {
		rows = append(rows, *r)
		total.add(r.counts)
	}
	slices.SortFunc(rows, func(a, b row) int {
		if (a.provider == notTried) != (b.provider == notTried) {
			if a.provider == notTried {
				return 1
			}
			return -1
		}
		if c := strings.Compare(a.provider, b.provider); c != 0 {
			return c
		}
		return slices.Index(classOrder, a.class) - slices.Index(classOrder, b.class)
	})
	return rows, total
}

// writeTable writes rows and their total.
func writeTable(w io.Writer, rows []row, total counts) {
	fmt.Fprintf(w, "  %-22s %-14s %9s %9s %8s %7s\n", "PROVIDER", "CLASS", "DELIVERED", "DEFERRED", "BOUNCED", "QUEUED")
	for _, r := range rows {
		fmt.Fprintf(w, "  %-22s %-14s %9s %9s %8s %7s\n", clip(r.provider, 22), r.class,
			num(r.delivered), num(r.deferred), num(r.bounced), num(r.queued))
	}
	fmt.Fprintf(w, "  %-22s %-14s %9s %9s %8s %7s\n", "total", "",
		num(total.delivered), num(total.deferred), num(total.bounced), num(total.queued))
}

// progress shows the run as it goes: on a terminal a table redrawn in
// place, with suspensions, resumptions and warm-up caps scrolling above it;
// elsewhere the same happenings and a progress line every interval.
type progress struct {
	d      *run
	out    io.Writer
	live   bool
	drawn  int             // lines of the table drawn last (live)
	seen   int             // lane changes already printed
	capped map[string]bool // warm-up caps already announced, by lane
}

func newProgress(d *run) *progress {
	return &progress{d: d, out: d.opts.Out, live: d.opts.Live, capped: map[string]bool{}}
}

// show prints what happened since the last call and the current state.
func (p *progress) show() {
	v := p.d.tracker.view()
	subs := p.d.injector.snapshot()
	st := p.d.node.Queue().Status()
	var b bytes.Buffer
	if p.live && p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\x1b[J", p.drawn)
	}
	for _, g := range coalesce(v.lanes[p.seen:]) {
		b.WriteString(p.laneLine(g.first, g.n) + "\n")
	}
	p.seen = len(v.lanes)
	for _, l := range st.Lanes {
		k := l.Source + " " + l.Provider
		if w := l.Warmup; w != nil && w.Sent >= int64(w.Cap) && !p.capped[k] {
			p.capped[k] = true
			fmt.Fprintf(&b, "%7s  warm-up    %s ← %s reached today's cap (%d, day %d); the rest leaves from the warm IPs\n",
				p.elapsed(time.Now()), l.Provider, l.Source, w.Cap, w.Day)
		}
	}
	if p.live {
		var t bytes.Buffer
		p.header(&t, v, subs, st)
		rows, total := tally(v, subs, p.d.wl)
		writeTable(&t, rows, total)
		p.footer(&t, st)
		p.drawn = bytes.Count(t.Bytes(), []byte("\n"))
		b.Write(t.Bytes())
	} else {
		b.WriteString(p.line(v, subs, st) + "\n")
	}
	p.out.Write(b.Bytes())
}

// done leaves the last table on the screen.
func (p *progress) done() { p.drawn = 0 }

func (p *progress) elapsed(t time.Time) string {
	return fmt.Sprintf("%.1fs", t.Sub(p.d.started).Seconds())
}

// laneGroup is a run of like lane changes: a lane's runners that meet the
// same refusal at once each extend the suspension.
type laneGroup struct {
	first laneChange
	n     int
}

// coalesce groups changes of the same kind, lane and reply, in order of
// their first occurrence.
func coalesce(changes []laneChange) []laneGroup {
	var out []laneGroup
	index := map[string]int{}
	for _, c := range changes {
		k := string(c.typ) + " " + c.provider + " " + c.source + " " + c.reason
		if i, ok := index[k]; ok {
			out[i].n++
			continue
		}
		index[k] = len(out)
		out = append(out, laneGroup{first: c, n: 1})
	}
	return out
}

// laneLine describes a suspension or a resumption, n times over.
func (p *progress) laneLine(c laneChange, n int) string {
	from := c.source
	if from == "" {
		from = "every IP"
	}
	times := ""
	if n > 1 {
		times = fmt.Sprintf(" (×%d)", n)
	}
	if c.typ == event.Resumed {
		return fmt.Sprintf("%7s  resumed    %s ← %s%s", p.elapsed(c.at), c.provider, from, times)
	}
	return fmt.Sprintf("%7s  suspended  %s ← %s for %s%s: %s", p.elapsed(c.at), c.provider, from,
		c.until.Sub(c.at).Round(100*time.Millisecond), times, clip(c.reason, 100))
}

// header is the live table's first line.
func (p *progress) header(w io.Writer, v view, subs map[string]submission, st queue.Status) {
	sent, _, _ := p.d.injector.progress()
	acked := 0
	for _, s := range subs {
		if s.acked {
			acked++
		}
	}
	fmt.Fprintf(w, "\ncorriere demo %s · submitted %d/%d messages, %s recipients acknowledged · in queue %s\n",
		p.elapsed(time.Now()), sent, len(p.d.wl.messages), num(acked), num(int(st.Pending)))
}

// footer lists the suspended lanes and the warming IP's allowance.
func (p *progress) footer(w io.Writer, st queue.Status) {
	now := time.Now()
	var susp, warm []string
	for _, l := range st.Lanes {
		if l.SuspendedUntil.After(now) {
			susp = append(susp, fmt.Sprintf("%s ← %s (%s)", l.Provider, l.Source, l.SuspendedUntil.Sub(now).Round(time.Second)))
		}
		if l.Warmup != nil {
			warm = append(warm, fmt.Sprintf("%s %d/%d", l.Provider, l.Warmup.Sent, l.Warmup.Cap))
		}
	}
	slices.Sort(susp)
	slices.Sort(warm)
	if len(susp) > 0 {
		fmt.Fprintf(w, "  suspended now: %s\n", strings.Join(susp, ", "))
	}
	if len(warm) > 0 {
		fmt.Fprintf(w, "  warm-up of %s today: %s\n", warmingSource, strings.Join(warm, ", "))
	}
}

// line is the plain progress line.
func (p *progress) line(v view, subs map[string]submission, st queue.Status) string {
	sent, _, _ := p.d.injector.progress()
	_, total := tally(v, subs, p.d.wl)
	suspended := 0
	for _, l := range st.Lanes {
		if l.SuspendedUntil.After(time.Now()) {
			suspended++
		}
	}
	return fmt.Sprintf("%7s  submitted %d/%d messages · delivered %s · deferred %s · bounced %s · queued %s · suspended lanes %d",
		p.elapsed(time.Now()), sent, len(p.d.wl.messages), num(total.delivered), num(total.deferred),
		num(total.bounced), num(total.queued), suspended)
}

// num formats n with thousands separators.
func num(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + num(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// clip shortens s to at most n runes.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
