package demo

import (
	"context"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"corriere/core/bounce"
	"corriere/core/event"
)

// Report is the outcome of a run: the accounting of every recipient of the
// workload.
type Report struct {
	// Messages and Recipients are the size of the workload.
	Messages, Recipients int
	// NotSubmitted counts recipients whose message was never submitted
	// (the run ended first).
	NotSubmitted int
	// Refused counts recipients not acknowledged: refused at RCPT TO, or
	// their message refused after DATA.
	Refused int
	// Acknowledged counts recipients acknowledged with 250: Corriere
	// answers for each of them.
	Acknowledged int
	// Delivered counts acknowledged recipients accepted by their MX.
	Delivered int
	// ConfirmedBySim counts delivered recipients the simulated providers
	// recorded with the same Message-ID.
	ConfirmedBySim int
	// DeferredThenDelivered counts delivered recipients that were deferred
	// first; GreylistedThenDelivered those deferred by greylisting.
	DeferredThenDelivered, GreylistedThenDelivered int
	// Bounced and Expired count recipients that failed for good with a DSN
	// queued to the sender.
	Bounced, Expired int
	// Suppressed counts recipients dropped as suppressed.
	Suppressed int
	// Queued counts recipients still in the spool, each with a reason.
	Queued int
	// QueuedReasons counts the still-queued recipients by last reply.
	QueuedReasons map[string]int
	// Unaccounted lists acknowledged recipients that are in none of the
	// states above, as "address: why".
	Unaccounted []string
	// DSNs counts the DSNs Corriere queued; DSNsDelivered those delivered.
	DSNs, DSNsDelivered int
	// AsyncBounces and Complaints count the bounces and complaint reports
	// the simulated providers sent to the senders' MX afterwards.
	AsyncBounces, Complaints int
	// FBLComplaints counts the complaint reports the bounce listener took
	// at the feedback-loop address and attributed to a tenant and
	// recipient, through a VERP address or the X-Corriere-Ref header;
	// FBLUnattributed those it could not attribute.
	FBLComplaints, FBLUnattributed int
	// ClearUnderPolicy counts recipients of domains that publish MTA-STS or
	// DANE that reached their MX in clear: always 0, since a policy that
	// cannot be met holds the mail back.
	ClearUnderPolicy int
	// LateBounced counts delivered recipients of re-enveloped mail whose
	// provider bounced them later, as the bounce listener recorded.
	LateBounced int
	// Elapsed is the run's duration; Ending says why it ended.
	Elapsed time.Duration
	Ending  string
	// EventLog is the node's JSON-lines event log.
	EventLog string
}

// OK reports whether every acknowledged recipient is accounted for.
func (r *Report) OK() bool { return len(r.Unaccounted) == 0 }

// account places every workload recipient, from the injector's answers,
// the events, the spool's leftovers and the simulator's records.
func (d *run) account(left []leftEntry) *Report {
	v := d.tracker.view()
	subs := d.injector.snapshot()
	r := &Report{
		Messages: len(d.wl.messages), Recipients: d.wl.recipients, QueuedReasons: map[string]int{},
		Elapsed: time.Since(d.started), Ending: d.ending, EventLog: d.ws.events,
	}
	seenBySim := map[string]int{}
	for _, x := range d.sim.Deliveries() {
		seenBySim[strings.ToLower(x.Recipient)+" "+strings.Trim(x.MessageID, "<>")]++
	}
	inSpool := map[string]leftEntry{}
	for _, e := range left {
		inSpool[e.rcpt] = e
	}
	for _, m := range d.wl.messages {
		for _, rcpt := range m.rcpts {
			sub, submitted := subs[rcpt]
			switch {
			case !submitted:
				r.NotSubmitted++
				continue
			case !sub.acked:
				r.Refused++
				continue
			}
			r.Acknowledged++
			st := v.rcpts[rcpt]
			switch st.status {
			case event.Delivered:
				r.Delivered++
				if seenBySim[rcpt+" "+m.msgID] > 0 {
					r.ConfirmedBySim++
				} else {
					r.Unaccounted = append(r.Unaccounted, rcpt+": Corriere logged a delivery the simulated provider has no record of")
				}
				if st.deferrals > 0 {
					r.DeferredThenDelivered++
				}
				if st.greylisted {
					r.GreylistedThenDelivered++
				}
				if st.lateBounce != "" {
					r.LateBounced++
				}
			case event.Bounced, event.Expired:
				if v.dsns[st.msgID] == 0 {
					r.Unaccounted = append(r.Unaccounted, rcpt+": "+string(st.status)+" without a DSN ("+st.lastReply+")")
				} else if st.status == event.Bounced {
					r.Bounced++
				} else {
					r.Expired++
				}
			case event.Suppressed:
				r.Suppressed++
			default:
				e, ok := inSpool[rcpt]
				if !ok {
					r.Unaccounted = append(r.Unaccounted, rcpt+": acknowledged, neither delivered nor bounced, and not in the spool")
					continue
				}
				r.Queued++
				reason := e.reply
				if reason == "" {
					reason = st.lastReply
				}
				if reason == "" {
					reason = "not tried yet"
				}
				r.QueuedReasons[generic(reason)]++
			}
		}
	}
	d.in = d.inbound(r)
	if b := d.node.Bounces(); b != nil {
		c := b.Counts()
		r.FBLComplaints, r.FBLUnattributed = int(c.Complaints), int(c.Unattributed)
	}
	for _, o := range d.tlsOutcomes(v) {
		if o.policy {
			r.ClearUnderPolicy += o.inClear
		}
	}
	r.DSNs = len(v.dsnOf)
	for id := range v.dsnOf {
		if v.notices[id].status == event.Delivered {
			r.DSNsDelivered++
		}
	}
	return r
}

// intro describes the run before it starts.
func (d *run) intro() {
	w := d.opts.Out
	kinds := map[Kind]int{}
	batches := 0
	for _, m := range d.wl.messages {
		kinds[m.kind] += len(m.rcpts)
		if m.kind == KindNewsletter {
			batches++
		}
	}
	fmt.Fprintln(w, "Corriere demo: an online shop's newsletter campaign and everyday mail, through Corriere,")
	fmt.Fprintln(w, "to a simulated mail internet on loopback.")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  workload   %s recipients in %d messages: newsletter %s (%d batches), transactional %s, critical %s, personal %s\n",
		num(d.wl.recipients), len(d.wl.messages), num(kinds[KindNewsletter]), batches,
		num(kinds[KindTransactional]), num(kinds[KindCritical]), num(kinds[KindPersonal]))
	fmt.Fprintf(w, "             tenants %s (the shop, %s) and %s (doctors writing from their own domains), with AUTH over %d connections\n",
		tenantShop, shopDomain, tenantPlatform, connsPerTenant[tenantShop]+connsPerTenant[tenantPlatform])
	fmt.Fprintf(w, "  corriere   SMTP %s · sources %s-%s · policy %s and %s with the demo tenants added\n",
		d.node.Addr(), sources[0].IP, sources[len(sources)-1].IP, d.opts.ScriptsDir, d.opts.RulesDir)
	if a := d.node.AdminAddr(); a != "" {
		fmt.Fprintf(w, "  status     http://%s/ (the status page; the admin API's token is in the spool's admin.token)\n", a)
	}
	fmt.Fprintf(w, "  internet   DNS %s · every MX on port %d of its 127.0.x.y · senders' MX (DSNs, bounces, complaints) 127.0.0.1:%d\n",
		d.sim.DNSAddr(), d.port, d.port)
	fmt.Fprintf(w, "  bounces    %s re-envelopes: VERP envelope senders on %s, whose MX is Corriere's bounce listener %s\n",
		tenantPlatform, bounceDomain, d.node.BounceAddr())
	if d.warmup {
		fmt.Fprintf(w, "  pools      %s is on day 1 of a warm-up: %d messages per provider today, then the warm IPs take over;\n"+
			"             the other sources open at most %d connections per provider (rules/pools.lua in the workspace)\n",
			warmingSource, d.warmCap, connsPerSource)
	}
	fmt.Fprintf(w, "  time       compressed for the demo: retries after %s · policy delays ÷%d, at most %ds · max age %s · providers' clocks ×%d\n",
		durations(retrySchedule), policySpeedup, maxPolicyDelay, d.opts.MaxAge, simSpeedup)
	fmt.Fprintf(w, "  workspace  %s (log: %s)\n", d.ws.dir, filepath.Base(d.ws.log))
	if !d.opts.Live {
		fmt.Fprintln(w)
	}
}

func durations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// summary prints the final tables and the accounting.
func (d *run) summary(r *Report) {
	w := d.opts.Out
	v := d.tracker.view()
	subs := d.injector.snapshot()
	fmt.Fprintf(w, "\nFinished after %.1fs: %s.\n\n", r.Elapsed.Seconds(), r.Ending)

	fmt.Fprintln(w, "Final state per provider and class (deferred counts deferred attempts; queued, recipients still waiting):")
	rows, total := tally(v, subs, d.wl)
	writeTable(w, rows, total)

	fmt.Fprintln(w, "\nWhat the simulated providers saw (named as in the world file; the table above names them as Corriere's")
	fmt.Fprintln(w, "rules/providers.lua does, and a domain it has no entry for by the domain):")
	var st strings.Builder
	if err := d.sim.WriteStats(&st); err == nil {
		for line := range strings.Lines(st.String()) {
			fmt.Fprint(w, "  "+line)
		}
	}

	d.writeInbound(w, r)
	d.writeTLS(w, v)

	fmt.Fprintf(w, "\nAccounting of the %s recipients in %d messages:\n", num(r.Recipients), r.Messages)
	line := func(indent int, label string, n int, note string) {
		fmt.Fprintf(w, "%s%-*s %7s   %s\n", strings.Repeat(" ", indent), 46-indent, label, num(n), note)
	}
	line(2, "acknowledged with 250", r.Acknowledged, "")
	line(4, "delivered", r.Delivered, fmt.Sprintf("%s recorded by the simulated providers; %s after a deferral, %s of them greylisted",
		num(r.ConfirmedBySim), num(r.DeferredThenDelivered), num(r.GreylistedThenDelivered)))
	if r.LateBounced > 0 {
		line(6, "of which bounced later (bounce listener)", r.LateBounced, "each DSN forwarded to its doctor")
	}
	line(4, "bounced, DSN queued to the sender", r.Bounced, "")
	line(4, fmt.Sprintf("expired after %s of retries, DSN queued", d.opts.MaxAge), r.Expired, "")
	if r.Suppressed > 0 {
		line(4, "suppressed (dropped)", r.Suppressed, "")
	}
	line(4, "still queued, with a reason (in the spool)", r.Queued, "")
	writeReasons(w, r.QueuedReasons)
	line(4, "unaccounted", len(r.Unaccounted), "")
	line(2, "refused at submission (not acknowledged)", r.Refused, "")
	writeReasons(w, refusals(d.wl, subs))
	if r.NotSubmitted > 0 {
		line(2, "not submitted (the run ended first)", r.NotSubmitted, "")
	}
	fmt.Fprintf(w, "  DSNs: %d queued, %d delivered (%d at the senders' MX above; %d to re-enveloping tenants' authors at their\n"+
		"        providers, class dsn in the first table), %d still queued\n",
		r.DSNs, r.DSNsDelivered, d.in.dsns, max(0, r.DSNsDelivered-d.in.dsns), r.DSNs-r.DSNsDelivered)

	fmt.Fprintf(w, "\nEvent log: %s (one JSON object per line)\nLog:       %s\n", r.EventLog, d.ws.log)
	if d.ws.temp {
		fmt.Fprintln(w, "The spool and the policy copy were removed; run with --keep DIR to keep them.")
	}
	if r.OK() {
		fmt.Fprintln(w, "\nAccounting OK: every acknowledged recipient was delivered, bounced with a DSN, or is still queued with a reason.")
		return
	}
	fmt.Fprintf(w, "\nAccounting FAILED: %d acknowledged recipients are unaccounted for:\n", len(r.Unaccounted))
	for i, u := range r.Unaccounted {
		if i == 50 {
			fmt.Fprintf(w, "  ... and %d more\n", len(r.Unaccounted)-i)
			break
		}
		fmt.Fprintln(w, "  "+u)
	}
}

// addrInReply matches an address quoted in a reply.
var addrInReply = regexp.MustCompile(`<[^<>@\s]*@[^<>\s]*>`)

// generic removes the recipient from a reply, so that like replies count
// together.
func generic(reply string) string {
	return addrInReply.ReplaceAllString(reply, "<…>")
}

// refusals counts the submission refusals by reply.
func refusals(wl *workload, subs map[string]submission) map[string]int {
	out := map[string]int{}
	for rcpt := range wl.byRcpt {
		if s, ok := subs[rcpt]; ok && !s.acked {
			out[generic(s.refusal)]++
		}
	}
	return out
}

// writeReasons lists reasons by count, most frequent first.
func writeReasons(w io.Writer, reasons map[string]int) {
	keys := slices.Collect(maps.Keys(reasons))
	sort.Slice(keys, func(i, j int) bool {
		if reasons[keys[i]] != reasons[keys[j]] {
			return reasons[keys[i]] > reasons[keys[j]]
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		fmt.Fprintf(w, "%14s  %s\n", num(reasons[k]), clip(k, 100))
	}
}

// inboundStats is what reached the senders' MX.
type inboundStats struct {
	dsns       int                    // DSNs from Corriere
	listed     int                    // failed recipients they report
	categories map[event.Category]int // on_bounce categories of the providers' mail
}

// inbound sorts the mail that reached the senders' MX: Corriere's DSNs,
// and the providers' later bounces and complaint reports, classified by
// the policy's on_bounce as the bounce listener would.
func (d *run) inbound(r *Report) inboundStats {
	ours := map[string]bool{}
	for _, s := range sources {
		ours[s.IP] = true
	}
	in := inboundStats{categories: map[event.Category]int{}}
	for _, m := range d.rcv.messages() {
		if ours[m.peer] {
			in.dsns++
			if rep, err := bounce.Parse(m.data); err == nil {
				in.listed += len(rep.Failures)
			}
			continue
		}
		results, err := bounce.Classify(context.Background(), m.data, d.node.Policy())
		if err != nil {
			d.log.Warn("cannot classify inbound mail", "from", m.from, "err", err)
		}
		for _, res := range results {
			if res.Report.Kind == bounce.KindARF {
				r.Complaints++
			} else {
				r.AsyncBounces++
			}
			in.categories[res.Verdict.Category]++
		}
	}
	return in
}

// writeInbound prints what reached the senders' MX.
func (d *run) writeInbound(w io.Writer, r *Report) {
	in := d.in
	fmt.Fprintf(w, "\nMail that reached the senders' MX (127.0.0.1:%d):\n", d.port)
	fmt.Fprintf(w, "  DSNs from Corriere            %5d   reporting %d failed recipients\n", in.dsns, in.listed)
	fmt.Fprintf(w, "  bounces sent later            %5d   accepted first, then bounced by the provider\n", r.AsyncBounces)
	fmt.Fprintf(w, "  complaint reports (ARF)       %5d\n", r.Complaints)
	if len(in.categories) > 0 {
		keys := slices.Sorted(maps.Keys(in.categories))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, in.categories[k])
		}
		fmt.Fprintf(w, "  on_bounce files them as: %s\n", strings.Join(parts, ", "))
	}
	if b := d.node.Bounces(); b != nil {
		c := b.Counts()
		fmt.Fprintf(w, "\nBounce listener (%s, the MX of %s, for %s's re-enveloped mail and %s):\n", d.node.BounceAddr(), bounceDomain, tenantPlatform, fblAddress)
		fmt.Fprintf(w, "  bounces taken                 %5d   %d forwarded to the doctor who wrote, hard ones suppress the address\n", c.Bounces, c.Forwarded)
		fmt.Fprintf(w, "  complaint reports             %5d   %d known by X-Corriere-Ref alone; the complainer is suppressed for its tenant where the reference names them\n", c.Complaints, c.Referenced)
		fmt.Fprintf(w, "  unattributed reports          %5d   quoting neither a VERP address nor a reference that verifies\n", c.Unattributed)
		fmt.Fprintf(w, "  refused: forged %d, not a bounce address %d; ignored %d\n", c.Forged, c.NotVERP, c.Ignored)
	}
}
