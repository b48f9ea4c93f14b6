package smtpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"corriere/core/testlib"
)

func TestGoSMTPDeliveries(t *testing.T) {
	k := startSink(t, nil)
	k.reject["nobody@example.net"] = true
	c, err := Dial(context.Background(), k.addr, "mx.test", testOptions())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if g := c.Greeting(); g == nil || g.Code != 220 {
		t.Errorf("Greeting() = %v", g)
	}
	if _, ok := c.Extension("PIPELINING"); !ok {
		t.Error("go-smtp's PIPELINING not seen")
	}
	messages := []struct {
		content, want string
	}{
		{"Subject: one\r\n\r\nplain\r\n", "Subject: one\r\n\r\nplain\r\n"},
		{"Subject: two\r\n\r\n.\r\n..\r\n.x\r\nlast line", "Subject: two\r\n\r\n.\r\n..\r\n.x\r\nlast line\r\n"},
		{"Subject: three\n\nunix\nline\nendings\n", "Subject: three\r\n\r\nunix\r\nline\r\nendings\r\n"},
		{"", ""},
	}
	env := Envelope{From: "sender@example.org", Rcpts: []Rcpt{
		{Addr: "first@example.net"}, {Addr: "nobody@example.net"}, {Addr: "second@example.net"}}}
	for i, m := range messages {
		res, err := c.Send(context.Background(), env, []byte(m.content))
		if err != nil {
			t.Fatalf("message %d: Send: %v", i, err)
		}
		for j, want := range []int{250, 550, 250} {
			if got := res.Outcome(j); got == nil || got.Code != want {
				t.Errorf("message %d: Outcome(%d) = %v, want %d", i, j, got, want)
			}
		}
		wantReply(t, "rejected RCPT", res.Rcpts[1], 550, "5.1.1", "no such user")
	}
	if err := c.Quit(context.Background()); err != nil {
		t.Errorf("Quit: %v", err)
	}
	got := k.messages()
	if len(got) != len(messages) {
		t.Fatalf("sink received %d messages, want %d", len(got), len(messages))
	}
	for i, m := range messages {
		if string(got[i].data) != m.want {
			t.Errorf("message %d arrived as %q, want %q", i, got[i].data, m.want)
		}
		if want := []string{"first@example.net", "second@example.net"}; !slices.Equal(got[i].rcpts, want) {
			t.Errorf("message %d: recipients %q, want %q", i, got[i].rcpts, want)
		}
		if got[i].from != "sender@example.org" {
			t.Errorf("message %d: from %q", i, got[i].from)
		}
	}
	k.mu.Lock()
	peer := k.peers[0]
	k.mu.Unlock()
	if peer.String() != c.LocalAddr().String() {
		t.Errorf("server saw %v, client is %v", peer, c.LocalAddr())
	}
}

func TestGoSMTPParameters(t *testing.T) {
	env := Envelope{
		From:     "bounce+x=y@example.org",
		Ret:      "hdrs",
		EnvID:    "id+1=2",
		EightBit: true,
		Size:     1234,
		Rcpts: []Rcpt{
			{Addr: "a@example.net", Notify: "success,failure", ORCPT: "rfc822;A+tag@example.net"},
			{Addr: "b@example.net", Notify: "NEVER", ORCPT: "rfc822;jörg@example.net"},
			{Addr: "c@example.net"},
		},
	}
	tests := []struct {
		name     string
		dsn      bool
		maxBytes int64
		mail     smtp.MailOptions
		rcpts    []smtp.RcptOptions
	}{
		{name: "DSN", dsn: true, maxBytes: 10000,
			mail: smtp.MailOptions{Body: smtp.Body8BitMIME, Size: 1234, Return: smtp.DSNReturnHeaders, EnvelopeID: "id+1=2"},
			rcpts: []smtp.RcptOptions{
				{Notify: []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyFailure},
					OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: "A+tag@example.net"},
				{Notify: []smtp.DSNNotify{smtp.DSNNotifyNever},
					OriginalRecipientType: smtp.DSNAddressTypeUTF8, OriginalRecipient: "jörg@example.net"},
				{},
			}},
		{name: "no DSN", dsn: false,
			mail:  smtp.MailOptions{Body: smtp.Body8BitMIME, Size: 1234},
			rcpts: []smtp.RcptOptions{{}, {}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := startSink(t, func(s *smtp.Server) {
				s.EnableDSN = tt.dsn
				s.MaxMessageBytes = tt.maxBytes
			})
			c, err := Dial(context.Background(), k.addr, "mx.test", testOptions())
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			res, err := c.Send(context.Background(), env, []byte("x\r\n"))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			for i := range env.Rcpts {
				if o := res.Outcome(i); o == nil || !o.Success() {
					t.Fatalf("Outcome(%d) = %v; MAIL %v", i, o, res.Mail)
				}
			}
			got := k.messages()[0]
			if got.from != env.From {
				t.Errorf("from %q, want %q", got.from, env.From)
			}
			if got.mailOpts != tt.mail {
				t.Errorf("MAIL options %+v, want %+v", got.mailOpts, tt.mail)
			}
			for i, want := range tt.rcpts {
				o := got.rcptOpts[i]
				if !slices.Equal(o.Notify, want.Notify) || o.OriginalRecipientType != want.OriginalRecipientType ||
					o.OriginalRecipient != want.OriginalRecipient {
					t.Errorf("RCPT %d options %+v, want %+v", i, o, want)
				}
			}
		})
	}
}

func TestGoSMTPSizeLimit(t *testing.T) {
	k := startSink(t, func(s *smtp.Server) { s.MaxMessageBytes = 1000 })
	c, err := Dial(context.Background(), k.addr, "mx.test", testOptions())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if p, _ := c.Extension("size"); p != "1000" {
		t.Errorf("Extension(size) = %q, want 1000", p)
	}
	env := Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net"}}}
	res, err := c.Send(context.Background(), env, []byte(strings.Repeat("x", 1001)))
	if err != nil || res.Mail.Code != 552 {
		t.Fatalf("Send of 1001 bytes: %v, MAIL %v; want 552", err, res.Mail)
	}
	res, err = c.Send(context.Background(), env, []byte(strings.Repeat("x", 500)))
	if err != nil || !res.Outcome(0).Success() {
		t.Fatalf("Send of 500 bytes: %v, %v", err, res.Outcome(0))
	}
	got := k.messages()
	if len(got) != 1 || got[0].mailOpts.Size != 500 {
		t.Errorf("sink received %+v, want one message with SIZE=500", got)
	}
}

func TestGoSMTPStartTLS(t *testing.T) {
	cert, pool := testlib.Certificate(t, "mx.test")
	tests := []struct {
		name       string
		mode       TLSMode
		roots      *x509.CertPool
		serverName string
		wantTLS    bool
		wantErr    error
	}{
		{name: "opportunistic", mode: TLSOpportunistic, serverName: "mx.test", wantTLS: true},
		{name: "opportunistic, wrong name", mode: TLSOpportunistic, serverName: "other.test", wantTLS: true},
		{name: "disabled", mode: TLSDisabled, serverName: "mx.test"},
		{name: "required, trusted", mode: TLSRequired, roots: pool, serverName: "mx.test", wantTLS: true},
		{name: "required, trusted by IP", mode: TLSRequired, roots: pool, wantTLS: true},
		{name: "required, untrusted", mode: TLSRequired, serverName: "mx.test", wantErr: ErrTLSFailed},
		{name: "required, wrong name", mode: TLSRequired, roots: pool, serverName: "other.test", wantErr: ErrTLSFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := startSink(t, func(s *smtp.Server) {
				s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			})
			opts := testOptions()
			opts.TLSMode = tt.mode
			opts.TLSConfig = &tls.Config{RootCAs: tt.roots}
			c, err := Dial(context.Background(), k.addr, tt.serverName, opts)
			if tt.wantErr != nil {
				if err == nil {
					c.Close()
					t.Fatal("Dial succeeded")
				}
				stageError(t, err, StageStartTLS)
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Dial: %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			state, ok := c.TLS()
			if ok != tt.wantTLS {
				t.Fatalf("TLS() = %v, want %v", ok, tt.wantTLS)
			}
			if _, offered := c.Extension("STARTTLS"); offered != (tt.mode == TLSDisabled) {
				t.Errorf("STARTTLS advertised = %v in mode %v", offered, tt.mode)
			}
			if ok && tt.serverName != "" && state.ServerName != tt.serverName {
				t.Errorf("SNI %q, want %q", state.ServerName, tt.serverName)
			}
			env := Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net"}}}
			if res, err := c.Send(context.Background(), env, []byte("x\r\n")); err != nil || !res.Outcome(0).Success() {
				t.Fatalf("Send: %v, %+v", err, res)
			}
			if err := c.Quit(context.Background()); err != nil {
				t.Errorf("Quit: %v", err)
			}
			if got := k.messages(); len(got) != 1 || got[0].tls != tt.wantTLS {
				t.Errorf("sink received %+v, want one message with TLS %v", got, tt.wantTLS)
			}
		})
	}
}

func TestGoSMTPLocalAddr(t *testing.T) {
	k := startSink(t, nil)
	opts := testOptions()
	opts.LocalAddr = "127.0.0.2"
	c, err := Dial(context.Background(), k.addr, "mx.test", opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if err := c.Noop(context.Background()); err != nil {
		t.Fatalf("Noop: %v", err)
	}
	k.mu.Lock()
	peer := k.peers[0].(*net.TCPAddr)
	k.mu.Unlock()
	if !peer.IP.Equal(net.IPv4(127, 0, 0, 2)) {
		t.Errorf("server saw the client at %v, want 127.0.0.2", peer)
	}
	if local := c.LocalAddr().(*net.TCPAddr); !local.IP.Equal(peer.IP) {
		t.Errorf("LocalAddr() = %v, want %v", local, peer.IP)
	}
}
