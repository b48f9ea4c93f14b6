package bouncein

import (
	"strings"
	"testing"
	"unicode/utf8"

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
