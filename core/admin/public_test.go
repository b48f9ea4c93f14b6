package admin

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPublicEndpoints: the endpoints of Options.Public answer without the
// token, the API still wants it, and a public endpoint cannot take a path
// of the API.
func TestPublicEndpoints(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "public\n") })
	s, err := Start(Options{Addr: "127.0.0.1:0", StateDir: t.TempDir(), Policy: &fakePolicy{gen: 1}, Queue: fakeQueue{},
		Token: "secret", Public: map[string]http.Handler{"GET /healthz": ok}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	tests := []struct {
		path, token string
		code        int
	}{
		{"/healthz", "", http.StatusOK},
		{"/healthz", "wrong", http.StatusOK},
		{"/api/status", "", http.StatusUnauthorized},
		{"/api/status", "secret", http.StatusOK},
		{"/elsewhere", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, "http://"+s.Addr()+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("GET %s with token %q = %d, want %d", tt.path, tt.token, resp.StatusCode, tt.code)
		}
	}

	for _, pattern := range []string{"GET /api/metrics", "/"} {
		_, err := Start(Options{Addr: "127.0.0.1:0", StateDir: t.TempDir(), Policy: &fakePolicy{gen: 1}, Queue: fakeQueue{},
			Public: map[string]http.Handler{pattern: ok}})
		if err == nil || !strings.Contains(err.Error(), "outside /api/") {
			t.Errorf("public endpoint %q: err = %v, want a refusal", pattern, err)
		}
	}
}
