package tenant

import (
	"fmt"
	"net/url"
	"slices"
)

// Webhook is an endpoint that receives a tenant's events as signed JSON
// POSTs (see plugins/webhook).
type Webhook struct {
	// URL is where the events are posted, http or https.
	URL string
	// Events are the event types sent (WebhookEvents); empty means all.
	Events []string
	// Secret keys the HMAC-SHA256 signature of every request.
	Secret string
}

// WebhookEvents are the event types a webhook may ask for.
var WebhookEvents = []string{"delivered", "deferred", "bounced", "expired", "complained", "suppressed", "opened", "clicked"}

// Wants reports whether the webhook takes events of type typ.
func (w *Webhook) Wants(typ string) bool {
	return len(w.Events) == 0 || slices.Contains(w.Events, typ)
}

// Check reports what is wrong with the webhook, or nil.
func (w *Webhook) Check() error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url = %q is not an http or https URL", w.URL)
	}
	if len(w.Secret) < 16 {
		return fmt.Errorf("secret must be at least 16 characters: it keys the signature receivers check")
	}
	for _, e := range w.Events {
		if !slices.Contains(WebhookEvents, e) {
			return fmt.Errorf("events: unknown event %q (known: %v)", e, WebhookEvents)
		}
	}
	return nil
}
