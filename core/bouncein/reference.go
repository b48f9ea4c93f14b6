package bouncein

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"corriere/core/bounce"
	"corriere/core/event"
	"corriere/core/suppress"
	"corriere/core/verp"
)

// ReferenceOpener opens the reference headers (verp.RefHeader) the queue
// seals on outgoing mail; *verp.Signer implements it. When Options.VERP
// implements it too, a feedback report that quotes no VERP address of ours
// is attributed through the reference header of the message it quotes.
type ReferenceOpener interface {
	Open(value string) (verp.Reference, error)
}

// maxRefLines bounds the continuation lines of one quoted reference field.
const maxRefLines = 4

// quotedReference returns the first reference header a report quotes.
// The queue puts its field above every other field of a message, so the
// first one is the platform's; one the submitter wrote lies below it, and
// rewrite.lua removes those anyway. found is false when the report quotes
// none or the listener cannot open references; err is verp.ErrForged or
// verp.ErrNotReference when the first one does not verify.
func (s *Server) quotedReference(raw []byte) (ref verp.Reference, found bool, err error) {
	o, ok := s.opts.VERP.(ReferenceOpener)
	if !ok {
		return verp.Reference{}, false, nil
	}
	var value []byte
	in := false
	n := 0
	for line := range bytes.Lines(raw) {
		if in {
			// A relay may fold the field after its colon.
			if n < maxRefLines && len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
				value = append(value, bytes.TrimSpace(line)...)
				n++
				continue
			}
			break
		}
		name, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte(verp.RefHeader)) {
			value, in = append(value, bytes.TrimSpace(v)...), true
		}
	}
	if !in {
		return verp.Reference{}, false, nil
	}
	ref, err = o.Open(string(value))
	return ref, true, err
}

// handleReference acts on a feedback report attributed through the
// reference header it quotes: the complaint counts for the tenant, the
// source IP and the provider the reference names, and the recipient, when
// the reference names one, is suppressed for the tenant. Anything but a
// feedback report is ignored: bounces come to VERP addresses.
func (s *Server) handleReference(from, peer string, raw []byte, ref verp.Reference, results []bounce.Result) error {
	r, ok := pick(results, ref.Rcpt)
	if !ok || r.Report.Kind != bounce.KindARF {
		s.ignored.Add(1)
		s.log.Info("message quoting a reference is not a feedback report; ignored", "msg_id", ref.MsgID, "from", from)
		return nil
	}
	seen := ref.MsgID + "\x00" + strconv.Itoa(ref.Index) + "\x00" + ref.Rcpt
	if ref.Rcpt == "" {
		// The transaction had several recipients: each of them who
		// complains sends a report of their own, and each counts; the
		// same report sent again does not.
		sum := sha256.Sum256(raw)
		seen += "\x00" + hex.EncodeToString(sum[:12])
	}
	if !s.seenRefs.add(seen) {
		s.ignored.Add(1)
		s.log.Info("complaint through a reference counted already; ignored", "msg_id", ref.MsgID, "tenant", ref.Tenant, "from", from)
		return nil
	}
	reason := "feedback report (" + orDash(r.Report.FeedbackType) + ") from " + peerName(from, peer) + ", attributed through " + verp.RefHeader
	e := &event.Event{Type: event.Complained, MsgID: ref.MsgID, Recipient: ref.Rcpt, Tenant: ref.Tenant,
		Class: ref.Class, Source: ref.Source, Provider: ref.Provider, Category: event.CategoryFeedback, MX: r.Report.RemoteMTA, Reason: reason}
	if ref.Rcpt == "" {
		// The message went to several recipients in one transaction: the
		// complaint counts, but whom to suppress is unknown.
		e.Reason += "; the recipient is unknown (the message had several in one transaction)"
	} else if s.opts.Suppress != nil {
		added, err := s.opts.Suppress.AddIfAbsent(suppress.Entry{
			Tenant: ref.Tenant, Address: ref.Rcpt, Category: event.CategoryFeedback, Source: suppress.SourceComplaint,
			Reason: reason, Added: s.opts.Now(), MsgID: ref.MsgID,
		})
		if err != nil {
			return fmt.Errorf("bouncein: suppress %s for %q: %w", ref.Rcpt, ref.Tenant, err)
		}
		if !added {
			// The same report again, or another about an address already
			// suppressed: counted once.
			s.ignored.Add(1)
			s.log.Info("complaint about a recipient suppressed already; ignored", "msg_id", ref.MsgID, "tenant", ref.Tenant, "from", from)
			return nil
		}
	}
	s.complaints.Add(1)
	s.referenced.Add(1)
	s.emit(e)
	s.log.Info("complaint received, attributed through the reference header", "msg_id", ref.MsgID, "tenant", ref.Tenant,
		"source", ref.Source, "provider", ref.Provider, "recipient_known", ref.Rcpt != "", "feedback_type", r.Report.FeedbackType)
	return nil
}

// maxSeenRefs bounds the references remembered by seenRefs.
const maxSeenRefs = 100_000

// seenRefs remembers the references whose complaint was counted, so that
// the same report sent again (a provider's retry, or someone replaying it
// to inflate a tenant's complaint rate) counts once. It is bounded and
// forgets the oldest first; across restarts, the suppression list is what
// keeps a report about a known recipient from counting twice.
type seenRefs struct {
	mu    sync.Mutex
	set   map[string]bool
	order []string
}

// add records key and reports whether it was new.
func (s *seenRefs) add(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set[key] {
		return false
	}
	if s.set == nil {
		s.set = map[string]bool{}
	}
	if len(s.order) == maxSeenRefs {
		delete(s.set, s.order[0])
		s.order = s.order[1:]
	}
	s.set[key] = true
	s.order = append(s.order, key)
	return true
}

// refPeer fills the source and provider of the VERP recipients that the
// reference names too, so their events count where the message left from.
func refPeer(refs []addressed, ref verp.Reference) (covered bool) {
	for i := range refs {
		if refs[i].ref.MsgID == strings.ToLower(ref.MsgID) && refs[i].ref.Index == ref.Index {
			refs[i].source, refs[i].provider = ref.Source, ref.Provider
			covered = true
		}
	}
	return covered
}
