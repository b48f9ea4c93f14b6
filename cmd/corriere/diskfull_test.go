package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"corriere/core/mailtest"
)

// TestDiskFullServe runs `corriere serve` with its spool on a 20 MB tmpfs
// and a receiver that defers everything, so that the queue fills the disk.
// It checks that the node answers 452 instead of 250 once the disk is full,
// stops on SIGTERM and starts again on the full disk, and that once the
// receiver accepts, every acknowledged message is delivered exactly once
// and new mail is accepted again.
func TestDiskFullServe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs corriere as a process")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	spool := t.TempDir()
	if err := syscall.Mount("tmpfs", spool, "tmpfs", 0, "size=20m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(spool, syscall.MNT_DETACH) })

	dnsAddr, port := loopbackMX(t, "dest.test", "127.0.0.42")
	var accept atomic.Bool
	rx := mailtest.Start(t, fmt.Sprintf("127.0.0.42:%d", port), mailtest.Options{
		Data: func([]byte, int) error {
			if !accept.Load() {
				return mailtest.Reply(451, "4.3.0", "Not now")
			}
			return nil
		},
	})
	extra := []string{"--dns", dnsAddr, "--mx-port", fmt.Sprint(port), "--retry", "300ms", "--rules", unthrottledRules(t)}
	p := startServe(t, spool, extra...)

	// 120 KiB of random text per message: about 140 fill the 15 MiB left
	// above the reserve.
	raw := make([]byte, 90<<10)
	body := func(id string) string {
		rand.Read(raw)
		text := base64.StdEncoding.EncodeToString(raw)
		var b strings.Builder
		b.WriteString("Subject: disk full\r\nX-Test-Id: " + id + "\r\n\r\n")
		for len(text) > 76 {
			b.WriteString(text[:76] + "\r\n")
			text = text[76:]
		}
		return b.String()
	}
	acked := map[string]bool{}
	refused := 0
	conn, rw, err := openSession(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 400 && refused < 3; i++ {
		id := fmt.Sprintf("m-%d", i)
		line, err := smtpSend(rw, "app@sender.test", "rcpt@dest.test", body(id))
		if err != nil {
			t.Fatalf("message %d: %v (the node must answer, not hang or die); logs:\n%s", i, err, p.logs())
		}
		switch {
		case strings.HasPrefix(line, "250"):
			acked[id] = true
		case strings.HasPrefix(line, "452 4.3.1"):
			refused++
			rw.WriteString("RSET\r\n")
			rw.Flush()
			readFinal(rw.Reader)
		default:
			t.Fatalf("message %d: %q, want 250 or 452 4.3.1; logs:\n%s", i, line, p.logs())
		}
	}
	conn.Close()
	if refused == 0 {
		t.Fatalf("%d messages accepted on a 20 MB disk and none refused", len(acked))
	}
	t.Logf("%d messages accepted before the disk filled", len(acked))

	// SIGTERM stops the node on the full disk, and it starts again.
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("SIGTERM on a full disk: still running after 20 s; logs:\n%s", p.logs())
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))

	// Another file takes the last byte: the node still starts, listens
	// and answers 452; removing the file is enough to recover.
	filler := filepath.Join(spool, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 4096); ; {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	p = startServe(t, spool, extra...)
	conn, rw, err = openSession(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := smtpSend(rw, "app@sender.test", "rcpt@dest.test", body("full")); err != nil || !strings.HasPrefix(line, "452 4.3.1") {
		t.Fatalf("on a full disk: %q, %v; want 452 4.3.1; logs:\n%s", line, err, p.logs())
	}
	conn.Close()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}

	// The receiver takes mail again: deliveries free the disk, every
	// acknowledged message arrives once, and new mail is accepted.
	accept.Store(true)
	deadline := time.Now().Add(90 * time.Second)
	for {
		conn, rw, err := openSession(p.addr)
		if err != nil {
			t.Fatal(err)
		}
		line, err := smtpSend(rw, "app@sender.test", "rcpt@dest.test", body("after"))
		conn.Close()
		if err != nil {
			t.Fatalf("after space returned: %v", err)
		}
		if strings.HasPrefix(line, "250") {
			acked["after"] = true
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %q after the queue drained; logs:\n%s", line, p.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		got := map[string]int{}
		for _, m := range rx.Messages() {
			for _, line := range strings.Split(string(m.Data), "\r\n") {
				if id, ok := strings.CutPrefix(line, "X-Test-Id: "); ok {
					got[id]++
				}
			}
		}
		var missing []string
		for id := range acked {
			if got[id] > 1 {
				t.Fatalf("%s delivered %d times", id, got[id])
			}
			if got[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages never delivered, e.g. %v; logs:\n%s",
				len(missing), len(acked), missing[:min(5, len(missing))], p.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"512K", 512 << 10, true},
		{"256M", 256 << 20, true},
		{"256MiB", 256 << 20, true},
		{"2G", 2 << 30, true},
		{"2GB", 2 << 30, true},
		{"1t", 1 << 40, true},
		{"", 0, false},
		{"M", 0, false},
		{"-1M", 0, false},
		{"1.5G", 0, false},
		{"lots", 0, false},
		{"99999999999T", 0, false},
	} {
		got, err := parseSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}
