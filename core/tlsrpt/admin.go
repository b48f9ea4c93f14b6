package tlsrpt

import (
	"encoding/json"
	"net/http"
	"time"
)

// SendResult is the answer of POST /api/tlsrpt/send.
type SendResult struct {
	// Day is the UTC day reported, YYYY-MM-DD.
	Day string `json:"day"`
	// Sent counts the reports delivered or queued.
	Sent int `json:"sent"`
	// Error joins the failures, "" when there were none.
	Error string `json:"error,omitempty"`
}

// AdminHandlers returns the admin API routes of r: POST
// /api/tlsrpt/send?day=YYYY-MM-DD sends that day's reports now (today's
// too, which then starts afresh), for an operator or a test that will not
// wait for midnight.
func AdminHandlers(r *Recorder) map[string]http.Handler {
	return map[string]http.Handler{
		"POST /api/tlsrpt/send": http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			day, err := time.Parse(time.DateOnly, req.URL.Query().Get("day"))
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(SendResult{Error: "day: want YYYY-MM-DD"})
				return
			}
			res := SendResult{Day: day.Format(time.DateOnly)}
			res.Sent, err = r.Send(req.Context(), day)
			if err != nil {
				res.Error = err.Error()
				w.WriteHeader(http.StatusBadGateway)
			}
			json.NewEncoder(w).Encode(res)
		}),
	}
}
