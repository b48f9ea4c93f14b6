package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/spool"
	"corriere/core/tenant"
)

// envelope is what handling a message needs of its transaction, whether the
// message came over SMTP (a session) or over HTTP (Submit): both take the
// same path from here, through the same checks, policy, stages and spool.
type envelope struct {
	tenant *tenant.Tenant
	client netip.Addr
	// helo is the client's EHLO name; "" over HTTP.
	helo string
	// proto is the protocol keyword of the Received field (RFC 3848).
	proto   string
	from    string
	utf8    bool
	envID   string
	ret     message.Ret
	rcpts   []message.Recipient
	dropped []droppedRcpt
}

// accept checks, classifies, rewrites, signs and spools raw for env, and
// returns its queue id once it is synced to disk. A refusal is an
// *smtp.SMTPError, counted, logged and emitted as a rejected event.
func (s *Server) accept(env *envelope, raw []byte) (string, error) {
	m, id, err := s.prepare(env, raw)
	if err != nil || m == nil {
		return id, err
	}
	return s.store(env, m)
}

// prepare is the part of accept before the spool: it returns the message
// ready to store, or, when every recipient was dropped, no message and
// the id its acknowledgement names.
func (s *Server) prepare(env *envelope, raw []byte) (*message.Message, string, error) {
	now := s.opts.Now()
	h, body, err := message.Parse(raw)
	if err != nil {
		s.log.Info("malformed header section", "client", env.client.String(), "err", err)
		return nil, "", s.refuse(env.client, env.from, "bad_header", errBadHeader)
	}
	if len(h.Values("Received")) > maxReceivedCount {
		return nil, "", s.refuse(env.client, env.from, "loop", errLoop)
	}
	if err := s.checkAuthor(env, &h); err != nil {
		return nil, "", err
	}
	if len(env.rcpts) == 0 {
		// Every recipient was dropped: acknowledge, spool nothing.
		id := spool.NewID()
		s.emitDropped(env, id, nil)
		s.log.Info("message accepted and dropped: every recipient was dropped", "msg_id", id,
			"rcpts", len(env.dropped), "client", env.client.String())
		return nil, id, nil
	}
	id := spool.NewID()
	if added := completeHeader(&h, id, s.opts.Hostname, now); len(added) > 0 {
		s.log.Debug("added missing header fields", "msg_id", id, "fields", added)
	}
	m := &message.Message{
		ID:       id,
		Header:   h,
		Body:     body,
		ClientIP: env.client.String(),
		Helo:     env.helo,
		Received: now,
	}
	m.Sender = env.from
	m.Recipients = env.rcpts
	m.UTF8 = env.utf8
	m.EnvID = env.envID
	m.Ret = env.ret
	if env.tenant != nil {
		m.Tenant = env.tenant.Name
		m.AuthUser = env.tenant.Name
	}
	s.addTrace(env, m, now)

	ctx, cancel := context.WithTimeout(context.Background(), s.opts.PolicyTimeout)
	defer cancel()
	c, err := s.opts.Policy.Classify(ctx, m)
	if err != nil {
		s.log.Error("classify hook failed; answering 451", "msg_id", m.ID, "err", err)
		s.count("policy_error")
		return nil, "", errTempPolicy
	}
	m.Tenant, m.Class, m.Campaign, m.Priority = c.Tenant, c.Class, c.Campaign, c.Priority
	if _, ok := message.ParseClass(string(m.Class)); !ok {
		s.log.Warn("classify returned an unknown class; using transactional", "msg_id", m.ID, "class", m.Class)
		m.Class = message.Transactional
	}
	if err := s.opts.Policy.Rewrite(ctx, m); err != nil {
		s.log.Error("rewrite hook failed; answering 451", "msg_id", m.ID, "err", err)
		s.count("policy_error")
		return nil, "", errTempPolicy
	}
	for _, st := range s.opts.Stages {
		if err := st.Process(ctx, m); err != nil {
			s.log.Error("ingest stage failed; answering 451", "msg_id", m.ID, "stage", fmt.Sprintf("%T", st), "err", err)
			s.count("stage_error")
			return nil, "", errTempPolicy
		}
	}
	return m, m.ID, nil
}

// store spools m, synced, hands it to the queue and emits its events.
func (s *Server) store(env *envelope, m *message.Message) (string, error) {
	meta, entries, err := s.opts.Spool.Put(m, m.Received)
	if errors.Is(err, spool.ErrNoSpace) {
		return "", s.refuse(env.client, env.from, "storage_full", errStorageFull, "msg_id", m.ID)
	}
	if err != nil {
		s.log.Error("cannot spool message; answering 451", "msg_id", m.ID, "err", err)
		s.count("storage_error")
		return "", errTempStorage
	}
	s.opts.Queue.Add(meta, entries)
	s.opts.Events.Emit(&event.Event{
		Type: event.Received, MsgID: m.ID, Sender: m.Sender, Tenant: m.Tenant,
		Class: string(m.Class), Campaign: m.Campaign, Size: meta.Size, Recipients: len(entries),
	})
	s.emitDropped(env, m.ID, m)
	s.log.Debug("message accepted", "msg_id", m.ID, "tenant", m.Tenant, "class", m.Class, "rcpts", len(entries), "size", meta.Size)
	return m.ID, nil
}

// roomForMail refuses a new transaction while the spool is under its
// free-space reserve.
func (s *Server) roomForMail(client netip.Addr, from string) error {
	if err := s.opts.Spool.Room(); err != nil {
		return s.refuse(client, from, "storage_full", errStorageFull)
	}
	return nil
}

// emitDropped emits an event.Suppressed for each dropped recipient of the
// accepted message id; m, when spooled, gives class and campaign.
func (s *Server) emitDropped(env *envelope, id string, m *message.Message) {
	for _, d := range env.dropped {
		e := &event.Event{Type: event.Suppressed, MsgID: id, Recipient: d.addr, Sender: env.from, Tenant: d.tenant,
			Category: d.drop.Category, Reason: d.drop.Reason}
		if m != nil {
			e.Class, e.Campaign = string(m.Class), m.Campaign
		}
		s.opts.Events.Emit(e)
	}
}

// addTrace prepends the Received field (RFC 5321 section 4.4), with the
// protocol keyword of RFC 3848; a message from HTTP has no EHLO name.
func (s *Server) addTrace(env *envelope, m *message.Message, now time.Time) {
	var b strings.Builder
	if env.helo != "" {
		fmt.Fprintf(&b, "from %s ([%s])", sanitize(env.helo), env.client)
	} else {
		fmt.Fprintf(&b, "from [%s]", env.client)
	}
	fmt.Fprintf(&b, "\r\n\tby %s (Corriere) with %s id %s", s.opts.Hostname, env.proto, m.ID)
	if len(m.Recipients) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", m.Recipients[0].Addr)
	}
	fmt.Fprintf(&b, ";\r\n\t%s", now.Format(time.RFC1123Z))
	// AddRaw puts the field on top of the header, where trace fields go.
	m.Header.AddRaw([]byte("Received: " + b.String() + "\r\n"))
}

// refuse counts, logs and emits a refusal, and returns err.
func (s *Server) refuse(client netip.Addr, from, reason string, err *smtp.SMTPError, kv ...any) error {
	s.count(reason)
	text := fmt.Sprintf("%d %d.%d.%d %s", err.Code, err.EnhancedCode[0], err.EnhancedCode[1], err.EnhancedCode[2], err.Message)
	args := append([]any{"client", client.String(), "reason", reason, "reply", text}, kv...)
	s.log.Info("refused", args...)
	s.opts.Events.Emit(&event.Event{Type: event.Rejected, Sender: from, Reason: reason, Reply: text})
	return err
}
