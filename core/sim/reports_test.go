package sim

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files of generated bounces and reports")

// TestReportsGolden pins the text of every bounce format and of the ARF
// report, so that a change to what bounce parsers are tested against is
// deliberate. Run with -update to accept a change.
func TestReportsGolden(t *testing.T) {
	p := oneMX("example", "example.test", "127.0.10.1")
	prov, err := newProvider(&Sim{}, &p, 0)
	if err != nil {
		t.Fatal(err)
	}
	prov.outIP, prov.outHost = []byte{127, 0, 10, 1}, "mx.example.test"
	arrival := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	o := original{
		provider: prov, mxHost: "mx.example.test", from: "bounces+abc@bounces.test", rcpt: "bounce.me@example.test",
		ip: "127.0.0.2", arrival: arrival, queueID: "EXA000001", ref: "EXA000001.0", subject: "Offerta",
	}
	o.header, _ = splitMessage([]byte(testMessage("orig@shop.test", "Offerta")))
	diag := prov.replies.render(kindUnknownUser, replyVars{rcpt: o.rcpt})
	now := arrival.Add(5 * time.Minute)
	outputs := map[string]string{
		"arf.golden": arfReport(o, "feedback@example.test", "fbl@bounces.test", now),
	}
	for name, format := range bounceFormats {
		outputs["bounce-"+name+".golden"] = format(o, diag, now)
	}
	for name, got := range outputs {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s changed; run go test -update to accept:\n%s", name, got)
			}
		})
	}
}
