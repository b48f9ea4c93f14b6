package inspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"corriere/core/message"
	"corriere/core/spool"
)

// The admin API endpoints, mounted with admin.Options.Handlers:
//
//	GET /api/recipients?tenant=&campaign=&class=&provider=&domain=&rcpt=&source=&state=&older_than=&limit=
//	    {"recipients": [Recipient...]}
//	GET /api/messages/{id}       an Explanation; 404 when the message is not queued
//	POST /api/recipients/{bounce|delete|retry|rebind}?selectors&reason=&pool=
//	    an ActResponse: {"action", "selected", "done", "pending"}
//	POST /api/suspend?provider=&source=&tenant=&campaign=&for=&reason=
//	    {"provider", "source", "tenant", "campaign", "until", "count"}
//	POST /api/resume?provider=&source=&tenant=&campaign=   the same without until
//
// older_than is a Go duration ("2h"). Errors are {"error": "sentence"}
// with 400 (a bad selector), 404 or 500.
const (
	recipientsPath = "/api/recipients"
	messagesPath   = "/api/messages/"
)

// ListResponse is the answer of GET /api/recipients.
type ListResponse struct {
	Recipients []Recipient `json:"recipients"`
}

// AdminHandlers returns the endpoints keyed by ServeMux pattern, for
// admin.Options.Handlers; pol explains messages (nil leaves traces out),
// and a acts on recipients (nil leaves the actions out).
func AdminHandlers(in *Inspector, pol Policy, a Actor) map[string]http.Handler {
	h := map[string]http.Handler{
		"GET " + recipientsPath: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f, err := FilterFromQuery(r.URL.Query())
			if err != nil {
				writeError(w, http.StatusBadRequest, err)
				return
			}
			list, err := in.List(f)
			if err != nil {
				writeError(w, http.StatusInternalServerError, err)
				return
			}
			writeJSON(w, http.StatusOK, ListResponse{Recipients: list})
		}),
		"GET " + messagesPath + "{id}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			x, err := in.Explain(r.Context(), r.PathValue("id"), pol)
			switch {
			case errors.Is(err, spool.ErrNotFound):
				writeError(w, http.StatusNotFound, fmt.Errorf("message %s is not queued", r.PathValue("id")))
			case err != nil:
				writeError(w, http.StatusInternalServerError, err)
			default:
				writeJSON(w, http.StatusOK, x)
			}
		}),
	}
	if a != nil {
		h["POST "+recipientsPath+"/{action}"] = actHandler(in, a, pol)
	}
	if s, ok := a.(Suspender); ok {
		h["POST /api/suspend"] = suspendHandler(s, in.now)
		h["POST /api/resume"] = resumeHandler(s)
	}
	return h
}

// FilterFromQuery reads a Filter from the query parameters of
// GET /api/recipients.
func FilterFromQuery(q url.Values) (Filter, error) {
	f := Filter{
		Tenant: q.Get("tenant"), Campaign: q.Get("campaign"), Class: message.Class(q.Get("class")),
		Provider: q.Get("provider"), Domain: q.Get("domain"), Rcpt: q.Get("rcpt"), Source: q.Get("source"),
		State: q.Get("state"),
	}
	if v := q.Get("older_than"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return f, fmt.Errorf("older_than %q: want a duration such as 2h: %w", v, err)
		}
		f.OlderThan = d
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return f, fmt.Errorf("limit %q: want a number: %w", v, err)
		}
		f.Limit = n
	}
	return f, f.Validate()
}

// Query is the inverse of FilterFromQuery, for clients.
func (f Filter) Query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{
		"tenant": f.Tenant, "campaign": f.Campaign, "class": string(f.Class), "provider": f.Provider,
		"domain": f.Domain, "rcpt": f.Rcpt, "source": f.Source, "state": f.State,
	} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.OlderThan > 0 {
		q.Set("older_than", f.OlderThan.String())
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client is gone if this fails
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{err.Error()})
}
