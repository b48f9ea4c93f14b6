// Package admin is the node's administration API over HTTP: the status of the
// policy and of the queues, and a policy reload, for `corriere rules status`,
// `corriere queue summary` and operators' tooling, plus the endpoints other
// subsystems mount through Options.Handlers (the suppression list).
//
// Every request needs the node's token as "Authorization: Bearer <token>",
// but those of Options.Public (the metrics and health checks) and the
// status page (Options.Page), which has a login form and a cookie of its
// own and is open to clients on loopback.
// When no token is configured, the node makes one at start and writes it,
// with the listening address, to its spool directory (admin.token, mode
// 0600, and admin.addr), where the command-line tools on the same machine
// find them.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"corriere/core/luart"
	"corriere/core/queue"
)

// Policy is what the API needs of the policy engine.
type Policy interface {
	Status() luart.Status
	Reload() error
}

// Queue is what the API needs of the queue.
type Queue interface {
	Status() queue.Status
}

// Options configure a Server.
type Options struct {
	// Addr is the listening address, e.g. "127.0.0.1:8025".
	Addr string
	// Token authorises requests; empty makes a random one.
	Token string
	// StateDir receives admin.token and admin.addr. Required.
	StateDir string
	Policy   Policy
	Queue    Queue
	// Rejections reports ingest refusals by reason.
	Rejections func() map[string]int64
	// Handlers are further endpoints, keyed by net/http.ServeMux pattern
	// ("GET /api/suppression"), served behind the same token check, so
	// that a subsystem can offer its own API without this package knowing
	// it. A pattern must be under /api/ and must not conflict with another.
	Handlers map[string]http.Handler
	// Public are endpoints served without the token, keyed like Handlers
	// but outside /api/: the metrics and health checks, which monitoring
	// systems fetch without credentials.
	Public map[string]http.Handler
	// Page is the status page, served at "/" and under "/status/" to
	// clients on loopback and to browsers logged in with the token
	// (a form at /login sets a cookie). The default value, nil, serves
	// no page.
	Page   http.Handler
	Logger *slog.Logger
}

// Status is the answer of GET /api/status.
type Status struct {
	Started    time.Time        `json:"started"`
	Policy     luart.Status     `json:"policy"`
	Queue      queue.Status     `json:"queue"`
	Rejections map[string]int64 `json:"ingest_rejections"`
}

// ReloadResult is the answer of POST /api/policy/reload.
type ReloadResult struct {
	// Accepted is true when the new generation became current.
	Accepted bool `json:"accepted"`
	// Error is the file:line reason of a refusal.
	Error  string       `json:"error,omitempty"`
	Policy luart.Status `json:"policy"`
}

// Server serves the API.
type Server struct {
	opts    Options
	srv     *http.Server
	ln      net.Listener
	started time.Time
}

// Start listens and serves in the background.
func Start(opts Options) (*Server, error) {
	if opts.StateDir == "" || opts.Policy == nil || opts.Queue == nil {
		return nil, errors.New("admin: state directory, policy and queue are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Token == "" {
		var b [24]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
		opts.Token = hex.EncodeToString(b[:])
	}
	mux := http.NewServeMux()
	for pattern, h := range opts.Handlers {
		if err := handle(mux, pattern, h); err != nil {
			return nil, err
		}
	}
	s := &Server{opts: opts, started: time.Now()}
	handler, err := public(opts.Public, s.authorize(mux))
	if err != nil {
		return nil, err
	}
	if opts.Page != nil {
		handler = s.withPage(opts.Page, handler)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen %s: %w", opts.Addr, err)
	}
	s.ln = ln
	if err := os.WriteFile(filepath.Join(opts.StateDir, "admin.token"), []byte(opts.Token+"\n"), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin: %w", err)
	}
	if err := os.WriteFile(filepath.Join(opts.StateDir, "admin.addr"), []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin: %w", err)
	}
	mux.HandleFunc("GET /api/status", s.status)
	mux.HandleFunc("GET /api/policy", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, opts.Policy.Status()) })
	mux.HandleFunc("POST /api/policy/reload", s.reload)
	mux.HandleFunc("GET /api/queue", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, opts.Queue.Status()) })
	s.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Logger.Error("admin API stopped", "err", err)
		}
	}()
	return s, nil
}

// handle mounts an extra handler, turning ServeMux's panics on a bad or
// conflicting pattern into an error.
func handle(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	_, path, _ := strings.Cut(pattern, " ")
	if path == "" {
		path = pattern
	}
	if !strings.HasPrefix(path, "/api/") || h == nil {
		return fmt.Errorf("admin: handler %q: patterns must be under /api/ and have a handler", pattern)
	}
	for _, own := range builtin {
		if strings.HasPrefix(path, own) {
			return fmt.Errorf("admin: handler %q: %s belongs to the admin API itself", pattern, own)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("admin: handler %q: %v", pattern, r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// public serves the endpoints of pub without the token, and everything
// else through private.
func public(pub map[string]http.Handler, private http.Handler) (_ http.Handler, err error) {
	if len(pub) == 0 {
		return private, nil
	}
	mux := http.NewServeMux()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("admin: public handler: %v", r)
		}
	}()
	for pattern, h := range pub {
		_, path, _ := strings.Cut(pattern, " ")
		if path == "" {
			path = pattern
		}
		if strings.HasPrefix(path, "/api/") || path == "/" || h == nil {
			return nil, fmt.Errorf("admin: public handler %q: must be outside /api/ and have a handler", pattern)
		}
		mux.Handle(pattern, h)
	}
	mux.Handle("/", private)
	return mux, nil
}

// builtin are the path prefixes of the API's own endpoints.
var builtin = []string{"/api/status", "/api/policy", "/api/queue"}

// Addr returns the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

func (s *Server) authorize(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong token (Authorization: Bearer <token from admin.token>)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	st := Status{Started: s.started, Policy: s.opts.Policy.Status(), Queue: s.opts.Queue.Status()}
	if s.opts.Rejections != nil {
		st.Rejections = s.opts.Rejections()
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) reload(w http.ResponseWriter, _ *http.Request) {
	err := s.opts.Policy.Reload()
	res := ReloadResult{Accepted: err == nil, Policy: s.opts.Policy.Status()}
	code := http.StatusOK
	if err != nil {
		res.Error = err.Error()
		code = http.StatusUnprocessableEntity
		s.opts.Logger.Warn("admin: policy reload refused", "err", err)
	}
	writeJSON(w, code, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client is gone if this fails
}

// Client calls a node's API.
type Client struct {
	// Addr is the API's host:port.
	Addr string
	// Token authorises the calls.
	Token string
	// HTTP is the client used; the default has a 10s timeout.
	HTTP *http.Client
}

// Discover reads the address and token a node wrote to its spool
// directory.
func Discover(stateDir string) (*Client, error) {
	addr, err := os.ReadFile(filepath.Join(stateDir, "admin.addr"))
	if err != nil {
		return nil, fmt.Errorf("admin: no running node found in %s (is corriere serve running with --spool %s?): %w", stateDir, stateDir, err)
	}
	token, err := os.ReadFile(filepath.Join(stateDir, "admin.token"))
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	return &Client{Addr: strings.TrimSpace(string(addr)), Token: strings.TrimSpace(string(token))}, nil
}

// Get fetches path into v.
func (c *Client) Get(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodGet, path, v)
}

// Post posts to path (no body) and decodes the answer into v; a non-2xx
// answer still decodes into v and returns an error.
func (c *Client) Post(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodPost, path, v)
}

func (c *Client) do(ctx context.Context, method, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.Addr+path, nil)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("admin: %s %s: decode: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("admin: %s %s: %s", method, path, resp.Status)
	}
	return nil
}
