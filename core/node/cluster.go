package node

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"

	"corriere/core/cluster"
	"corriere/core/queue"
	"corriere/core/warmup"
)

// openCluster joins the cluster of Config.Redis, once the policy is loaded
// (the node publishes its generation) and before the queue is built (the
// queue takes the shared limits). A Redis that cannot be reached does not
// stop the node: it starts in fallback.
func (n *Node) openCluster(undo *cleanups) error {
	if n.cfg.Redis == "" {
		return nil
	}
	var tlsConf *tls.Config
	if n.cfg.RedisTLS {
		host, _, _ := net.SplitHostPort(n.cfg.Redis)
		tlsConf = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if n.cfg.RedisCA != "" {
			pem, err := os.ReadFile(n.cfg.RedisCA)
			if err != nil {
				return fmt.Errorf("node: RedisCA: %w", err)
			}
			tlsConf.RootCAs = x509.NewCertPool()
			if !tlsConf.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("node: RedisCA %s: no PEM certificate", n.cfg.RedisCA)
			}
		}
	}
	c, err := cluster.Open(cluster.Options{
		Addr: n.cfg.Redis, Password: n.cfg.RedisPassword, TLS: tlsConf, NodeID: n.cfg.NodeID,
		Info: n.clusterInfo, Events: n.events, Logger: n.log,
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.cluster = c
	undo.add(func() { c.Close() })
	c.AttachSuppression(n.suppression)
	return nil
}

// clusterInfo is what the node publishes about itself to the cluster.
func (n *Node) clusterInfo() cluster.NodeInfo {
	st := n.policy.Status()
	return cluster.NodeInfo{Hostname: n.cfg.Hostname, SMTP: n.cfg.Listen, Generation: st.Generation, PolicyHash: st.FilesHash}
}

// sharedLimits returns what the queue shares with the cluster: the
// shared limits and warm-up counts, or none and the node's own tracker.
func (n *Node) sharedLimits(wu *warmup.Tracker) (queue.Shared, queue.WarmupCounter) {
	if n.cluster == nil {
		return nil, wu
	}
	return n.cluster, n.cluster.Warmup(wu)
}

// clusterHandler serves GET /api/cluster: the cluster's status as Redis
// holds it.
func (n *Node) clusterHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if n.cluster == nil {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "this node is not in a cluster (no --redis)"})
			return
		}
		st, err := n.cluster.Status(r.Context())
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	})
}
