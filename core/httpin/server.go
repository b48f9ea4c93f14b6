package httpin

import (
	"context"
	"crypto/tls"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"corriere/core/ingest"
	"corriere/core/tenant"
)

// Submitter hands messages to the same path as SMTP; *ingest.Server
// implements it.
type Submitter interface {
	Submit(ctx context.Context, origin ingest.Origin, subs []ingest.Submission) ([]ingest.Outcome, error)
}

// Options configure a Server.
type Options struct {
	// Submitter takes the messages. Required.
	Submitter Submitter
	// Tenants authenticates API keys. Required.
	Tenants tenant.Directory
	// MaxRequestSize is the largest request body, in octets; a larger one
	// is answered 413. The default value is 32 MiB.
	MaxRequestSize int64
	// MaxRecipients is the most recipients one request may name; more are
	// answered 400. The default value is 1000.
	MaxRecipients int
	// MaxRenderedSize bounds the messages one request renders, together,
	// in octets: templates repeat what they range over, so a small request
	// could otherwise render gigabytes. More is answered 413. The default
	// value is 8 times MaxRequestSize.
	MaxRenderedSize int64
	// TLS, when set, serves HTTPS only.
	TLS *tls.Config
	// Logger logs refusals and failures. The default value is
	// slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills unset fields with their documented defaults.
func (o *Options) EnsureDefaults() {
	if o.MaxRequestSize == 0 {
		o.MaxRequestSize = 32 << 20
	}
	if o.MaxRecipients == 0 {
		o.MaxRecipients = 1000
	}
	if o.MaxRenderedSize == 0 {
		o.MaxRenderedSize = 8 * o.MaxRequestSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports missing required fields.
func (o *Options) Validate() error {
	switch {
	case o.Submitter == nil:
		return errors.New("httpin: no submitter")
	case o.Tenants == nil:
		return errors.New("httpin: no tenant directory")
	case o.MaxRequestSize < 0 || o.MaxRecipients < 0 || o.MaxRenderedSize < 0:
		return errors.New("httpin: negative limit")
	}
	return nil
}

// Server serves the injection API.
type Server struct {
	opts Options
	log  *slog.Logger
	srv  *http.Server

	// Counters of answers by reason, for metrics and tests.
	answers sync.Map // string → *atomic.Int64
}

//go:embed openapi.yaml
var openAPI []byte

// InjectPath is the path of the injection endpoint.
const InjectPath = "/api/inject/v1"

// New returns a server; it answers nothing until Serve.
func New(opts Options) (*Server, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "httpin")}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+InjectPath, s.inject)
	mux.HandleFunc("GET "+InjectPath+"/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(openAPI)
	})
	s.srv = &http.Server{
		Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 5 * time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handler returns the API's handler, for tests and for mounting elsewhere.
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Serve answers requests on l until Shutdown, over TLS when Options.TLS is
// set.
func (s *Server) Serve(l net.Listener) error {
	if s.opts.TLS != nil {
		l = tls.NewListener(l, s.opts.TLS)
	}
	if err := s.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httpin: %w", err)
	}
	return nil
}

// Shutdown stops accepting requests and waits for those in progress (each
// until its messages are spooled) or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("httpin: shutdown: %w", err)
	}
	return nil
}

// Answers returns how many requests got each kind of answer ("accepted",
// "bad_request", "unauthorized", "too_large", "unavailable").
func (s *Server) Answers() map[string]int64 {
	out := map[string]int64{}
	s.answers.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

func (s *Server) count(reason string) {
	v, _ := s.answers.LoadOrStore(reason, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// Response is the answer to an accepted request: one result per recipient,
// in the order of the request.
type Response struct {
	Accepted int      `json:"accepted"`
	Refused  int      `json:"refused"`
	Messages []Result `json:"messages"`
}

// Result is what became of one recipient's message.
type Result struct {
	Recipient string `json:"recipient"`
	// ID is the queue id of the message, durable on disk.
	ID string `json:"id,omitempty"`
	// Dropped is true when the recipient was accepted and not delivered
	// (suppressed, for a tenant with suppression = "drop").
	Dropped bool `json:"dropped,omitempty"`
	// Error is why the message was refused, as the SMTP reply it would
	// have had.
	Error *SMTPError `json:"error,omitempty"`
}

// SMTPError is a refusal in SMTP terms.
type SMTPError struct {
	Code    int    `json:"code"`
	Status  string `json:"status"`
	Message string `json:"message"`
	// Temporary is true for a 4xx: the same request may succeed later.
	Temporary bool `json:"temporary"`
}

func (s *Server) inject(w http.ResponseWriter, r *http.Request) {
	t, ok := s.authenticate(r)
	if !ok {
		s.count("unauthorized")
		w.Header().Set("WWW-Authenticate", `Bearer realm="corriere"`)
		writeError(w, http.StatusUnauthorized, &FieldError{Field: "Authorization", Message: "unknown API key: send Authorization: Bearer <tenant>.<secret>"})
		return
	}
	if r.ContentLength > s.opts.MaxRequestSize {
		s.tooLarge(w, t)
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxRequestSize)
	req, err := decodeRequest(body, s.opts.MaxRecipients)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		s.tooLarge(w, t)
		return
	}
	if err != nil {
		s.badRequest(w, t, err)
		return
	}
	comp, err := newComposer(&req.Content, s.opts.MaxRenderedSize)
	if err != nil {
		s.badRequest(w, t, err)
		return
	}
	subs := make([]ingest.Submission, len(req.Recipients))
	for i := range req.Recipients {
		raw, err := comp.compose(&req.Recipients[i], fmt.Sprintf("recipients[%d]", i))
		if errors.Is(err, errRenderBudget) {
			s.count("too_large")
			writeError(w, http.StatusRequestEntityTooLarge, &FieldError{Field: "content",
				Message: "the rendered messages are larger than " + strconv.FormatInt(s.opts.MaxRenderedSize, 10) + " octets"})
			return
		}
		if err != nil {
			s.badRequest(w, t, err)
			return
		}
		subs[i] = ingest.Submission{Sender: req.Sender, Recipients: []string{req.Recipients[i].Email}, Raw: raw}
	}
	origin := ingest.Origin{Tenant: t, Client: clientAddr(r), Proto: "HTTP"}
	if r.TLS != nil {
		origin.Proto = "HTTPS"
	}
	outcomes, err := s.opts.Submitter.Submit(r.Context(), origin, subs)
	if err != nil {
		s.count("unavailable")
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, &FieldError{Message: "shutting down: try again later"})
		return
	}
	resp := Response{Messages: make([]Result, len(outcomes))}
	for i, o := range outcomes {
		res := Result{Recipient: req.Recipients[i].Email, ID: o.ID, Dropped: o.Dropped}
		switch {
		case o.Reply != nil:
			res.ID = ""
			res.Error = &SMTPError{Code: o.Reply.Code, Status: o.Reply.Status.String(), Message: o.Reply.Text, Temporary: o.Reply.Temporary()}
		case len(o.Refused) > 0:
			rr := o.Refused[0].Reply
			res.ID = ""
			res.Error = &SMTPError{Code: rr.Code, Status: rr.Status.String(), Message: rr.Text, Temporary: rr.Temporary()}
		}
		if res.Error != nil {
			resp.Refused++
		} else {
			resp.Accepted++
		}
		resp.Messages[i] = res
	}
	s.count("accepted")
	s.log.Info("injection handled", "tenant", t.Name, "client", origin.Client.String(), "accepted", resp.Accepted, "refused", resp.Refused)
	writeJSON(w, http.StatusOK, &resp)
}

// authenticate returns the tenant whose API key the request carries.
func (s *Server) authenticate(r *http.Request) (*tenant.Tenant, bool) {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, false
	}
	name, ok := tenant.APIKeyTenant(strings.TrimSpace(key))
	if !ok {
		return nil, false
	}
	t, ok := s.opts.Tenants.Lookup(name)
	if !ok || !t.CheckAPIKey(strings.TrimSpace(key)) {
		s.log.Info("unknown API key", "client", clientAddr(r).String(), "tenant", name)
		return nil, false
	}
	return t, true
}

func (s *Server) tooLarge(w http.ResponseWriter, t *tenant.Tenant) {
	s.count("too_large")
	s.log.Info("request refused: too large", "tenant", t.Name, "limit", s.opts.MaxRequestSize)
	// The rest of the body is not read: close the connection after the
	// answer rather than drain it.
	w.Header().Set("Connection", "close")
	writeError(w, http.StatusRequestEntityTooLarge, &FieldError{Message: "request body larger than " + strconv.FormatInt(s.opts.MaxRequestSize, 10) + " octets"})
}

func (s *Server) badRequest(w http.ResponseWriter, t *tenant.Tenant, err error) {
	s.count("bad_request")
	fe, ok := errors.AsType[*FieldError](err)
	if !ok {
		fe = &FieldError{Message: err.Error()}
	}
	s.log.Info("request refused: malformed", "tenant", t.Name, "field", fe.Field, "err", fe.Message)
	writeError(w, http.StatusBadRequest, fe)
}

// clientAddr returns the address of the request's client.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func writeError(w http.ResponseWriter, status int, fe *FieldError) {
	writeJSON(w, status, map[string]*FieldError{"error": fe})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
