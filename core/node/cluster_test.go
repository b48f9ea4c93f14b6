package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"corriere/core/cluster"
	"corriere/core/testlib"
)

// TestNodeJoinsCluster starts a node with Config.Redis and checks what the
// cluster sees of it through the admin API (its ID, policy generation and
// hash), and the cluster metrics.
func TestNodeJoinsCluster(t *testing.T) {
	srv := testlib.Redis(t)
	cfg := Config{
		Listen: freeAddr(t), SpoolDir: t.TempDir(), AdminListen: freeAddr(t), AdminToken: "secret",
		ScriptsDir: filepath.Join("..", "..", "scripts"), RulesDir: filepath.Join("..", "..", "rules"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Redis: srv.Addr, Hostname: "mta.test",
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	get := func(path string) (int, string) {
		req, err := http.NewRequest("GET", "http://"+n.AdminAddr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("/api/cluster")
	var st cluster.Status
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/cluster: %d %s (%v)", code, body, err)
	}
	want := "mta.test/" + cfg.Listen
	if len(st.Nodes) != 1 || st.Nodes[0].ID != want || st.Nodes[0].Generation != 1 || len(st.Nodes[0].PolicyHash) != 64 {
		t.Fatalf("nodes %+v, want %s at generation 1 with a policy hash", st.Nodes, want)
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, "corriere_cluster_redis_up 1") {
		t.Errorf("/metrics lacks corriere_cluster_redis_up 1")
	}
}

// TestRedisConfigValidate checks the Redis settings Validate refuses.
func TestRedisConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"address without port", func(c *Config) { c.Redis = "localhost" }, "Redis"},
		{"CA without TLS", func(c *Config) { c.Redis, c.RedisCA = "127.0.0.1:6379", "ca.pem" }, "RedisTLS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{SpoolDir: t.TempDir()}
			tt.set(&c)
			c.EnsureDefaults()
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
