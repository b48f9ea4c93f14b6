package deliver

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"corriere/core/dns"
	"corriere/core/dns/authserver"
	"corriere/core/mailtest"
	"corriere/core/queue"
	"corriere/core/smtpclient"
)

// TestEHLOName checks the name the transport announces to a real receiver:
// the source's own HELO name when the route gives one, the node's hostname
// (Options.Client.Helo) otherwise. An empty route name used to replace the
// hostname, and receivers saw the machine's short name.
func TestEHLOName(t *testing.T) {
	tests := []struct {
		name, routeHelo, want string
	}{
		{"route without a HELO name uses the hostname", "", "relay.corriere.test"},
		{"source's own HELO name wins", "out1.corriere.test", "out1.corriere.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rcv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
			_, port, err := net.SplitHostPort(rcv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			srv, err := authserver.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			srv.MustAdd("mx.dest.test. 300 IN A 127.0.0.1")
			res, err := dns.New(dns.Options{Servers: []string{srv.Addr}})
			if err != nil {
				t.Fatal(err)
			}
			p, _ := strconv.Atoi(port)
			tr, err := New(Options{Resolver: res, Port: p, Client: smtpclient.Options{Helo: "relay.corriere.test", TLSMode: smtpclient.TLSDisabled}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := tr.Dial(ctx, queue.Target{Domain: "dest.test", Helo: tc.routeHelo,
				MX: &dns.MXResult{Domain: "dest.test", Hosts: []dns.MX{{Host: "mx.dest.test"}}}})
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			// The receiver records the name at EHLO; the dial returns after it.
			if got := rcv.Helos(); len(got) != 1 || got[0] != tc.want {
				t.Errorf("receiver saw EHLO %q, want %q", got, tc.want)
			}
		})
	}
}
