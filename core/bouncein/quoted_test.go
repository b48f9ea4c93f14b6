package bouncein

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"corriere/core/policy"
	"corriere/core/reply"
	"corriere/core/verp"
)

// FuzzQuotedRefs: whatever a feedback report holds, quotedRefs never
// panics, returns at most maxQuoted references, each once, and only
// addresses that verify.
func FuzzQuotedRefs(f *testing.F) {
	signer, err := verp.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	good := signer.Address("bounces@bounces.example", "0r3f5k2q7hx2m4q8zt5y", 1)
	f.Add([]byte("Original-Mail-From: <" + good + ">\r\nReturn-Path: <" + good + ">\r\n"))
	f.Add([]byte("return-path:" + good + "\n"))
	f.Add([]byte("Original-Mail-From: <bounces+x-1-y@bounces.example>\r\n"))
	f.Add([]byte(":\n:\r\n<>"))
	s := &Server{opts: Options{VERP: signer}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		refs := s.quotedRefs(raw)
		if len(refs) > maxQuoted {
			t.Fatalf("%d references, at most %d", len(refs), maxQuoted)
		}
		seen := map[verp.Ref]bool{}
		for _, a := range refs {
			if seen[a.ref] {
				t.Fatalf("reference %+v twice", a.ref)
			}
			seen[a.ref] = true
			ref, err := signer.Parse(a.addr)
			if err != nil || ref != a.ref || !a.quoted {
				t.Fatalf("returned %+v, which does not verify: %v", a, err)
			}
		}
	})
}

// FuzzQuotedReference: whatever a report holds, quotedReference never
// panics and returns only references that Seal made.
func FuzzQuotedReference(f *testing.F) {
	signer, err := verp.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	good := signer.Seal(verp.Reference{Tenant: "t", MsgID: "m", Index: 0, Rcpt: "a@b.example"})
	f.Add([]byte(verp.RefHeader + ": " + good + "\r\n"))
	f.Add([]byte(verp.RefHeader + ":\r\n " + good[:20] + "\r\n\t" + good[20:] + "\r\n"))
	f.Add([]byte("x-corriere-ref:1.\n"))
	s := &Server{opts: Options{VERP: signer}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ref, found, err := s.quotedReference(raw)
		if found && err == nil && ref.MsgID == "" {
			t.Fatalf("reference %+v without a message", ref)
		}
	})
}

func TestOneLineKeepsUTF8(t *testing.T) {
	long := strings.Repeat("è", maxDiagnostic) // two bytes each
	got := oneLine("  a\r\n\t" + long)
	if !utf8.ValidString(got) || len(got) > maxDiagnostic || !strings.HasPrefix(got, "a è") {
		t.Errorf("oneLine gave %d bytes, valid UTF-8 %v, prefix %q", len(got), utf8.ValidString(got), got[:4])
	}
}

// FuzzProviderReply: whatever a bounce's diagnostic holds, providerReply
// never panics, gives a 4xx or 5xx reply or none, and a diagnostic that
// starts with its own code and status once is quoted with them once.
func FuzzProviderReply(f *testing.F) {
	f.Add("550 5.1.1 <a@b.example>: user unknown", 550, "5.1.1")
	f.Add("550-5.1.1 first 550-5.1.1 second 550 5.1.1 last", 550, "5.1.1")
	f.Add("mailbox full", 0, "4.2.2")
	f.Add("421", 421, "")
	f.Fuzz(func(t *testing.T, diag string, code int, status string) {
		r := policy.BounceReport{Diagnostic: diag, ReplyCode: code, Status: status}
		rep, _, ok := providerReply(r)
		if ok && (rep.Code < 400 || rep.Code >= 600) {
			t.Fatalf("reply %v from %+v", rep, r)
		}
		_, _, coded := leadingCode(oneLine(diag))
		if st, valid := reply.ParseStatus(status); !coded && valid && code >= 400 && code < 600 && st.Class == code/100 {
			prefix := strconv.Itoa(code) + " " + status + " "
			r.Diagnostic = prefix + diag
			if rep, _, _ := providerReply(r); strings.HasPrefix(rep.String(), prefix+prefix) {
				t.Fatalf("%q quoted as %q", r.Diagnostic, rep.String())
			}
		}
	})
}
