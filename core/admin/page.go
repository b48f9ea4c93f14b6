package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// The status page (Options.Page) is served at "/" and under "/status/",
// beside the API. A browser cannot send the bearer token, so the page
// asks for it once in a login form and then carries a cookie derived from
// it; clients on loopback (the operator's own machine, an SSH tunnel) see
// the page without logging in, unless the request came through a proxy.

// pageCookie is the name of the status page's session cookie.
const pageCookie = "corriere_admin"

// pageCookieLife is how long a login lasts.
const pageCookieLife = 12 * time.Hour

// withPage serves page at "/" and under "/status/", behind pageAuth, the
// login form at "/login", and everything else through next.
func (s *Server) withPage(page, next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", s.pageAuth(page))
	mux.Handle("GET /status/", s.pageAuth(page))
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, _ *http.Request) { s.loginForm(w, http.StatusOK, "") })
	mux.HandleFunc("POST /login", s.login)
	mux.Handle("/", next)
	return mux
}

// cookieValue is the session cookie's value: a MAC of the token, so that
// the cookie is not the token itself and changes when the token does.
func (s *Server) cookieValue() string {
	m := hmac.New(sha256.New, []byte(s.opts.Token))
	m.Write([]byte("corriere status page"))
	return hex.EncodeToString(m.Sum(nil))
}

// pageAuth lets through requests from loopback that no proxy forwarded,
// and those with the session cookie; it answers the others with the
// login form.
func (s *Server) pageAuth(next http.Handler) http.Handler {
	want := []byte(s.cookieValue())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fromLoopback(r) {
			next.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(pageCookie); err == nil && subtle.ConstantTimeCompare([]byte(c.Value), want) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		s.loginForm(w, http.StatusUnauthorized, "")
	})
}

// fromLoopback reports whether r comes from a loopback address and names
// no forwarding proxy (a proxy on the same machine would make every
// client look local).
func fromLoopback(r *http.Request) bool {
	if r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != "" {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// login checks the token of the form and sets the session cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	token := r.PostFormValue("token")
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.Token)) != 1 {
		s.opts.Logger.Warn("admin: status page login refused", "client", r.RemoteAddr)
		s.loginForm(w, http.StatusUnauthorized, "Wrong token.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: pageCookie, Value: s.cookieValue(), Path: "/", MaxAge: int(pageCookieLife / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Corriere: log in</title>
<style>body{font:15px system-ui,sans-serif;margin:4em auto;max-width:26em;color:#222}input{font:inherit;padding:.4em;width:100%;box-sizing:border-box;margin:.5em 0}p.err{color:#b00}</style>
</head><body><h1>Corriere</h1>
<form method="post" action="/login"><label for="token">Admin token (in the spool's <code>admin.token</code>)</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus>
{{if .}}<p class="err">{{.}}</p>{{end}}<input type="submit" value="Log in"></form></body></html>
`))

// loginForm answers with the login page and message msg.
func (s *Server) loginForm(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = loginPage.Execute(w, msg) // the client is gone if this fails
}
