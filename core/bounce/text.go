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
		if len(blocks) == 1 && !anyReplyCode([]string{diag}) {
			// The one failure, and its lines quote no reply: the reply
			// may stand elsewhere, under a heading of its own ("Error
			// message below:").
			if l := firstReplyLine(errText); l != "" {
				diag = l + " " + diag
			}
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

// firstReplyLine returns the first line of text that quotes an SMTP reply
// or status, or "".
func firstReplyLine(text string) string {
	for _, line := range strings.Split(text, "\n") {
		if hasReplyCode(line) {
			return strings.TrimSpace(line)
		}
	}
	return ""
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

// senderWords, right before an address, say it is not a recipient.
var senderWords = []string{
	"mail from:", "mail from", "envelope-from", "sender:", "sender", "from:", "from", "return-path:",
	"message-id:", "reply-to:", "sent by", "smtp.mailfrom=", "header.from=", "originated from",
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
	for _, s := range senderWords {
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
