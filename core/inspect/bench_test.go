package inspect

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"corriere/core/message"
	"corriere/core/spool"
)

// BenchmarkListTenant measures `queue list --tenant X --limit 100` on a
// spool of CORRIERE_SCALE_N one-recipient messages (default 100,000),
// where tenant "small" has one message in a hundred and "big" the rest:
//
//	CORRIERE_SCALE_N=1000000 go test -run '^$' -bench ListTenant -benchtime 20x ./core/inspect
func BenchmarkListTenant(b *testing.B) {
	n := 100_000
	if s := os.Getenv("CORRIERE_SCALE_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("CORRIERE_SCALE_N: %v", err)
		}
	}
	sp, err := spool.Open(spool.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	h, body, err := message.Parse([]byte("Subject: news\r\n\r\n" + strings.Repeat("x", 2000) + "\r\n"))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < n; {
		batch := sp.NewBatch()
		for j := 0; j < 1000 && i < n; j, i = j+1, i+1 {
			tenant := "big"
			if i%100 == 99 {
				tenant = "small"
			}
			m := &message.Message{Header: h, Body: body, Class: message.Newsletter, Tenant: tenant, Received: start}
			m.Sender = "news@sender.test"
			m.Recipients = []message.Recipient{{Addr: fmt.Sprintf("r%d@big.test", i)}}
			if _, _, err := batch.Put(m, start.Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(false); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
	b.Logf("spooled %d recipients in %v", n, time.Since(start).Round(time.Second))
	in := &Inspector{Spool: sp}
	for _, tenant := range []string{"small", "big"} {
		b.Run(tenant, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := in.List(Filter{Tenant: tenant, Limit: 100})
				if err != nil || len(got) != 100 {
					b.Fatalf("listed %d, %v", len(got), err)
				}
			}
		})
	}
	b.Run("domain, whole spool", func(b *testing.B) {
		for b.Loop() {
			if _, err := in.List(Filter{Domain: "nowhere.test"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
