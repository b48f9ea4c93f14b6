package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	mdns "github.com/miekg/dns"
)

// ednsSize is the UDP payload size advertised with EDNS0, the value DNS Flag
// Day 2020 settled on to avoid IP fragmentation.
const ednsSize = 1232

// resolve asks the servers about k until one gives a usable answer: NOERROR
// or NXDOMAIN for the question that was asked. It starts with the server that
// answered last and moves on to the next one on any failure.
func (r *Resolver) resolve(ctx context.Context, k key) (*answer, error) {
	servers := r.opts.Servers
	first := int(r.preferred.Load())
	failures := make([]string, len(servers)) // the last failure of each server
	for range r.opts.Attempts {
		for i := range servers {
			idx := (first + i) % len(servers)
			reply, err := r.exchange(ctx, servers[idx], k)
			if ctx.Err() != nil {
				return nil, canceled(k, ctx.Err())
			}
			if err != nil {
				failures[idx] = err.Error()
				continue
			}
			r.preferred.Store(int32(idx))
			return parseAnswer(reply, k, servers[idx]), nil
		}
	}
	var causes []string
	for _, f := range failures {
		if f != "" {
			causes = append(causes, f)
		}
	}
	return nil, &Error{
		Name:   k.name,
		Kind:   Temporary,
		Detail: mdns.TypeToString[k.qtype] + " query failed: " + strings.Join(causes, "; "),
	}
}

// canceled is the error of a query its callers gave up on.
func canceled(k key, err error) *Error {
	return &Error{
		Name:   k.name,
		Kind:   Temporary,
		Detail: mdns.TypeToString[k.qtype] + " query abandoned: " + err.Error(),
		err:    err,
	}
}

// exchange makes one attempt at k on server: over UDP, then over TCP if the
// UDP reply is truncated or cut short, and once more without EDNS0 if the
// server rejects it. It returns a reply only if its rcode is NOERROR or
// NXDOMAIN; every other outcome is an error naming the server.
func (r *Resolver) exchange(ctx context.Context, server string, k key) (*mdns.Msg, error) {
	q := new(mdns.Msg)
	q.SetQuestion(mdns.Fqdn(k.name), k.qtype)
	q.SetEdns0(ednsSize, false)

	reply, err := r.roundTrip(ctx, r.udp, q, server)
	if err == nil && reply.Rcode == mdns.RcodeFormatError && reply.IsEdns0() == nil {
		q.Extra = nil // a server that predates EDNS0 (RFC 6891 section 7)
		reply, err = r.roundTrip(ctx, r.udp, q, server)
	}
	var malformed *mdns.Error
	if err == nil && reply.Truncated || errors.As(err, &malformed) {
		udpFailure := "was truncated"
		if err != nil {
			udpFailure = "was malformed (" + err.Error() + ")"
		}
		reply, err = r.roundTrip(ctx, r.tcp, q, server)
		if err != nil {
			return nil, fmt.Errorf("UDP reply from %s %s and TCP failed: %w", server, udpFailure, err)
		}
	}
	if err != nil {
		return nil, err
	}
	switch reply.Rcode {
	case mdns.RcodeSuccess, mdns.RcodeNameError:
		return reply, nil
	default:
		return nil, fmt.Errorf("%s from %s", rcodeName(reply.Rcode), server)
	}
}

// roundTrip sends q to server with client within one attempt's timeout and
// returns a reply that matches q. Cancelling ctx ends the attempt at once.
func (r *Resolver) roundTrip(ctx context.Context, client *mdns.Client, q *mdns.Msg, server string) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	conn, err := client.DialContext(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s over %s: %w", server, client.Net, err)
	}
	defer conn.Close()
	// The client only honours deadlines; closing the connection also
	// honours cancellation.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	reply, _, err := client.ExchangeWithConnContext(ctx, q, conn)
	if err != nil {
		var ne net.Error
		if ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("no reply from %s over %s within %v", server, client.Net, r.opts.Timeout)
		}
		var malformed *mdns.Error
		if errors.As(err, &malformed) {
			return nil, err
		}
		return nil, fmt.Errorf("%s over %s: %w", server, client.Net, err)
	}
	if err := matches(q, reply); err != nil {
		return nil, fmt.Errorf("reply from %s over %s ignored: %w", server, client.Net, err)
	}
	return reply, nil
}

// matches checks that reply answers the question of q.
func matches(q, reply *mdns.Msg) error {
	if !reply.Response || reply.Opcode != q.Opcode {
		return errors.New("not a response to a query")
	}
	if len(reply.Question) == 0 && reply.Rcode != mdns.RcodeSuccess && reply.Rcode != mdns.RcodeNameError {
		return nil // an error reply may leave the question out
	}
	if len(reply.Question) != 1 {
		return fmt.Errorf("%d questions in reply", len(reply.Question))
	}
	want, got := q.Question[0], reply.Question[0]
	if got.Qtype != want.Qtype || got.Qclass != want.Qclass || !strings.EqualFold(got.Name, want.Name) {
		return fmt.Errorf("reply is for %s, query was for %s", got.String(), want.String())
	}
	return nil
}

func rcodeName(rcode int) string {
	if s, ok := mdns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("rcode %d", rcode)
}
