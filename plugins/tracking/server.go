package tracking

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"corriere/core/event"
)

// pixel is a transparent 1x1 GIF.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// handler serves the open pixel at /o/TOKEN and the click redirect at
// /c/TOKEN (GET and HEAD); everything else, and every token that does not
// verify, is a 404.
func (p *Plugin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /o/{token}", func(w http.ResponseWriter, r *http.Request) {
		c, ok := p.claimsOf(r, kindOpen)
		if !ok {
			http.NotFound(w, r)
			return
		}
		p.record(event.Opened, c, r)
		w.Header().Set("Content-Type", "image/gif")
		w.Header().Set("Cache-Control", "no-store, private")
		_, _ = w.Write(pixel) // the client is gone if this fails
	})
	mux.HandleFunc("GET /c/{token}", func(w http.ResponseWriter, r *http.Request) {
		c, ok := p.claimsOf(r, kindClick)
		if !ok || !trackable(c.URL) {
			http.NotFound(w, r)
			return
		}
		p.record(event.Clicked, c, r)
		w.Header().Set("Cache-Control", "no-store, private")
		http.Redirect(w, r, c.URL, http.StatusFound)
	})
	mux.HandleFunc("/", http.NotFound)
	return mux
}

// claimsOf returns the claims of the request's token when it verifies, is
// of kind, and names the host the request was sent to.
func (p *Plugin) claimsOf(r *http.Request, kind string) (claims, bool) {
	c, err := p.signer.verify(r.PathValue("token"))
	if err != nil || c.Kind != kind || !strings.EqualFold(requestHost(r), c.Host) {
		p.log.Debug("tracking: refused token", "path", r.URL.Path, "host", r.Host, "client", r.RemoteAddr)
		return claims{}, false
	}
	return c, true
}

// requestHost is the request's Host without a port.
func requestHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		return h
	}
	return r.Host
}

// record emits the first open or click of a recipient, flagged when a
// machine made it.
func (p *Plugin) record(typ event.Type, c claims, r *http.Request) {
	now := p.now()
	rules := p.rules.Load()
	if rules == nil {
		rules = &Rules{MachineOpenAgents: defaultMachineOpenAgents, MachineOpenNetworks: defaultMachineOpenNetworks,
			ScannerAgents: defaultScannerAgents, ScannerWindow: defaultScannerWindow, DedupWindow: defaultDedupWindow}
	}
	d, delivered := p.deliveries.get(c.MsgID, c.Rcpt)
	var cat event.Category
	var why string
	if typ == event.Opened {
		cat, why = rules.machineOpen(r)
	} else {
		cat, why = rules.scannerClick(r, d, delivered, now)
		if cat == "" {
			why = "followed " + c.URL
		}
	}
	isFirst, err := p.seen.first(seenKey{typ: typ, category: cat, msgID: c.MsgID, rcpt: c.Rcpt}, now, rules.DedupWindow)
	if err != nil {
		p.log.Error("tracking: first open or click not recorded; a restart may count it again", "msg_id", c.MsgID, "err", err)
	}
	if !isFirst {
		return
	}
	e := &event.Event{Time: now, Type: typ, MsgID: c.MsgID, Recipient: c.Rcpt, Tenant: c.Tenant, Class: c.Class,
		Campaign: c.Campaign, Category: cat, Reason: why}
	if delivered {
		e.Provider, e.Source = d.provider, d.source
	}
	p.events.Emit(e)
}

// machineOpen says whether an image proxy fetched the pixel.
func (r *Rules) machineOpen(req *http.Request) (event.Category, string) {
	ua := req.UserAgent()
	for _, a := range r.MachineOpenAgents {
		if strings.Contains(ua, a) {
			return event.MachineOpen, "image proxy (user agent " + a + ")"
		}
	}
	if ip, ok := clientIP(req); ok {
		for _, n := range r.MachineOpenNetworks {
			if n.Contains(ip) {
				return event.MachineOpen, "image proxy network " + n.String()
			}
		}
	}
	return "", ""
}

// scannerClick says whether a security scanner followed the link: with a
// HEAD request, from a scanner's network or user agent, or within
// ScannerWindow of the delivery.
func (r *Rules) scannerClick(req *http.Request, d delivery, delivered bool, now time.Time) (event.Category, string) {
	if req.Method == http.MethodHead {
		return event.ScannerClick, "HEAD request: link scanners check links without following them"
	}
	ua := req.UserAgent()
	for _, a := range r.ScannerAgents {
		if strings.Contains(ua, a) {
			return event.ScannerClick, "link scanner (user agent " + a + ")"
		}
	}
	if ip, ok := clientIP(req); ok {
		for _, n := range r.ScannerNetworks {
			if n.Contains(ip) {
				return event.ScannerClick, "link scanner network " + n.String()
			}
		}
	}
	if delivered && now.Sub(d.at) < r.ScannerWindow {
		return event.ScannerClick, fmt.Sprintf("clicked %s after delivery, sooner than a reader", now.Sub(d.at).Round(time.Millisecond))
	}
	return "", ""
}

// clientIP is the address the request came from.
func clientIP(req *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
