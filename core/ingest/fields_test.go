package ingest

import (
	"net/netip"
	"strings"
	"testing"
)

// TestMissingFieldsAreAdded checks over SMTP that a submission without
// Message-ID or Date gets them (RFC 6409 section 8), and that fields the
// client wrote are kept as they are.
func TestMissingFieldsAreAdded(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   []string // lines the spooled header must contain
		absent []string // lines it must not
	}{
		{"neither", "Subject: x", []string{"Date: ", "Message-ID: <"}, nil},
		{"both present", "Subject: x\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <own@client.example>",
			[]string{"Date: Thu, 03 Dec 2026 10:00:00 +0000", "Message-ID: <own@client.example>"}, []string{"@mta.test>"}},
		{"only a Date", "Subject: x\r\ndate: Thu, 03 Dec 2026 10:00:00 +0000", []string{"Message-ID: <"}, []string{"Date: "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, addr, sp, col := startServer(t, serverSetup{relayNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
			c, r, _ := dialFrom(t, addr, "127.0.0.1")
			for _, line := range []string{"EHLO client.example", "MAIL FROM:<app@anywhere.example>", "RCPT TO:<b@dest.example>", "DATA"} {
				send(t, c, r, line)
			}
			if got := send(t, c, r, tc.header+"\r\n\r\nhello\r\n."); !strings.HasPrefix(got, "250 ") {
				t.Fatalf("reply %q", got)
			}
			content, err := sp.Content(col.metas[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			header := strings.SplitN(string(content), "\r\n\r\n", 2)[0] + "\r\n"
			for _, w := range tc.want {
				if !strings.Contains(header, "\r\n"+w) {
					t.Errorf("header lacks %q:\n%s", w, header)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(header, "\r\n"+a) {
					t.Errorf("header has %q:\n%s", a, header)
				}
			}
			if id := col.metas[0].ID; tc.name == "neither" && !strings.Contains(header, "Message-ID: <"+id+"@mta.test>") {
				t.Errorf("Message-ID is not the queue id %s at the hostname:\n%s", id, header)
			}
		})
	}
}
