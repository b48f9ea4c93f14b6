package bounce

import (
	"strings"

	"github.com/emersion/go-message"

	"corriere/core/policy"
)

// parseText reads a bounce written in prose (qmail, Exim, old Sendmail,
// Exchange NDRs, webmail providers...): it finds the failed recipients and,
// for each, the lines that explain the failure. It only looks at messages
// that present themselves as bounces.
func parseText(e *entity) []policy.BounceReport {
	if !looksLikeBounce(e) {
		return nil
	}
	errText := e.errText()
	wanted := failedRecipientsHeader(e.header)
	blocks := recipientBlocks(errText, e.skipper(), wanted)
	action := "failed"
	if isDelayNotice(headerText(e.header, "Subject"), errText) {
		action = "delayed"
	}
	var general string
	var out []policy.BounceReport
	for _, b := range blocks {
		diag := joinDiagnostic(b.lines)
		if diag == "" {
			if general == "" {
				general = generalDiagnostic(errText)
			}
			diag = general
		}
		if len(blocks) == 1 && commandOf(diag) == "" {
			// The one failure: the command may be named elsewhere in the
			// text (m-FILTER puts it under its own heading).
			if c := commandPhrase(errText); c != "" {
				diag += " (" + c + ")"
			}
		}
		out = append(out, policy.BounceReport{Recipient: b.addr, Action: action, Diagnostic: diag})
	}
	return out
}

// parseTextUnnamed reads a bounce whose prose names no recipient: the
// returned message still says whom it was for.
func parseTextUnnamed(e *entity) []policy.BounceReport {
	if !looksLikeBounce(e) {
		return nil
	}
	to := e.originalRecipient()
	if to == "" {
		return nil
	}
	errText := e.errText()
	action := "failed"
	if isDelayNotice(headerText(e.header, "Subject"), errText) {
		action = "delayed"
	}
	return []policy.BounceReport{{Recipient: to, Action: action, Diagnostic: generalDiagnostic(errText)}}
}

// textBlock is the part of a bounce's prose that concerns one recipient.
type textBlock struct {
	addr  string
	lines []string
}

// humanBlocks are the recipient blocks of a DSN's human-readable part.
type humanBlocks []textBlock

// find returns the diagnostic text of addr's block, or "".
func (h humanBlocks) find(addr string) string {
	for _, b := range h {
		if sameAddress(b.addr, addr) {
			return joinDiagnostic(b.lines)
		}
	}
	return ""
}

// roleLocals are local parts of the addresses bounce software writes from
// or asks to be contacted at; they are never the failed recipient.
var roleLocals = map[string]bool{
	"mailer-daemon": true, "postmaster": true, "mail-daemon": true, "mailerdaemon": true,
	"maildaemon": true, "mmdf": true, "double-bounce": true,
}

// skipper returns a predicate for addresses that cannot be a failed
// recipient: the bounce's own sender and addressee, and role addresses.
func (e *entity) skipper() func(string) bool {
	own := map[string]bool{}
	for _, k := range []string{"From", "To", "Sender", "Reply-To", "Return-Path"} {
		for _, a := range headerAddresses(e.header, k) {
			own[strings.ToLower(a)] = true
		}
	}
	return func(addr string) bool {
		lower := strings.ToLower(addr)
		if own[lower] {
			return true
		}
		local, _, _ := strings.Cut(lower, "@")
		return roleLocals[local]
	}
}

// failedRecipientsHeader returns the addresses of X-Failed-Recipients
// (Exim, Gmail and others), which list the failures exactly.
func failedRecipientsHeader(h message.Header) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range h.Values("X-Failed-Recipients") {
		for _, a := range findAddresses(v) {
			if len(out) >= maxRecipients {
				return out
			}
			if k := strings.ToLower(a.addr); !seen[k] {
				seen[k] = true
				out = append(out, a.addr)
			}
		}
	}
	return out
}

// Bounds on the addresses looked at in one bounce.
const (
	maxRecipients  = 500  // failed recipients reported
	maxOccurrences = 2000 // addresses considered in the prose
)

// occurrence is one address seen in the error text.
type occurrence struct {
	addr   string
	line   int
	strong bool // the line starts with the address: a recipient list entry
}

// recipientBlocks finds the failed recipients in the error text of a
// bounce and the lines that belong to each. When wanted is not empty it is
// the list of recipients, and only their blocks are looked for.
func recipientBlocks(errText string, skip func(string) bool, wanted []string) humanBlocks {
	lines := strings.Split(errText, "\n")
	occ := occurrences(lines, skip)
	if len(occ) == 0 && len(wanted) == 0 {
		// The bounce names no one else: then it may well be about its own
		// addressee, or a role address.
		occ = occurrences(lines, func(string) bool { return false })
	}
	type start struct {
		addr   string
		line   int
		strong bool
	}
	var starts []start
	seen := map[string]bool{}
	add := func(addr string, line int, strong bool) {
		k := strings.ToLower(addr)
		if !seen[k] && len(starts) < maxRecipients {
			seen[k] = true
			starts = append(starts, start{addr, line, strong})
		}
	}
	if len(wanted) > 0 {
		for _, w := range wanted {
			line, strong := -1, false
			for _, o := range occ {
				if sameAddress(o.addr, w) && (o.strong || line < 0) {
					line, strong = o.line, o.strong
					if o.strong {
						break
					}
				}
			}
			add(w, line, strong)
		}
	} else {
		anyStrong := false
		for _, o := range occ {
			anyStrong = anyStrong || o.strong
		}
		for _, o := range occ {
			if o.strong || !anyStrong {
				add(o.addr, o.line, o.strong)
			}
		}
	}
	// Block boundaries: every start line ends the block before it.
	isStart := map[int]bool{}
	for _, s := range starts {
		if s.line >= 0 {
			isStart[s.line] = true
		}
	}
	out := make(humanBlocks, 0, len(starts))
	for _, s := range starts {
		b := textBlock{addr: s.addr}
		switch {
		case s.line < 0:
		case !s.strong && hasReplyCode(lines[s.line]):
			// A result line that names the recipient in passing
			// ("554 <user@example.org>... Host unknown") says it all,
			// with the dialogue that led to it in a Sendmail transcript
			// (">>> MAIL From:", "<<< 550 ..."); the other lines around
			// it belong to other recipients.
			b.lines = append(transcriptBefore(lines, s.line), lines[s.line])
		default:
			b.lines = blockLines(lines, s.line, isStart)
		}
		if !anyReplyCode(b.lines) {
			// Exchange explains in words first and gives the code under
			// "Diagnostic information for administrators".
			b.lines = append(b.lines, codeLinesFor(lines, occ, s.addr, s.line)...)
		}
		out = append(out, b)
	}
	return out
}

// occurrences lists the addresses of lines that skip does not exclude and
// that are not quoted as a sender.
func occurrences(lines []string, skip func(string) bool) []occurrence {
	var occ []occurrence
	for i, line := range lines {
		if len(occ) >= maxOccurrences {
			break
		}
		for _, m := range findAddresses(line) {
			if skip(m.addr) || senderContext(line[:m.start]) {
				continue
			}
			strong := recipientLine(line, m)
			if strong && i > 0 && senderContext(lastNonEmpty(lines[:i])) && strings.TrimSpace(line[:m.start]) == "" {
				continue
			}
			occ = append(occ, occurrence{addr: m.addr, line: i, strong: strong})
		}
	}
	return occ
}

// anyReplyCode reports whether one of lines quotes an SMTP reply or status.
func anyReplyCode(lines []string) bool {
	for _, l := range lines {
		if hasReplyCode(l) {
			return true
		}
	}
	return false
}

// codeLinesFor returns the lines elsewhere in the text that give addr's
// reply code: a line naming addr with a code, or the line after a line
// that is only addr.
func codeLinesFor(lines []string, occ []occurrence, addr string, skip int) []string {
	var out []string
	for _, o := range occ {
		if o.line == skip || !sameAddress(o.addr, addr) || len(out) >= 3 {
			continue
		}
		if hasReplyCode(lines[o.line]) {
			out = append(out, lines[o.line])
			continue
		}
		if addressLineRest(lines[o.line]) == "" {
			for j := o.line + 1; j < len(lines) && j <= o.line+2; j++ {
				if hasReplyCode(lines[j]) {
					out = append(out, lines[j])
					break
				}
			}
		}
	}
	return out
}

// transcriptBefore returns the SMTP dialogue lines (">>> command",
// "<<< reply") right above lines[i].
func transcriptBefore(lines []string, i int) []string {
	j := i
	for j > 0 && i-j < 10 {
		l := strings.TrimSpace(lines[j-1])
		if !strings.HasPrefix(l, ">>>") && !strings.HasPrefix(l, "<<<") {
			break
		}
		j--
	}
	return append([]string(nil), lines[j:i]...)
}

// blockLines collects the lines of the block starting at lines[from]: up to
// the next block, or the end of the paragraph once it says something (a
// block that is only an address, or a label such as "because:", runs on
// into the next paragraphs).
func blockLines(lines []string, from int, isStart map[int]bool) []string {
	var out []string
	if rest := addressLineRest(lines[from]); rest != "" {
		out = append(out, lines[from])
	}
	paragraphs := 0
	for i := from + 1; i < len(lines) && len(out) < 60; i++ {
		if isStart[i] {
			break
		}
		l := strings.TrimSpace(lines[i])
		if l == "" {
			// Run on while the block says nothing yet: it is empty, a
			// label, or only the sentence that named the recipient.
			introOnly := len(out) == 1 && paragraphs == 0 && out[0] == lines[from] && !hasReplyCode(out[0])
			if len(out) == 0 || weakContent(out) || introOnly {
				paragraphs++
				if paragraphs > 3 {
					break
				}
				continue
			}
			if !anyReplyCode(out) {
				// Words without a code ("Google tried to deliver your
				// message, but..."): the code may follow in the next
				// paragraph ("The error that the other server returned
				// was: 550 5.2.2 ...").
				out = append(out, nextParagraphWithCode(lines, i+1, isStart)...)
			}
			break
		}
		out = append(out, lines[i])
	}
	return out
}

// hasReplyCode reports whether a line quotes an SMTP reply or status.
func hasReplyCode(line string) bool {
	code, _ := findReplyCode(line)
	return code > 0 || len(findStatuses(line)) > 0
}

// nextParagraphWithCode returns the paragraph starting at lines[from] when
// it quotes an SMTP reply, or nothing.
func nextParagraphWithCode(lines []string, from int, isStart map[int]bool) []string {
	for from < len(lines) && strings.TrimSpace(lines[from]) == "" {
		from++
	}
	var para []string
	for i := from; i < len(lines) && len(para) < 20; i++ {
		if isStart[i] || strings.TrimSpace(lines[i]) == "" {
			break
		}
		para = append(para, lines[i])
	}
	if anyReplyCode(para) {
		return para
	}
	return nil
}

// weakContent reports whether the lines gathered so far are too thin to be
// a diagnostic: few letters, or a label that announces what follows.
func weakContent(lines []string) bool {
	last := strings.TrimSpace(lines[len(lines)-1])
	if strings.HasSuffix(last, ":") {
		return true
	}
	letters := 0
	for _, l := range lines {
		if isHeading(l) {
			// "----- Non-delivered information -----" announces the
			// paragraph that follows.
			continue
		}
		for _, c := range l {
			if c > 127 || isLetter(byte(c)) {
				letters++
			}
		}
	}
	return letters < 20
}

// isHeading reports whether a line is a section heading drawn with dashes,
// stars or equal signs on both sides.
func isHeading(line string) bool {
	l := strings.TrimSpace(line)
	return len(l) > 4 && strings.ContainsRune("-=*", rune(l[0])) && l[len(l)-1] == l[0] && l[1] == l[0]
}

// recipientLabels are the words that may precede an address on a line
// that lists a failed recipient.
var recipientLabels = []string{
	"rcpt to:", "recipient:", "recipients:", "recipient address:", "failed recipient:",
	"original-recipient:", "final-recipient:", "rfc822;", "address:", "addresses:", "e-mail:",
	"email:", "addressee:", "mailbox:", "user:", "destinataire:", "empfänger:", "宛先:", "宛先：",
	"*", "-", "•", "o",
}

// recipientLine reports whether the address m starts the line, possibly
// after a label or bullet: the way bounces list the recipients that failed.
func recipientLine(line string, m addrMatch) bool {
	prefix := strings.ToLower(strings.TrimSpace(line[:m.start]))
	prefix = strings.TrimRight(prefix, "<\"'( \t")
	for changed := true; changed && prefix != ""; {
		changed = false
		for _, l := range recipientLabels {
			if strings.HasSuffix(prefix, l) {
				prefix = strings.TrimRight(strings.TrimSuffix(prefix, l), "<\"'( \t")
				changed = true
			}
		}
	}
	return prefix == ""
}

// addressLineRest returns what a line says besides an address that starts
// it: "" for lines such as "<user@example.org>:".
func addressLineRest(line string) string {
	ms := findAddresses(line)
	if len(ms) == 0 {
		return strings.TrimSpace(line)
	}
	rest := line[:ms[0].start] + line[ms[0].end:]
	// Leading ">" is kept: ">>> RCPT To:<user@example.org>" is a
	// transcript line that names the command.
	rest = strings.TrimRight(strings.TrimLeft(rest, " \t<\"'("), " \t<>\"'():;,.")
	lower := strings.ToLower(rest)
	for _, l := range recipientLabels {
		if lower == l || lower == strings.TrimSuffix(l, ":") {
			return ""
		}
	}
	return rest
}

// senderContext reports whether the text before an address says it is the
// sender (or a message identifier), not a recipient.
func senderContext(before string) bool {
	b := strings.ToLower(before)
	if len(b) > 40 {
		b = b[len(b)-40:]
	}
	b = strings.TrimRight(b, " \t<\"'(")
	if strings.HasSuffix(b, "generated from") {
		// Exim: "(generated from user@example.org)" names the address an
		// alias expanded from, a recipient.
		return false
	}
	for _, s := range []string{"mail from:", "mail from", "envelope-from", "sender:", "sender", "from:", "from", "return-path:", "message-id:", "reply-to:", "sent by", "smtp.mailfrom=", "header.from=", "originated from"} {
		if strings.HasSuffix(b, s) {
			return true
		}
	}
	return false
}

func lastNonEmpty(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}

// generalDiagnostic is the explanation of a bounce that does not tie it
// to a recipient: the error text without address-only lines.
func generalDiagnostic(errText string) string {
	var keep []string
	for _, l := range strings.Split(errText, "\n") {
		if addressLineRest(l) == "" || isBoilerplate(l) {
			continue
		}
		keep = append(keep, l)
	}
	return joinDiagnostic(keep)
}

// boilerplate are the sentences mail systems wrap every bounce in. They say
// nothing about the failure, and some of their words ("could not be
// delivered", "permanent error") would mislead the rules.
var boilerplate = []string{
	"this is the mail system at host", "i'm sorry to have to inform you", "could not be delivered to one or more",
	"be delivered to one or more recipients", "it's attached below", "for further assistance, please",
	"please include this problem report", "delete your own text from the attached", "the mail system",
	"delivery report unavailable", "this message was created automatically", "a message that you sent could not",
	"could not be delivered to one or more of its", "recipients. this is a permanent error",
	"this is a permanent error", "the following address(es) failed", "address(es) failed:",
	"this is the qmail-send program", "i'm afraid i wasn't able to deliver", "sorry it didn't work out",
	"i've given up", "the original message was received at", "the following addresses had",
	"transcript of session follows", "this is a mime-encapsulated message", "this is a multi-part message",
}

func isBoilerplate(line string) bool {
	l := strings.ToLower(strings.TrimSpace(line))
	for _, b := range boilerplate {
		if strings.HasPrefix(l, b) || (len(l) < 3*len(b) && strings.Contains(l, b)) {
			return true
		}
	}
	return false
}

// originalRecipient returns the To address of the returned message.
func (e *entity) originalRecipient() string {
	orig := e.original()
	if orig == nil {
		orig = []byte(e.quotedOriginal())
	}
	if len(orig) == 0 {
		return ""
	}
	h, _ := splitHeader(normalizeNewlines(orig))
	skip := e.skipper()
	for _, k := range []string{"To", "Cc"} {
		for _, a := range headerAddresses(h, k) {
			if !skip(a) {
				return a
			}
		}
	}
	return ""
}

// separatorWords mark a line that introduces the returned message when the
// line is drawn as a separator ("----- Original message -----").
var separatorWords = []string{
	"original message", "returned message", "unsent message", "copy of", "header", "message follows",
	"rejected message", "undelivered message", "message text", "original mail",
}

// separatorPhrases introduce the returned message wherever they appear.
var separatorPhrases = []string{
	"below this line is a copy of the message",
	"this is a copy of the message",
	"original message follows",
	"unsent message follows",
	"message headers follow",
	"original message header",
	"headers of the original message",
	"original message headers",
	"the original message headers",
	"content-type: message/rfc822",
	"content-type: text/rfc822-headers",
	"--- the header of the original message",
	"original mail as follows",
	"original message:",
	"below this line is a copy of the mail header",
	"below the next line is a copy of the message",
	"mensaje original adjunto",
	"included is a copy of the message header",
	"tes de message d'origine",
	"intestazioni originali del messaggio",
	"ursprungshuvuden:",
	"enclosed is a copy of the message",
}

// originalHeaderKeys are fields that open the header of a returned message
// quoted in a bounce's text.
var originalHeaderKeys = map[string]bool{
	"return-path": true, "received": true, "message-id": true, "date": true, "from": true, "to": true,
	"subject": true, "mime-version": true, "content-type": true, "dkim-signature": true,
	"delivered-to": true, "authentication-results": true, "arc-seal": true, "x-received": true,
	"reply-to": true, "sender": true, "cc": true, "references": true, "in-reply-to": true,
	"x-mailer": true, "user-agent": true, "content-transfer-encoding": true, "domainkey-signature": true,
	"x-google-dkim-signature": true, "x-gm-message-state": true, "x-google-smtp-source": true,
}

// openingHeaderKeys are the fields a quoted message header starts with:
// trace and signature fields that a bounce's own prose never begins with.
var openingHeaderKeys = map[string]bool{
	"return-path": true, "received": true, "delivered-to": true, "x-received": true,
	"dkim-signature": true, "arc-seal": true, "authentication-results": true, "message-id": true,
	"domainkey-signature": true, "x-original-to": true, "x-google-smtp-source": true, "received-spf": true,
}

// splitOriginal cuts a bounce's text where the returned message begins.
func splitOriginal(body string) (errText, original string) {
	lines := strings.Split(body, "\n")
	offset := 0
	for i, line := range lines {
		if i > 0 && isSeparator(line) {
			return body[:offset], strings.TrimLeft(body[offset+len(line):], "\n")
		}
		if i > 0 && strings.TrimSpace(lines[i-1]) == "" && startsHeaderBlock(lines[i:]) {
			return body[:offset], body[offset:]
		}
		offset += len(line) + 1
		if offset > len(body) {
			offset = len(body)
		}
	}
	return body, ""
}

func isSeparator(line string) bool {
	l := strings.ToLower(strings.TrimSpace(line))
	if l == "" {
		return false
	}
	for _, p := range separatorPhrases {
		if strings.Contains(l, p) {
			return true
		}
	}
	if len(l) >= 3 && strings.ContainsRune("-=*_", rune(l[0])) && l[1] == l[0] {
		for _, w := range separatorWords {
			if strings.Contains(l, w) {
				return true
			}
		}
	}
	return false
}

// startsHeaderBlock reports whether lines open a quoted message header:
// three consecutive fields (continuations included), the first two of them
// typical of a message header.
func startsHeaderBlock(lines []string) bool {
	fields := 0
	for _, l := range lines {
		if l == "" {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			if fields == 0 {
				return false
			}
			continue
		}
		colon := strings.IndexByte(l, ':')
		if colon <= 0 || strings.ContainsAny(l[:colon], " \t") {
			return false
		}
		key := strings.ToLower(l[:colon])
		if fields == 0 && !openingHeaderKeys[key] || fields < 2 && !originalHeaderKeys[key] {
			return false
		}
		fields++
		if fields >= 3 {
			return true
		}
	}
	return false
}

// bounceSenders are local parts of the addresses bounces come from.
var bounceSenders = []string{"mailer-daemon", "postmaster", "post_master", "mail-daemon", "mailerdaemon", "maildaemon", "mmdf", "mail.delivery", "bounce", "nobody", "ndr", "mail-delivery", "-admin"}

// bounceBodies are phrases that only bounces use, for bounces whose sender
// and subject say nothing (or say it in a language we do not list).
var bounceBodies = []string{
	"could not be delivered to", "was not delivered to", "undeliverable to", "delivery has failed",
	"delivery to the following recipient", "the following address(es) failed", "unable to deliver",
	"permanent fatal errors", "wasn't able to deliver", "following addresses had", "did not reach the following",
	"delivery failed", "failed permanently", "message could not be delivered", "not a member of this mailing list",
	"could not deliver", "couldn't be delivered", "returned to sender", "su mensaje no pudo ser entregado",
	"this is the machine generated message from mail service", "this is the mail delivery agent at",
	"your mail was not delivered to the following address", "your mail message to the following address",
	"your message to the following addresses", "was rejected by the local scan",
	"contained one or more recipient addresses", "router encountered the following error",
	"has been frozen", "this is the mailer-daemon, please do not reply", "diagnostic information for administrators",
	"delivery has failed to these recipients", "送信できませんでした", "配信できませんでした", "届きませんでした",
}

// bounceSubjects are fragments of the subjects bounces carry.
var bounceSubjects = []string{
	"undeliver", "delivery fail", "delivery status notification", "failure notice", "returned mail",
	"mail delivery failed", "delivery failure", "non-delivery", "nondeliver", "non delivery",
	"could not be delivered", "delivery problem", "returned to sender", "delivery notification",
	"could not send", "delayed mail", "delivery delayed", "message delayed", "not delivered",
	"mail failure", "error sending", "unable to deliver", "delivery report", "failed delivery",
	"mail system error", "bounce", "warning: message", "delivery has failed", "delivery error",
	"mail error", "returned message", "rejected", "failure delivery", "aws notification",
	"delivery to the following", "message you sent", "unzustellbar", "non remis", "no entregado",
	"échec de la remise", "nicht zustellbar", "mail delivery", "non remis", "non recapitabile", "olevererbart",
	"message frozen", "error(s) in forwarding or filtering", "nondeliverable", "メールエラー", "配信エラー",
	"送信エラー", "不達",
}

// bounceDisplayNames are display names bounce software signs with.
var bounceDisplayNames = []string{"mail delivery", "mailer-daemon", "mailer daemon", "postmaster", "system administrator", "mail administrator"}

// looksLikeBounce reports whether e presents itself as a bounce: it comes
// from a mailer daemon, carries a bounce subject, or lists failed
// recipients.
func looksLikeBounce(e *entity) bool {
	if e.header.Has("X-Failed-Recipients") {
		return true
	}
	from := strings.ToLower(e.header.Get("From"))
	addr := strings.ToLower(headerAddress(e.header, "From"))
	local, _, _ := strings.Cut(addr, "@")
	for _, s := range bounceSenders {
		if strings.Contains(local, s) {
			return true
		}
	}
	for _, s := range bounceDisplayNames {
		if strings.Contains(from, s) {
			return true
		}
	}
	subject := strings.ToLower(headerText(e.header, "Subject"))
	for _, s := range bounceSubjects {
		if strings.Contains(subject, s) {
			return true
		}
	}
	// Words alone could come from a person ("we could not deliver your
	// order"): they count only in a message that is also automatic.
	if !e.automatic() {
		return false
	}
	errText := e.errText()
	if len(errText) > 4096 {
		errText = errText[:4096]
	}
	lower := strings.ToLower(collapseSpace(errText))
	for _, s := range bounceBodies {
		if strings.Contains(lower, s) {
			return true
		}
	}
	return false
}

// automatic reports whether e shows signs of having been written by a
// program: a null return path, Auto-Submitted, a returned message attached,
// or a sender that takes no replies.
func (e *entity) automatic() bool {
	if rp := strings.TrimSpace(e.header.Get("Return-Path")); rp == "<>" || rp == "" && e.header.Has("Return-Path") {
		return true
	}
	if a := autoSubmitted(e.header); a != "" && a != "no" {
		return true
	}
	if e.original() != nil {
		return true
	}
	local, _, _ := strings.Cut(strings.ToLower(headerAddress(e.header, "From")), "@")
	for _, s := range []string{"no-reply", "noreply", "do-not-reply", "donotreply", "daemon", "master", "admin", "notify"} {
		if strings.Contains(local, s) {
			return true
		}
	}
	return false
}

// isDelayNotice reports whether a text bounce is a warning that delivery
// is still being attempted, not a final failure.
func isDelayNotice(subject, errText string) bool {
	s := strings.ToLower(subject)
	if strings.Contains(s, "delayed") || strings.Contains(s, "delay") || strings.HasPrefix(s, "warning:") {
		return true
	}
	t := strings.ToLower(errText)
	return strings.Contains(t, "has not yet been delivered") || strings.Contains(t, "will continue to be attempted") ||
		strings.Contains(t, "delivery attempts will continue")
}

// commands maps phrases that bounces use to say which SMTP command failed
// to the command.
var commands = []struct{ phrase, command string }{
	{"in reply to rcpt to command", "RCPT TO"},
	{"after rcpt", "RCPT TO"},
	{"our rcpt to", "RCPT TO"},
	{"[rcpt_to]", "RCPT TO"},
	{">>> rcpt to", "RCPT TO"},
	{"smtp:rcpt", "RCPT TO"},
	{"smtp command rcpt", "RCPT TO"},
	{"does not like recipient", "RCPT TO"},
	{"in reply to mail from command", "MAIL FROM"},
	{"after mail from", "MAIL FROM"},
	{"our mail from", "MAIL FROM"},
	{"[mail_from]", "MAIL FROM"},
	{">>> mail from", "MAIL FROM"},
	{"smtp command mail", "MAIL FROM"},
	{"sender was rejected", "MAIL FROM"},
	{"in reply to end of data command", "end of DATA"},
	{"in reply to data command", "DATA"},
	{"after end of data", "end of DATA"},
	{"after data", "DATA"},
	{"our final data", "end of DATA"},
	{"failed after i sent the message", "end of DATA"},
	{"failed on data command", "DATA"},
	{"for text command", "end of DATA"},
	{"smtp command data", "DATA"},
	{">>> data", "DATA"},
	{"[data]", "DATA"},
	{"after initial connection", "CONNECT"},
	{"but greeting failed", "CONNECT"},
	{"in reply to ehlo command", "EHLO"},
	{"in reply to helo command", "HELO"},
	{"after ehlo", "EHLO"},
	{"after helo", "HELO"},
	{"my name was rejected", "HELO"},
	{"in reply to starttls command", "STARTTLS"},
	{"after starttls", "STARTTLS"},
}

// commandOf returns the SMTP command a diagnostic says failed, or "".
func commandOf(text string) string {
	lower := strings.ToLower(text)
	for _, c := range commands {
		if strings.Contains(lower, c.phrase) {
			return c.command
		}
	}
	return ""
}

// commandPhrase returns a canonical "in reply to X command" phrase for the
// command a text names, or "".
func commandPhrase(text string) string {
	if c := commandOf(text); c != "" {
		return "in reply to " + c + " command"
	}
	return ""
}
