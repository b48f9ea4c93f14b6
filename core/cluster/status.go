package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Status is what the cluster shares, as Redis holds it.
type Status struct {
	// Nodes are the live nodes, by ID.
	Nodes []NodeInfo `json:"nodes"`
	// Providers are the shared counters of each provider that has been
	// sent to, by name.
	Providers []ProviderStatus `json:"providers"`
}

// ProviderStatus is the shared counters of one provider.
type ProviderStatus struct {
	Name string `json:"name"`
	// Connections counts the live connection leases of every node.
	Connections int64 `json:"connections"`
	// Sent counts the messages the nodes reserved since Redis started;
	// LastMinute those of the current and previous minute.
	Sent       int64 `json:"sent"`
	LastMinute int64 `json:"last_minute"`
}

// ReadStatus connects to the Redis of o (Addr, Password, TLS, Prefix) and
// reads the cluster's status, for `corriere cluster status`.
func ReadStatus(ctx context.Context, o Options) (Status, error) {
	o.EnsureDefaults()
	rdb := redis.NewClient(&redis.Options{Addr: o.Addr, Password: o.Password, TLSConfig: o.TLS, MaxRetries: -1})
	defer rdb.Close()
	return readStatus(ctx, rdb, o.Prefix, o.NodeTTL)
}

// Status reads the cluster's status through the node's connection.
func (c *Cluster) Status(ctx context.Context) (Status, error) {
	return readStatus(ctx, c.rdb, c.opts.Prefix, c.opts.NodeTTL)
}

func readStatus(ctx context.Context, rdb *redis.Client, prefix string, ttl time.Duration) (Status, error) {
	var st Status
	t, err := rdb.Time(ctx).Result()
	if err != nil {
		return st, fmt.Errorf("cluster: status: %w", err)
	}
	nowMs := t.UnixMilli()
	ids, err := rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: prefix + "nodes", ByScore: true, Start: strconv.FormatInt(nowMs-ttl.Milliseconds(), 10), Stop: "+inf"}).Result()
	if err != nil {
		return st, fmt.Errorf("cluster: status: nodes: %w", err)
	}
	for _, id := range ids {
		blob, err := rdb.Get(ctx, prefix+"node:"+id).Result()
		if err != nil {
			continue // expired between the two reads
		}
		var n NodeInfo
		if err := json.Unmarshal([]byte(blob), &n); err != nil {
			return st, fmt.Errorf("cluster: status: node %s: %w", id, err)
		}
		st.Nodes = append(st.Nodes, n)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].ID < st.Nodes[j].ID })
	names, err := rdb.SMembers(ctx, prefix+"providers").Result()
	if err != nil {
		return st, fmt.Errorf("cluster: status: providers: %w", err)
	}
	sort.Strings(names)
	minute := t.UnixMicro() / 60000000
	for _, name := range names {
		p := ProviderStatus{Name: name}
		p.Connections, _ = rdb.ZCount(ctx, prefix+"conns:"+name, strconv.FormatInt(nowMs, 10), "+inf").Result()
		p.Sent, _ = rdb.Get(ctx, prefix+"sent:"+name).Int64()
		cur, _ := rdb.Get(ctx, prefix+"sent:"+name+":"+strconv.FormatInt(minute, 10)).Int64()
		prev, _ := rdb.Get(ctx, prefix+"sent:"+name+":"+strconv.FormatInt(minute-1, 10)).Int64()
		p.LastMinute = cur + prev
		st.Providers = append(st.Providers, p)
	}
	return st, nil
}
