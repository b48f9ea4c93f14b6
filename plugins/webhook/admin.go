package webhook

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// maxDeadLetters is the most dead letters one admin request returns.
const maxDeadLetters = 10000

// deadLetters serves the outbox's dead letters as JSON, oldest first:
// ?tenant= narrows them to one tenant's endpoints, ?limit= (default and
// most 10,000) caps them.
func (b *base) deadLetters(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	box := b.box.Load()
	if box == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"error": b.name + ": the outbox is not open"})
		return
	}
	tenant := r.URL.Query().Get("tenant")
	if tenant == "" {
		tenant = "*"
	}
	limit := maxDeadLetters
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "limit must be a positive number"})
			return
		}
		limit = min(n, maxDeadLetters)
	}
	dl, err := box.AllDeadLetters(tenant, limit)
	if err != nil {
		b.log.Error("dead letters", "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"error": "cannot read the dead letters"})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"dead_letters": dl})
}

// AdminHandlers implements extension.AdminRoutes: GET
// /api/webhooks/deadletters lists the events given up.
func (p *Tenants) AdminHandlers() map[string]http.Handler {
	return map[string]http.Handler{"GET /api/webhooks/deadletters": http.HandlerFunc(p.deadLetters)}
}

// AdminHandlers implements extension.AdminRoutes: GET
// /api/eventsink/deadletters lists the events given up.
func (p *Sink) AdminHandlers() map[string]http.Handler {
	return map[string]http.Handler{"GET /api/eventsink/deadletters": http.HandlerFunc(p.deadLetters)}
}
