package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"corriere/core/admin"
	"corriere/core/bouncein"
	"corriere/core/policy"
	"corriere/core/sim"
	"corriere/core/testlib"
	"corriere/core/verp"
	_ "corriere/plugins/all" // DKIM signs, as in corriere serve
)

// The case study of issue 6: doctors write to their patients through one
// platform account ("ricette"), each from the domain of their own
// practice, which the platform does not control.
const (
	doctor      = "dott.bianchi@studio-bianchi.it" // a practice on Microsoft 365
	platformBox = "bounces@bounces.corriere-smarthost.it"
	patient     = "mario.verdi@gmail.com"  // delivered
	gonePatient = "unknown-anna@gmail.com" // 550 5.1.1 at RCPT
	lateBounce  = "bounce-luca@yahoo.com"  // accepted, bounced later
	otherTenant = "example"                // rules/tenants/example.lua
	otherPass   = "corriere-demo"          // its published demo password
	otherSender = "alerts@example.com"     // one of its sender domains
	ricettePass = "a password for this test only"
	fblAddress  = "fbl@bounces.corriere-smarthost.it"
)

// caseStudy is a node with the bounce listener, the simulated internet,
// and the ricette tenant re-enveloping its mail.
type caseStudy struct {
	node *Node
	sim  *sim.Sim
	key  *verp.Signer
	port int // the MX port of the simulated internet
}

// caseTweak changes a case study before it starts; either function may be
// nil.
type caseTweak struct {
	// world changes the rules directory and the simulated world.
	world func(rules string, world *sim.World)
	// config changes the node's configuration.
	config func(cfg *Config)
}

func startCaseStudy(t *testing.T, tweaks ...caseTweak) *caseStudy {
	t.Helper()
	world, err := sim.LoadWorld(filepath.Join("..", "..", "testdata", "sim", "world.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The providers' late bounces come a tenth of a second after they
	// accept, not seconds: the simulator waits for them in real time.
	for i := range world.Providers {
		if a := world.Providers[i].AsyncBounce; a != nil {
			a.Delay = sim.Duration(100 * time.Millisecond)
		}
	}
	rules := copyTree(t, filepath.Join("..", "..", "rules"))
	hash, err := bcrypt.GenerateFromPassword([]byte(ricettePass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tenant := fmt.Sprintf(`return {
  password_hash = %q,
  reenvelope = true,
  bounce_domain = "bounces.corriere-smarthost.it",
}
`, hash)
	if err := os.WriteFile(filepath.Join(rules, "tenants", "ricette.lua"), []byte(tenant), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tw := range tweaks {
		if tw.world != nil {
			tw.world(rules, world)
		}
	}

	// Corriere reaches every MX on one port; the simulator sends its late
	// bounces to that port of the envelope sender's MX, which for the
	// bounce domain is 127.0.0.10, where the bounce listener is.
	var s *sim.Sim
	var port int
	for range 10 {
		ln, err := net.Listen("tcp4", "127.0.0.10:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		base := time.Now()
		s, err = sim.Start(context.Background(), world, sim.Options{
			MXPort: port, ReturnPort: port, Seed: 1,
			// The simulated providers' clock runs ten times faster, for
			// their greylisting and rate windows.
			Now: func() time.Time { return base.Add(time.Since(base) * 10) },
		})
		if err == nil {
			break
		}
	}
	if s == nil {
		t.Fatal("no port free for the simulator")
	}
	t.Cleanup(func() { s.Close() })

	spoolDir := t.TempDir()
	cfg := Config{
		Listen: "127.0.0.1:0", SpoolDir: spoolDir, Hostname: "mta.corriere-smarthost.it",
		DNSServers: []string{s.DNSAddr()}, MXPort: port,
		Sources:    []policy.Source{{IP: "127.0.0.2", Helo: "mta2.corriere-smarthost.it"}},
		ScriptsDir: filepath.Join("..", "..", "scripts"), RulesDir: rules,
		InsecureAuthLoopback: true, Retry: []time.Duration{200 * time.Millisecond},
		BounceListen: fmt.Sprintf("127.0.0.10:%d", port), FBLAddresses: []string{fblAddress},
		AdminListen: "127.0.0.1:0", AdminToken: "case-study",
	}
	for _, tw := range tweaks {
		if tw.config != nil {
			tw.config(&cfg)
		}
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	key, err := verp.LoadOrCreateKey(filepath.Join(spoolDir, "verp.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := verp.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return &caseStudy{node: n, sim: s, key: signer, port: port}
}

// submit sends one message over SMTP with AUTH and returns the error of
// the first refused RCPT, or of the transaction.
func (c *caseStudy) submit(t *testing.T, user, pass, from, header string, rcpts ...string) error {
	t.Helper()
	cl, err := smtp.Dial(c.node.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Hello("app.ricette-online.example"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatalf("AUTH as %s: %v", user, err)
	}
	if err := cl.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := cl.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	msg := header + "Date: " + time.Now().Format(time.RFC1123Z) + "\r\nMessage-ID: <" + fmt.Sprint(time.Now().UnixNano()) + "@ricette-online.example>\r\n\r\nBuongiorno,\r\nin allegato la ricetta.\r\n"
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return cl.Quit()
}

// deliveriesTo returns what the simulated providers accepted for rcpt.
func (c *caseStudy) deliveriesTo(rcpt string) []sim.Delivery {
	var out []sim.Delivery
	for _, d := range c.sim.Deliveries() {
		if strings.EqualFold(d.Recipient, rcpt) {
			out = append(out, d)
		}
	}
	return out
}

func TestCaseStudyDoctorsThroughOnePlatform(t *testing.T) {
	t.Parallel()
	c := startCaseStudy(t)
	header := "From: Dott.ssa Anna Bianchi <" + doctor + ">\r\nTo: pazienti\r\nSubject: Ricetta elettronica\r\n"
	if err := c.submit(t, "ricette", ricettePass, doctor, header, patient, gonePatient, lateBounce); err != nil {
		t.Fatalf("submission refused: %v", err)
	}

	// The patient gets the message: From kept, the platform as Sender and
	// envelope sender (a VERP address naming this recipient), replies to
	// the doctor, signed by the platform's domain.
	testlib.WaitFor(t, "the delivery to the patient", func() bool { return len(c.deliveriesTo(patient)) > 0 })
	d := c.deliveriesTo(patient)[0]
	if _, err := c.key.Parse(d.From); err != nil || !strings.HasSuffix(d.From, "@bounces.corriere-smarthost.it") {
		t.Errorf("envelope sender %q: want a verified VERP address on the bounce domain (%v)", d.From, err)
	}
	h := string(d.Header)
	for _, want := range []string{
		"From: Dott.ssa Anna Bianchi <" + doctor + ">",
		"Sender: " + platformBox,
		"Reply-To: Dott.ssa Anna Bianchi <" + doctor + ">",
		"d=corriere-smarthost.it",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("delivered header lacks %q:\n%s", want, h)
		}
	}

	// The unknown patient's 550 becomes a DSN to the doctor, and the late
	// bounce from the other provider reaches the bounce listener and is
	// forwarded to the doctor too: two DSNs for the doctor, none for the
	// platform's mailbox.
	testlib.WaitFor(t, "two DSNs delivered to the doctor", func() bool { return len(c.deliveriesTo(doctor)) >= 2 })
	for _, dsn := range c.deliveriesTo(doctor) {
		if dsn.From != "" {
			t.Errorf("DSN to the doctor from %q, want the null sender", dsn.From)
		}
	}
	if n := len(c.deliveriesTo(platformBox)); n != 0 {
		t.Errorf("the platform's mailbox got %d messages", n)
	}
	if got := c.node.Bounces().Counts(); got.Bounces != 1 || got.Forwarded != 1 || got.Forged != 0 {
		t.Errorf("bounce listener counts %+v: want the late bounce taken and forwarded", got)
	}
	testlib.WaitFor(t, "the queue to empty", func() bool { return c.node.Queue().Pending() == 0 })

	// Both failed addresses are now suppressed for ricette, and only for
	// ricette.
	for _, gone := range []string{gonePatient, lateBounce} {
		err := c.submit(t, "ricette", ricettePass, doctor, header, gone)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 550 || !strings.Contains(se.Message, "suppressed") {
			t.Errorf("ricette to %s again: %v, want 550 naming the suppression", gone, err)
		}
		other := "From: <" + otherSender + ">\r\nSubject: Avviso\r\n"
		if err := c.submit(t, otherTenant, otherPass, otherSender, other, gone); err != nil {
			t.Errorf("another tenant to %s: %v, want it accepted", gone, err)
		}
	}
	// The patient marks the message as spam; the provider's feedback loop
	// reports it to the platform's FBL address, quoting the envelope
	// sender: the patient is suppressed for ricette too.
	c.report(t, d.From)
	testlib.WaitFor(t, "the complaint to be taken", func() bool { return c.node.Bounces().Counts().Complaints == 1 })
	err := c.submit(t, "ricette", ricettePass, doctor, header, patient)
	if se := (*smtp.SMTPError)(nil); !errors.As(err, &se) || se.Code != 550 {
		t.Errorf("ricette to %s after the complaint: %v, want 550", patient, err)
	}
}

// report sends the bounce listener a feedback report (RFC 5965) to the FBL
// address about a message whose envelope sender was mailFrom.
func (c *caseStudy) report(t *testing.T, mailFrom string) {
	t.Helper()
	raw := "From: feedbackloop@gmail.com\r\nTo: " + fblAddress + "\r\nSubject: Complaint\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=feedback-report; boundary=\"fb\"\r\n\r\n" +
		"--fb\r\nContent-Type: text/plain\r\n\r\nA user marked this message as spam.\r\n" +
		"--fb\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: test/1.0\r\nVersion: 1\r\n" +
		"Original-Mail-From: <" + mailFrom + ">\r\nOriginal-Rcpt-To: <" + patient + ">\r\n" +
		"--fb\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: " + doctor + "\r\nSubject: Ricetta elettronica\r\n--fb--\r\n"
	if err := sendRaw(c.node.BounceAddr(), "feedbackloop@gmail.com", fblAddress, raw); err != nil {
		t.Fatalf("feedback report refused: %v", err)
	}
}

// sendRaw sends raw from one sender to one recipient over plain SMTP and
// returns the first refusal.
func sendRaw(addr, from, to, raw string) error {
	cl, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Hello("mx.provider.example"); err != nil {
		return err
	}
	if err := cl.Mail(from, nil); err != nil {
		return err
	}
	if err := cl.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(raw)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return cl.Quit()
}

func TestCaseStudyForgedBounceChangesNothing(t *testing.T) {
	t.Parallel()
	c := startCaseStudy(t)
	header := "From: Dott.ssa Anna Bianchi <" + doctor + ">\r\nSubject: Ricetta elettronica\r\n"
	if err := c.submit(t, "ricette", ricettePass, doctor, header, patient); err != nil {
		t.Fatalf("submission refused: %v", err)
	}
	testlib.WaitFor(t, "the delivery to the patient", func() bool { return len(c.deliveriesTo(patient)) > 0 })
	real := c.deliveriesTo(patient)[0].From

	// A forger who saw one VERP address tries to bounce the patient: the
	// same message with another recipient index, and a made-up tag.
	at := strings.LastIndexByte(real, '@')
	forged := []string{
		strings.Replace(real, "-0-", "-1-", 1),
		real[:at-4] + "aaaa" + real[at:],
	}
	bounce := "From: MAILER-DAEMON@gmail.com\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Content-Type: text/plain\r\n\r\n<" + patient + ">: 550 5.1.1 user unknown\r\n"
	for _, rcpt := range forged {
		err := sendRaw(c.node.BounceAddr(), "", rcpt, bounce)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 550 {
			t.Errorf("bounce to %s: %v, want 550", rcpt, err)
		}
	}
	// The operators see the same counts through the admin API.
	var got bouncein.Counts
	cl := admin.Client{Addr: c.node.admin.Addr(), Token: "case-study"}
	if err := cl.Get(context.Background(), "/api/bounces", &got); err != nil {
		t.Fatalf("admin API: %v", err)
	}
	if got.Forged != 2 || got.Bounces != 0 || got.Forwarded != 0 {
		t.Errorf("bounce listener counts %+v: want 2 forged, nothing taken", got)
	}
	// Nothing suppressed: the patient still takes mail from ricette.
	if err := c.submit(t, "ricette", ricettePass, doctor, header, patient); err != nil {
		t.Errorf("ricette to the patient after forged bounces: %v", err)
	}
}
