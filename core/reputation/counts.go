package reputation

import (
	"maps"

	"corriere/core/event"
)

// Counts are what happened in one window to one row's mail.
type Counts struct {
	// Sent counts delivery attempts that reached a provider: deliveries,
	// deferrals and bounces during delivery.
	Sent int64 `json:"sent"`
	// Delivered counts recipients the provider accepted.
	Delivered int64 `json:"delivered"`
	// Deferred counts attempts answered with a temporary failure.
	Deferred int64 `json:"deferred"`
	// Bounced counts recipients that failed for good (expired ones and
	// asynchronous bounces included), and BouncedBy splits them by
	// category of the bounce taxonomy.
	Bounced   int64                    `json:"bounced"`
	BouncedBy map[event.Category]int64 `json:"bounced_by,omitempty"`
	// Complained counts feedback-loop complaints.
	Complained int64 `json:"complained"`
	// Opened and Clicked count the first human open and click of each
	// recipient; MachineOpened and ScannerClicked those the tracking
	// plugin flagged as made by a proxy or a scanner.
	Opened         int64 `json:"opened"`
	Clicked        int64 `json:"clicked"`
	MachineOpened  int64 `json:"machine_opened"`
	ScannerClicked int64 `json:"scanner_clicked"`
}

// add adds o to c.
func (c *Counts) add(o *Counts) {
	c.Sent += o.Sent
	c.Delivered += o.Delivered
	c.Deferred += o.Deferred
	c.Bounced += o.Bounced
	c.Complained += o.Complained
	c.Opened += o.Opened
	c.Clicked += o.Clicked
	c.MachineOpened += o.MachineOpened
	c.ScannerClicked += o.ScannerClicked
	if len(o.BouncedBy) > 0 && c.BouncedBy == nil {
		c.BouncedBy = map[event.Category]int64{}
	}
	for cat, n := range o.BouncedBy {
		c.BouncedBy[cat] += n
	}
}

// clone returns a copy of c that shares no map with it.
func (c *Counts) clone() Counts {
	out := *c
	out.BouncedBy = maps.Clone(c.BouncedBy)
	return out
}

// isZero reports whether c counts nothing.
func (c *Counts) isZero() bool {
	return c.Sent == 0 && c.Delivered == 0 && c.Deferred == 0 && c.Bounced == 0 && c.Complained == 0 &&
		c.Opened == 0 && c.Clicked == 0 && c.MachineOpened == 0 && c.ScannerClicked == 0
}

// Rates are the shares deliverability is judged by, as fractions (0.02 is
// 2 %); a rate whose denominator is zero is 0.
type Rates struct {
	// Delivery, Deferral and Bounce are shares of the attempts (Sent).
	Delivery float64 `json:"delivery"`
	Deferral float64 `json:"deferral"`
	Bounce   float64 `json:"bounce"`
	// Complaint, Open and Click are shares of the delivered recipients.
	Complaint float64 `json:"complaint"`
	Open      float64 `json:"open"`
	Click     float64 `json:"click"`
}

// rates computes the rates of c.
func (c *Counts) rates() Rates {
	share := func(n, of int64) float64 {
		if of <= 0 {
			return 0
		}
		return float64(n) / float64(of)
	}
	return Rates{
		Delivery: share(c.Delivered, c.Sent), Deferral: share(c.Deferred, c.Sent), Bounce: share(c.Bounced, c.Sent),
		Complaint: share(c.Complained, c.Delivered), Open: share(c.Opened, c.Delivered), Click: share(c.Clicked, c.Delivered),
	}
}

// delta returns what e adds to the counts, and false when e is not one of
// the events reputation counts.
func delta(e *event.Event) (Counts, bool) {
	var c Counts
	attempted := e.MX != ""
	switch e.Type {
	case event.Delivered:
		c.Sent, c.Delivered = 1, 1
	case event.Deferred:
		if e.Category == event.CategoryWarmup || !attempted {
			return c, false
		}
		c.Sent, c.Deferred = 1, 1
	case event.Bounced, event.Expired:
		if attempted && e.Type == event.Bounced {
			c.Sent = 1
		}
		cat := e.Category
		if e.Type == event.Expired && cat == "" {
			cat = event.CategoryExpired
		}
		if cat == "" {
			cat = event.CategoryUndefined
		}
		c.Bounced = 1
		c.BouncedBy = map[event.Category]int64{cat: 1}
	case event.Complained:
		c.Complained = 1
	case event.Opened:
		if e.Category == event.MachineOpen {
			c.MachineOpened = 1
		} else {
			c.Opened = 1
		}
	case event.Clicked:
		if e.Category == event.ScannerClick {
			c.ScannerClicked = 1
		} else {
			c.Clicked = 1
		}
	default:
		return c, false
	}
	return c, true
}
