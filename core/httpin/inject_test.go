package httpin_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"corriere/core/httpin"
	"corriere/core/httpin/httpintest"
	"corriere/core/node"
	"corriere/core/testlib"
)

// TestInjectThousandRecipients: one request of 1,000 recipients, each with
// its own substitution, is answered with 1,000 distinct queue ids, and every
// recipient receives its own rendering over loopback SMTP.
func TestInjectThousandRecipients(t *testing.T) {
	f := httpintest.StartNode(t, "", nil)
	const n = 1000
	req := httpin.Request{Sender: "app@sender.test", Content: httpin.Content{
		From: "App <app@sender.test>", Subject: "Hello {{.name}}",
		Text: "Dear {{.name}},\nyour code is {{.code}}.\n", HTML: "<p>Dear {{.name}}</p>",
	}}
	for i := range n {
		req.Recipients = append(req.Recipients, httpin.Recipient{
			Email: fmt.Sprintf("r%d@d%d.test", i, i%4), Substitutions: map[string]any{"name": fmt.Sprintf("R%d", i), "code": i * 7},
		})
	}
	ids := map[string]bool{}
	// A loaded machine may answer some recipients 451 (a policy hook over
	// its time budget): they are sent again, as a client does with a
	// temporary refusal.
	for round := 0; len(req.Recipients) > 0; round++ {
		if round == 5 {
			t.Fatalf("%d recipients still refused after %d rounds", len(req.Recipients), round)
		}
		status, out := f.Post(t, f.Key, httpintest.MustJSON(t, req))
		if status != 200 {
			t.Fatalf("status %d: %v", status, out)
		}
		var again []httpin.Recipient
		for i, m := range out["messages"].([]any) {
			m := m.(map[string]any)
			if m["recipient"] != req.Recipients[i].Email {
				t.Fatalf("messages[%d] = %v, for %s", i, m, req.Recipients[i].Email)
			}
			if e, ok := m["error"].(map[string]any); ok && e["temporary"] == true {
				again = append(again, req.Recipients[i])
				continue
			}
			id, _ := m["id"].(string)
			if id == "" || ids[id] {
				t.Fatalf("messages[%d] = %v: no id, or a repeated one", i, m)
			}
			ids[id] = true
		}
		req.Recipients = again
	}
	if len(ids) != n {
		t.Fatalf("%d distinct ids, want %d", len(ids), n)
	}
	got := f.RX.Wait(t, n, 3*time.Minute)
	seen := map[string]bool{}
	for _, m := range got {
		var i int
		if _, err := fmt.Sscanf(m.To[0], "r%d@", &i); err != nil {
			t.Fatalf("unexpected recipient %v", m.To)
		}
		want := fmt.Sprintf("Subject: Hello R%d\r\n", i)
		if !bytes.Contains(m.Data, []byte(want)) || !bytes.Contains(m.Data, []byte(fmt.Sprintf("your code is %d.", i*7))) {
			t.Fatalf("message to %s lacks its substitutions:\n%s", m.To[0], m.Data)
		}
		if !bytes.Contains(m.Data, []byte("with HTTP id ")) {
			t.Fatalf("message to %s has no Received field of the API:\n%s", m.To[0], m.Data)
		}
		seen[m.To[0]] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct recipients received, want %d", len(seen), n)
	}
}

// TestInjectErrors: each malformed request gets the documented status and a
// JSON error naming the field at fault, and nothing is spooled.
func TestInjectErrors(t *testing.T) {
	f := httpintest.StartNode(t, "", nil)
	good := `{"sender":"app@sender.test","recipients":[{"email":"a@d0.test","substitutions":{"name":"A"}},{"email":"b@d0.test"}],"content":{"from":"app@sender.test","subject":"Hi","text":"hello"}}`
	big := `{"sender":"app@sender.test","recipients":[{"email":"a@d0.test"}],"content":{"from":"app@sender.test","text":"` + strings.Repeat("x", 2<<20) + `"}}`
	many := `{"sender":"app@sender.test","recipients":[` + strings.Repeat(`{"email":"a@d0.test"},`, 1000) + `{"email":"a@d0.test"}],"content":{"from":"app@sender.test","text":"x"}}`
	tests := []struct {
		name, key, body string
		status          int
		field           string
	}{
		{"malformed JSON", f.Key, `{"sender": "app@sender.test",`, 400, ""},
		{"not an object", f.Key, `[1,2]`, 400, ""},
		{"unknown field", f.Key, strings.Replace(good, `"sender"`, `"sendr"`, 1), 400, "sendr"},
		{"wrong type", f.Key, strings.Replace(good, `"sender":"app@sender.test"`, `"sender":3`, 1), 400, "sender"},
		{"no sender", f.Key, strings.Replace(good, `"sender":"app@sender.test",`, ``, 1), 400, "sender"},
		{"no recipients", f.Key, strings.Replace(good, `{"email":"a@d0.test","substitutions":{"name":"A"}},{"email":"b@d0.test"}`, ``, 1), 400, "recipients"},
		{"recipient without email", f.Key, strings.Replace(good, `{"email":"b@d0.test"}`, `{}`, 1), 400, "recipients[1].email"},
		{"too many recipients", f.Key, many, 400, "recipients"},
		{"no body part", f.Key, strings.Replace(good, `,"text":"hello"`, ``, 1), 400, "content.text"},
		{"raw with parts", f.Key, strings.Replace(good, `"text":"hello"`, `"text":"hello","raw":"Subject: x\n\nx"`, 1), 400, "content.raw"},
		{"reserved header", f.Key, strings.Replace(good, `"text":"hello"`, `"text":"hello","headers":{"To":"x@y"}`, 1), 400, "content.headers.To"},
		{"bad base64", f.Key, strings.Replace(good, `"text":"hello"`, `"text":"hello","attachments":[{"filename":"a.txt","data":"!!"}]`, 1), 400, "content.attachments[0].data"},
		{"template calls a function", f.Key, strings.Replace(good, `"subject":"Hi"`, `"subject":"{{printf \"%d\" 1}}"`, 1), 400, "content.subject"},
		{"template does not parse", f.Key, strings.Replace(good, `"subject":"Hi"`, `"subject":"{{.name"`, 1), 400, "content.subject"},
		{"missing substitution", f.Key, strings.Replace(good, `"subject":"Hi"`, `"subject":"Hi {{.name}}"`, 1), 400, "recipients[1].substitutions"},
		{"no key", "", good, 401, "Authorization"},
		{"unknown key", "acme." + strings.Repeat("0", 64), good, 401, "Authorization"},
		{"key of an unknown tenant", "nobody." + strings.Repeat("0", 64), good, 401, "Authorization"},
		{"not a key", "hunter2", good, 401, "Authorization"},
		{"oversized", f.Key, big, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := f.Post(t, tt.key, []byte(tt.body))
			e, _ := out["error"].(map[string]any)
			if status != tt.status || e == nil || e["message"] == "" {
				t.Fatalf("status %d, answer %v; want %d with an error", status, out, tt.status)
			}
			if field, _ := e["field"].(string); field != tt.field {
				t.Errorf("error.field = %q, want %q (message %q)", field, tt.field, e["message"])
			}
		})
	}
	if q := f.Node.Queue().Pending(); q != 0 {
		t.Errorf("%d recipients queued by refused requests", q)
	}
}

// TestInjectRefusesPerRecipient: a sender outside the tenant's
// sender_domains, and a recipient SMTP would refuse, get the SMTP reply
// in their result, as the other recipients are accepted.
func TestInjectRefusesPerRecipient(t *testing.T) {
	f := httpintest.StartNode(t, "", nil)
	status, out := f.Post(t, f.Key, []byte(`{"sender":"app@other.test","recipients":[{"email":"a@d0.test"}],"content":{"from":"app@sender.test","text":"x"}}`))
	if status != 200 {
		t.Fatalf("status %d: %v", status, out)
	}
	e := out["messages"].([]any)[0].(map[string]any)["error"].(map[string]any)
	if e["code"] != float64(553) || e["status"] != "5.7.1" || e["temporary"] != false {
		t.Errorf("foreign sender: error %v, want 553 5.7.1", e)
	}
	status, out = f.Post(t, f.Key, []byte(`{"sender":"app@sender.test","recipients":[{"email":"a@d0.test"},{"email":"b@[127.0.0.1]"},{"email":"not an address"}],"content":{"from":"app@other.test","text":"x"}}`))
	if status != 200 || out["accepted"] != float64(0) {
		t.Fatalf("foreign From: status %d, %v; want every message refused", status, out)
	}
	status, out = f.Post(t, f.Key, []byte(`{"sender":"app@sender.test","recipients":[{"email":"a@d0.test"},{"email":"b@[127.0.0.1]"},{"email":"not an address"}],"content":{"from":"app@sender.test","text":"x"}}`))
	if status != 200 || out["accepted"] != float64(1) || out["refused"] != float64(2) {
		t.Fatalf("status %d, %v; want 1 accepted, 2 refused", status, out)
	}
	f.RX.Wait(t, 1, 30*time.Second)
}

// TestInjectOverTLS: with the SMTP certificate flags the API is served
// over TLS only, and the Received field says HTTPS.
func TestInjectOverTLS(t *testing.T) {
	cert, key := testlib.CertificateFiles(t, "127.0.0.1")
	f := httpintest.StartNode(t, "", nil, func(c *node.Config) { c.TLSCert, c.TLSKey = cert, key })
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	f.Client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	status, out := f.Post(t, f.Key, []byte(`{"sender":"app@sender.test","recipients":[{"email":"a@d0.test"}],"content":{"from":"app@sender.test","text":"x"}}`))
	if status != 200 || out["accepted"] != float64(1) {
		t.Fatalf("status %d: %v", status, out)
	}
	if m := f.RX.Wait(t, 1, time.Minute)[0]; !bytes.Contains(m.Data, []byte("with HTTPS id ")) {
		t.Errorf("Received field without HTTPS:\n%s", m.Data)
	}
	resp, err := http.Post("http://"+f.Node.HTTPAddr()+httpin.InjectPath, "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS listener: status %d", resp.StatusCode)
		}
	}
}
