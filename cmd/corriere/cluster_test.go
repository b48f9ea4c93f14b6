package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"corriere/core/cluster"
	"corriere/core/mailtest"
	"corriere/core/testlib"
)

// clusterRules returns a copy of the shipped rules with a provider for
// mx.dest.test limited to 30 messages a second and 6 connections, per
// source and in total.
func clusterRules(t *testing.T) string {
	t.Helper()
	const list = "  providers = {\n"
	const prov = `    {
      name = "clustertest",
      mx = { "mx.dest.test" },
      limits = { connections = 6, per_second = 30, messages_per_connection = 100000 },
      total = { connections = 6, per_second = 30 },
    },
`
	return rulesWithProviders(t, list, list+prov)
}

// rcptReply opens a session to addr and returns the reply to RCPT TO:<rcpt>.
func rcptReply(addr, rcpt string) (string, error) {
	conn, rw, err := openSession(addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	for _, c := range []string{"MAIL FROM:<app@sender.test>", "RCPT TO:<" + rcpt + ">"} {
		if _, err := rw.WriteString(c + "\r\n"); err != nil {
			return "", err
		}
		if err := rw.Flush(); err != nil {
			return "", err
		}
		line, err := readFinal(rw.Reader)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(c, "RCPT") {
			return line, nil
		}
	}
	return "", nil
}

// TestClusterOutsideCheck is issue 16's outside check: one redis-server
// and three `corriere serve` nodes on loopback, a provider limited to 30
// messages a second and 6 connections, messages injected into every node
// at once. The receiver must see 30/s ±5% across the nodes (in the long
// run) and never more than 6 connections; a suppression added through
// node 1 is refused at RCPT by node 3 within a second; redis-server is
// killed with SIGKILL mid-run and the rate stays within +10% until it
// returns; every acknowledged message is delivered exactly once.
//
// By default each node gets 40 messages (about 4 s of sending) and the
// rate is checked loosely; CORRIERE_CLUSTER_CHECK_N=600 runs the check at
// the size (about a minute) with the ±5% bound.
func TestClusterOutsideCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three corriere nodes as processes")
	}
	perNode, full := 40, false
	if v, err := strconv.Atoi(os.Getenv("CORRIERE_CLUSTER_CHECK_N")); err == nil && v > 0 {
		perNode, full = v, true
	}
	const nodes, rate, conns = 3, 30.0, 6
	total := nodes * perNode
	redisSrv := testlib.Redis(t)
	dnsAddr, port := loopbackMX(t, "dest.test", "127.0.0.45")
	rx := mailtest.Start(t, fmt.Sprintf("127.0.0.45:%d", port), mailtest.Options{})
	rules := clusterRules(t)

	var procs []*serveProcess
	var spools []string
	for i := range nodes {
		spool := t.TempDir()
		spools = append(spools, spool)
		procs = append(procs, startServe(t, spool, "--dns", dnsAddr, "--mx-port", fmt.Sprint(port), "--rules", rules,
			"--retry", "1s", "--redis", redisSrv.Addr, "--node-id", fmt.Sprintf("node%d", i+1)))
	}
	status := func() cluster.Status {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := cluster.ReadStatus(ctx, cluster.Options{Addr: redisSrv.Addr})
		if err != nil {
			t.Fatalf("cluster status: %v", err)
		}
		return st
	}
	testlib.WaitFor(t, "three live nodes", func() bool { return len(status().Nodes) == nodes })
	if st := status(); st.Nodes[0].PolicyHash == "" || st.Nodes[0].PolicyHash != st.Nodes[len(st.Nodes)-1].PolicyHash {
		t.Fatalf("policy hashes %q and %q: want the same, not empty", st.Nodes[0].PolicyHash, st.Nodes[len(st.Nodes)-1].PolicyHash)
	}

	// A suppression added through node 1 is refused by node 3 within 1 s.
	const suppressed = "gone@dest.test"
	var out, errb bytes.Buffer
	if st := suppressionAdd([]string{"--spool", spools[0], "--tenant", "", "--reason", "cluster check", suppressed}, &out, &errb); st != 0 {
		t.Fatalf("suppression add on node 1: %d: %s", st, errb.String())
	}
	added := time.Now()
	testlib.WaitForWithin(t, time.Second, "node 3 to refuse the address suppressed on node 1", func() bool {
		line, err := rcptReply(procs[len(procs)-1].addr, suppressed)
		return err == nil && strings.HasPrefix(line, "550")
	})
	t.Logf("node 3 refused the suppressed address %v after it was added on node 1", time.Since(added).Round(time.Millisecond))

	// Every node gets its messages at once, on four sessions each.
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for i, p := range procs {
		for s := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, rw, err := openSession(p.addr)
				if err != nil {
					t.Errorf("node %d: %v", i+1, err)
					return
				}
				defer conn.Close()
				for k := s; k < perNode; k += 4 {
					id := fmt.Sprintf("n%d-%d", i+1, k)
					line, err := smtpSend(rw, "app@sender.test", "r"+id+"@dest.test", "Subject: cluster\r\nX-Test-Id: "+id+"\r\n\r\nhello\r\n")
					if err != nil {
						t.Errorf("node %d: %v", i+1, err)
						return
					}
					if strings.HasPrefix(line, "250") {
						mu.Lock()
						acked[id] = true
						mu.Unlock()
					}
				}
			}()
		}
	}

	// redis-server dies once a third is delivered and comes back after
	// an outage of a sixth of the expected run (at least 3 s).
	expected := time.Duration(float64(total) / rate * float64(time.Second))
	outage := max(3*time.Second, expected/6)
	runTimeout := 2*expected + 30*time.Second
	testlib.WaitForWithin(t, runTimeout, "a third delivered", func() bool { return rx.Recipients() >= total/3 })
	peakBefore := rx.PeakConnections()
	if st := status(); len(st.Providers) > 0 {
		// Reserved but not delivered is allowance lost to batching.
		t.Logf("before the kill: %d delivered, %d reserved in redis", rx.Recipients(), st.Providers[0].Sent)
	}
	redisSrv.Kill()
	killedAt := time.Now()
	time.Sleep(outage) // the outage itself, not an assertion
	peakOutage := rx.PeakConnectionsSince(killedAt)
	redisSrv.Start()
	restartedAt := time.Now()
	wg.Wait()
	if len(acked) != total {
		t.Fatalf("%d of %d messages acknowledged", len(acked), total)
	}
	testlib.WaitForWithin(t, runTimeout, "every acknowledged message delivered", func() bool { return rx.Recipients() >= total })

	// Exactly once.
	seen := map[string]int{}
	var times []time.Time
	var inOutage int
	var beforeKill []time.Time
	for _, m := range rx.Messages() {
		for _, line := range strings.Split(string(m.Data), "\r\n") {
			if id, ok := strings.CutPrefix(line, "X-Test-Id: "); ok {
				seen[id]++
			}
		}
		times = append(times, m.At)
		if m.At.Before(killedAt) {
			beforeKill = append(beforeKill, m.At)
		}
		// The first messages after the kill may have been reserved before.
		if m.At.After(killedAt.Add(200*time.Millisecond)) && m.At.Before(restartedAt) {
			inOutage++
		}
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("message %s delivered %d times, want exactly once", id, seen[id])
		}
	}
	if len(seen) != total {
		t.Errorf("%d distinct messages delivered, want %d", len(seen), total)
	}
	t.Logf("peak connections: %d before the kill, %d during the outage, %d after it", peakBefore, peakOutage, rx.PeakConnectionsSince(restartedAt))
	if peak := rx.PeakConnections(); peak > conns {
		t.Errorf("the receiver saw %d connections at once, want at most %d", peak, conns)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	span := times[len(times)-1].Sub(times[0])
	aggregate := float64(len(times)-1) / span.Seconds()
	outageRate := float64(inOutage) / (restartedAt.Sub(killedAt) - 200*time.Millisecond).Seconds()
	sort.Slice(beforeKill, func(i, j int) bool { return beforeKill[i].Before(beforeKill[j]) })
	shared := float64(len(beforeKill)-1) / beforeKill[len(beforeKill)-1].Sub(beforeKill[0]).Seconds()
	t.Logf("%d messages in %v: %.2f/s aggregate, %.2f/s before the kill; %.2f/s while redis was down (%d in %v)",
		len(times), span.Round(time.Millisecond), aggregate, shared, outageRate, inOutage, restartedAt.Sub(killedAt).Round(time.Millisecond))
	if outageRate > rate*1.10 {
		t.Errorf("%.2f messages a second while redis was down, want at most %.0f (+10%%)", outageRate, rate*1.10)
	}
	// The rate with Redis up, every node still sending; the outage and
	// the nodes that finished first bring the whole run's down.
	lo, hi := rate*0.95, rate*1.05
	if !full {
		// About a second of sending before the kill, where the first burst
		// (3 messages, a tenth of a second's batch) weighs 8%.
		lo, hi = rate*0.70, rate*1.15
	}
	if shared < lo || shared > hi {
		t.Errorf("aggregate rate with redis up %.2f/s, want %.1f..%.1f", shared, lo, hi)
	}
	if aggregate > hi {
		t.Errorf("aggregate rate over the run %.2f/s, want at most %.1f", aggregate, hi)
	}
	if t.Failed() {
		for i, p := range procs {
			t.Logf("node %d logs:\n%s", i+1, p.logs())
		}
	}
}

// TestClusterStatusCommand checks what `corriere cluster status` prints
// for two nodes, one of them on another policy.
func TestClusterStatusCommand(t *testing.T) {
	srv := testlib.Redis(t)
	for _, n := range []struct {
		id, hash string
	}{{"node1", "aaaaaaaaaaaaaaaa"}, {"node2", "aaaaaaaaaaaaaaaa"}, {"node3", "bbbbbbbbbbbbbbbb"}} {
		c, err := cluster.Open(cluster.Options{Addr: srv.Addr, NodeID: n.id, Info: func() cluster.NodeInfo {
			return cluster.NodeInfo{SMTP: "127.0.0.1:2525", Generation: 2, PolicyHash: n.hash}
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	var out, errb bytes.Buffer
	if st := clusterStatus(context.Background(), []string{"--redis", srv.Addr}, &out, &errb); st != 0 {
		t.Fatalf("cluster status: %d: %s", st, errb.String())
	}
	text := out.String()
	for _, want := range []string{"node1", "node2", "aaaaaaaaaaaa ", "node3", "bbbbbbbbbbbb (differs)", "3 live nodes"} {
		if !strings.Contains(text, want) {
			t.Errorf("cluster status lacks %q:\n%s", want, text)
		}
	}
	if strings.Count(text, "(differs)") != 1 {
		t.Errorf("cluster status marks other than the odd node out:\n%s", text)
	}
	out.Reset()
	if st := clusterStatus(context.Background(), []string{}, &out, &errb); st != 2 {
		t.Errorf("cluster status without --redis: status %d, want 2", st)
	}
}
