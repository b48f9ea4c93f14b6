package admin

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestStatusPageLogin: the status page is open to loopback clients that
// no proxy forwarded; others get the login form (401) until they post the
// right token, which sets a cookie that opens the page and not the API.
func TestStatusPageLogin(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "the status page\n") })
	s, err := Start(Options{Addr: "127.0.0.1:0", StateDir: t.TempDir(), Policy: &fakePolicy{gen: 1}, Queue: fakeQueue{},
		Token: "secret", Page: page})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	h := s.srv.Handler

	get := func(path, remote, cookie string, header ...string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = remote
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: pageCookie, Value: cookie})
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	login := func(token string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "192.0.2.7:4000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	tests := []struct {
		name, path, remote, cookie string
		header                     []string
		code                       int
		body                       string
	}{
		{"loopback", "/", "127.0.0.1:5000", "", nil, http.StatusOK, "the status page"},
		{"loopback IPv6, live part", "/status/live", "[::1]:5000", "", nil, http.StatusOK, "the status page"},
		{"loopback through a proxy", "/", "127.0.0.1:5000", "", []string{"X-Forwarded-For", "203.0.113.9"}, http.StatusUnauthorized, "Admin token"},
		{"remote", "/", "192.0.2.7:4000", "", nil, http.StatusUnauthorized, "Admin token"},
		{"remote with a forged cookie", "/", "192.0.2.7:4000", "secret", nil, http.StatusUnauthorized, "Admin token"},
		{"remote with the cookie", "/", "192.0.2.7:4000", s.cookieValue(), nil, http.StatusOK, "the status page"},
		{"the cookie is not the API's token", "/api/status", "192.0.2.7:4000", s.cookieValue(), nil, http.StatusUnauthorized, "token"},
	}
	for _, tt := range tests {
		rec := get(tt.path, tt.remote, tt.cookie, tt.header...)
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s: GET %s = %d %q, want %d with %q", tt.name, tt.path, rec.Code, rec.Body.String(), tt.code, tt.body)
		}
	}

	if rec := login("wrong"); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Wrong token") || len(rec.Result().Cookies()) != 0 {
		t.Errorf("login with a wrong token = %d %q, cookies %v", rec.Code, rec.Body.String(), rec.Result().Cookies())
	}
	rec := login("secret")
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login = %d, cookies %+v", rec.Code, cookies)
	}
	if got := get("/", "192.0.2.7:4000", cookies[0].Value); got.Code != http.StatusOK {
		t.Errorf("page with the login's cookie = %d", got.Code)
	}
}
