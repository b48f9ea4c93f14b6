package dns

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"corriere/core/reply"
)

func TestErrorReply(t *testing.T) {
	tests := []struct {
		err       *Error
		temporary bool
		message   string
		reply     string
	}{
		{
			err:     &Error{Name: "example.org", Kind: NotFound, Detail: "domain does not exist (NXDOMAIN from 127.0.0.1:5353)"},
			message: "dns: example.org: domain does not exist (NXDOMAIN from 127.0.0.1:5353)",
			reply:   "550 5.1.2 Cannot resolve example.org: domain does not exist (NXDOMAIN from 127.0.0.1:5353)",
		},
		{
			err:     &Error{Name: "example.org", Kind: NullMX, Detail: "domain does not accept mail (null MX, RFC 7505)"},
			message: "dns: example.org: domain does not accept mail (null MX, RFC 7505)",
			reply:   "556 5.1.10 example.org does not accept mail (null MX, RFC 7505)",
		},
		{
			err:       &Error{Name: "example.org", Kind: Temporary, Detail: "MX query failed: SERVFAIL from 127.0.0.1:5353"},
			temporary: true,
			message:   "dns: example.org: MX query failed: SERVFAIL from 127.0.0.1:5353",
			reply:     "451 4.4.3 example.org: DNS lookup failed temporarily: MX query failed: SERVFAIL from 127.0.0.1:5353",
		},
	}
	for _, tt := range tests {
		t.Run(tt.err.Kind.String(), func(t *testing.T) {
			if got := tt.err.Error(); got != tt.message {
				t.Errorf("Error() = %q, want %q", got, tt.message)
			}
			if got := tt.err.Temporary(); got != tt.temporary {
				t.Errorf("Temporary() = %v, want %v", got, tt.temporary)
			}
			if got := tt.err.Reply().String(); got != tt.reply {
				t.Errorf("Reply() = %q, want %q", got, tt.reply)
			}
			var de *Error
			if wrapped := fmt.Errorf("deliver: %w", tt.err); !errors.As(wrapped, &de) || de != tt.err {
				t.Error("errors.As does not find the *Error")
			}
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	err := canceled(key{"example.org", 15}, context.DeadlineExceeded)
	if !errors.Is(err, context.DeadlineExceeded) || !err.Temporary() {
		t.Errorf("canceled error %v does not wrap the context error", err)
	}
	if r := reply.From(fmt.Errorf("deliver: %w", err)); r == nil || r.Code != 451 {
		t.Errorf("reply.From(%v) = %v, want the 451 reply", err, r)
	}
}
