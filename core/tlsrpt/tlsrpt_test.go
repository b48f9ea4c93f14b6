package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"corriere/core/clock"
	"corriere/core/dns"
	"corriere/core/dns/authserver"
)

var day = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)

// record fills r with a day of results for sts.test and dane.test.
func record(r *Recorder) {
	sts := Result{Domain: "sts.test", PolicyType: PolicySTS, Policy: []string{"version: STSv1", "mode: enforce", "mx: mx.sts.test", "max_age: 86400"},
		MXPatterns: []string{"mx.sts.test"}, MXHost: "mx.sts.test", SendingIP: "192.0.2.1", ReceivingIP: "198.51.100.1"}
	for i := range 5 {
		res := sts
		res.At = day.Add(time.Duration(i) * time.Hour)
		if i >= 3 {
			res.Failure, res.Reason = ResultStartTLSNotSupported, "no STARTTLS"
		}
		r.Record(res)
	}
	r.Record(Result{At: day.Add(time.Hour), Domain: "dane.test", PolicyType: PolicyTLSA, Policy: []string{"3 1 1 abcd"},
		MXHost: "mx.dane.test", Failure: ResultTLSAInvalid})
	r.Record(Result{At: day.Add(25 * time.Hour), Domain: "sts.test", PolicyType: PolicySTS}) // the next day
}

func TestReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tls-rpt.json")
	r, err := NewRecorder(Options{Path: path, Submitter: "mta.sender.test", Organization: "Sender"})
	if err != nil {
		t.Fatal(err)
	}
	record(r)
	if err := r.Save(); err != nil {
		t.Fatal(err)
	}
	// A restart keeps the day's results.
	if r, err = NewRecorder(Options{Path: path, Submitter: "mta.sender.test", Organization: "Sender"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Domains(day), " "); got != "dane.test sts.test" {
		t.Fatalf("Domains = %q", got)
	}
	rep := r.Report(day, "sts.test")
	js, _ := json.Marshal(rep)
	var generic map[string]any
	json.Unmarshal(js, &generic)
	want := `{"organization-name":"Sender","date-range":{"start-datetime":"2026-12-02T00:00:00Z","end-datetime":"2026-12-02T23:59:59Z"},` +
		`"contact-info":"postmaster@mta.sender.test","report-id":"2026-12-02_sts.test@mta.sender.test","policies":[{"policy":{"policy-type":"sts",` +
		`"policy-string":["version: STSv1","mode: enforce","mx: mx.sts.test","max_age: 86400"],"policy-domain":"sts.test","mx-host":["mx.sts.test"]},` +
		`"summary":{"total-successful-session-count":3,"total-failure-session-count":2},"failure-details":[{"result-type":"starttls-not-supported",` +
		`"sending-mta-ip":"192.0.2.1","receiving-mx-hostname":"mx.sts.test","receiving-ip":"198.51.100.1","failed-session-count":2,"failure-reason-code":"no STARTTLS"}]}]}`
	if string(js) != want {
		t.Fatalf("report:\n%s\nwant\n%s", js, want)
	}
	if r.Report(day.Add(-24*time.Hour), "sts.test") != nil {
		t.Fatal("a report for a day without sessions")
	}
}

func TestParseRecord(t *testing.T) {
	for txt, want := range map[string]string{
		"v=TLSRPTv1; rua=mailto:tls@example.org":                        "mailto:tls@example.org",
		"v=TLSRPTv1;rua=mailto:a@example.org,https://r.example.org/tls": "mailto:a@example.org https://r.example.org/tls",
		"v=TLSRPTv1; rua=http://insecure.example.org/":                  "",
		"v=TLSRPTv2; rua=mailto:tls@example.org":                        "",
		"v=TLSRPTv1":                                                    "",
	} {
		us, err := ParseRecord(txt)
		var got []string
		for _, u := range us {
			got = append(got, u.String())
		}
		if strings.Join(got, " ") != want || (want == "") != (err != nil) {
			t.Errorf("ParseRecord(%q) = %v, %v; want %q", txt, got, err, want)
		}
	}
}

func TestSend(t *testing.T) {
	var mu sync.Mutex
	var posted [][]byte
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/tlsrpt+gzip" {
			http.Error(w, "bad type", http.StatusUnsupportedMediaType)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posted = append(posted, b)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	as, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	as.MustAdd(
		`_smtp._tls.sts.test. 300 IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@sts.test,` + srv.URL + `/report"`,
		// dane.test publishes no TLSRPT record: its report is dropped.
	)
	res, err := dns.New(dns.Options{Servers: []string{as.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	type mail struct {
		from, to string
		content  []byte
	}
	var mails []mail
	r, err := NewRecorder(Options{Submitter: "mta.sender.test", Resolver: res, HTTPClient: srv.Client(),
		Clock: clock.NewFake(day.Add(24 * time.Hour)),
		Mail: func(_ context.Context, from, to string, content []byte) error {
			mails = append(mails, mail{from, to, content})
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	record(r)
	n, err := r.Send(context.Background(), day)
	if err != nil || n != 2 {
		t.Fatalf("Send = %d, %v; want 2 reports", n, err)
	}
	if len(posted) != 1 || len(mails) != 1 {
		t.Fatalf("%d posted, %d mailed; want one of each", len(posted), len(mails))
	}
	if got := decode(t, posted[0]); got.Policies[0].Summary.Failed != 2 || got.Policies[0].Policy.Domain != "sts.test" {
		t.Errorf("posted report %+v", got)
	}
	m := mails[0]
	if m.to != "tls-reports@sts.test" || m.from != "postmaster@mta.sender.test" {
		t.Errorf("mailed from %s to %s", m.from, m.to)
	}
	text := string(m.content)
	for _, h := range []string{"Subject: Report Domain: sts.test Submitter: mta.sender.test Report-ID: <2026-12-02_sts.test@mta.sender.test>",
		"TLS-Report-Domain: sts.test", "TLS-Report-Submitter: mta.sender.test", `report-type="tlsrpt"`, "Content-Type: application/tlsrpt+gzip"} {
		if !strings.Contains(text, h) {
			t.Errorf("mail lacks %q:\n%s", h, text)
		}
	}
	_, attachment, _ := strings.Cut(text, ".json.gz\"\r\n\r\n")
	attachment, _, _ = strings.Cut(attachment, "\r\n--")
	gz, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(attachment, "\r\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(t, gz); got.Policies[0].FailureDetails[0].ResultType != ResultStartTLSNotSupported {
		t.Errorf("mailed report %+v", got)
	}
	if len(r.Domains(day)) != 0 {
		t.Error("the sent day's results are still kept")
	}
}

func decode(t *testing.T, gz []byte) *Report {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.NewDecoder(zr).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

func FuzzParseRecord(f *testing.F) {
	f.Add("v=TLSRPTv1; rua=mailto:tls@example.org,https://r.example.org/tls")
	f.Add("v=TLSRPTv1;rua=mailto:%40@x")
	f.Fuzz(func(t *testing.T, txt string) {
		us, err := ParseRecord(txt)
		if err != nil {
			return
		}
		for _, u := range us {
			if u.Scheme != "mailto" && u.Scheme != "https" {
				t.Fatalf("ParseRecord(%q) returned %s", txt, u)
			}
		}
	})
}

// TestSendDue sends every finished day the recorder holds, as after a
// restart that missed midnight, and keeps today's results.
func TestSendDue(t *testing.T) {
	as, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	as.MustAdd(`_smtp._tls.sts.test. 300 IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@sts.test"`)
	res, err := dns.New(dns.Options{Servers: []string{as.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	r, err := NewRecorder(Options{Submitter: "mta.sender.test", Resolver: res, Clock: clock.NewFake(day.Add(48*time.Hour + time.Hour)),
		Mail: func(_ context.Context, _, _ string, content []byte) error {
			subject, _, _ := strings.Cut(string(content[strings.Index(string(content), "Subject: "):]), "\r\n")
			subjects = append(subjects, subject)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	record(r) // day and the day after
	today := day.Add(48 * time.Hour)
	r.Record(Result{At: today, Domain: "sts.test", PolicyType: PolicySTS})
	r.SendDue(context.Background())
	if len(subjects) != 2 || !strings.Contains(subjects[0], "2026-12-02_sts.test") || !strings.Contains(subjects[1], "2026-12-03_sts.test") {
		t.Fatalf("sent %q; want the reports of 2026-12-02 and 2026-12-03", subjects)
	}
	if len(r.Domains(day)) != 0 || len(r.Domains(today)) != 1 {
		t.Fatalf("after SendDue: %v on the sent day, %v today; want none and sts.test", r.Domains(day), r.Domains(today))
	}
}

func TestAdminSendRefusesABadDay(t *testing.T) {
	r, err := NewRecorder(Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := AdminHandlers(r)["POST /api/tlsrpt/send"]
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, httptest.NewRequest(http.MethodPost, "/api/tlsrpt/send?day=yesterday", nil))
	if rw.Code != http.StatusBadRequest || !strings.Contains(rw.Body.String(), "YYYY-MM-DD") {
		t.Fatalf("bad day: %d %s", rw.Code, rw.Body.String())
	}
}
