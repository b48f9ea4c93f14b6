package extension

import "net/http"

// AdminRoutes is implemented by plugins that serve endpoints on the admin
// API, behind its token (the webhook plugin's dead letters). The keys are
// net/http.ServeMux patterns ("GET /api/webhooks/deadletters"); a pattern
// the node serves already is a start error.
type AdminRoutes interface {
	AdminHandlers() map[string]http.Handler
}
