package bouncein

import (
	"fmt"
	"strings"

	"corriere/core/event"
	"corriere/core/message"
)

// isPostmaster reports whether to is the postmaster of a domain this
// listener serves: "postmaster" alone, or postmaster@ the host name, the
// domain of a feedback-loop address or a domain Options.Domains accepts.
// RFC 5321 section 4.5.1 requires a server to take mail for postmaster of
// every domain it receives mail for.
func (s *Server) isPostmaster(to string) bool {
	local, domain, found := strings.Cut(to, "@")
	if !strings.EqualFold(local, "postmaster") {
		return false
	}
	if !found {
		return true
	}
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	return s.domains[domain] || (s.opts.Domains != nil && s.opts.Domains(domain))
}

// postmasterMail takes a message sent to postmaster: it records an event
// and, when Options.Postmaster names an operator's address, queues the
// message there unchanged but for a Received field, from the null sender so
// that a failure there never returns to whoever wrote to postmaster.
func (s *Server) postmasterMail(from, peer, helo, rcpt string, raw []byte) error {
	e := &event.Event{Type: event.Received, Recipient: rcpt, Sender: from, Size: len(raw),
		Reason: "mail to postmaster from " + peerName(from, peer) + "; kept in the event log only (no postmaster address configured)"}
	if s.opts.Postmaster == "" {
		s.emit(e)
		s.log.Info("mail to postmaster; no postmaster address configured, logged only", "rcpt", rcpt, "from", from, "peer", peer, "size", len(raw))
		return nil
	}
	now := s.opts.Now()
	trace := fmt.Sprintf("Received: from %s ([%s])\r\n\tby %s (Corriere bounce listener) for <%s>;\r\n\t%s\r\n",
		orDash(helo), peer, s.opts.Hostname, rcpt, now.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	h, body, err := message.Parse(append([]byte(trace), raw...))
	if err != nil {
		// Not a message one can forward as it is: keep the event only.
		e.Reason = "mail to postmaster from " + peerName(from, peer) + " with a malformed header; not forwarded"
		s.emit(e)
		s.log.Warn("mail to postmaster with a malformed header; not forwarded", "rcpt", rcpt, "from", from, "peer", peer, "err", err)
		return nil
	}
	m := &message.Message{
		Envelope: message.Envelope{Recipients: []message.Recipient{{Addr: s.opts.Postmaster, Notify: message.NotifyNever}}},
		Header:   h, Body: body, Class: message.Transactional, Received: now,
	}
	b := s.opts.Spool.NewBatch()
	defer b.Close()
	meta, entries, err := b.Put(m, now)
	if err != nil {
		return fmt.Errorf("bouncein: spool mail to postmaster: %w", err)
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("bouncein: spool mail to postmaster: %w", err)
	}
	s.opts.Queue.Add(meta, entries)
	e.MsgID = meta.ID
	e.Reason = "mail to postmaster from " + peerName(from, peer) + "; forwarded to <" + s.opts.Postmaster + ">"
	s.emit(e)
	s.log.Info("mail to postmaster forwarded", "rcpt", rcpt, "from", from, "peer", peer, "to", s.opts.Postmaster, "msg_id", meta.ID)
	return nil
}
