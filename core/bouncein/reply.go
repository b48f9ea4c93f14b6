package bouncein

import (
	"strconv"
	"strings"

	"corriere/core/policy"
	"corriere/core/reply"
)

// providerReply returns the reply a bounce quotes, split once into code,
// enhanced status and text. A report's Diagnostic is usually the whole
// reply ("550 5.1.1 <x>: user unknown") while its ReplyCode and Status
// repeat the code and status found in it: joining the three quoted the
// reply twice ("550 5.1.1 550 5.1.1 <x>..."). Everything the listener
// says about a bounce — the forwarded DSN, its plain-language part, the
// event, the suppression reason and so the later RCPT refusal — is made
// from this one value. ok is false when the report carries no 4xx or 5xx
// code; text is then the diagnostic alone.
func providerReply(r policy.BounceReport) (rep *reply.Reply, text string, ok bool) {
	text = oneLine(r.Diagnostic)
	code := r.ReplyCode
	if c, rest, found := leadingCode(text); found && (code == 0 || c == code) {
		code, text = c, rest
	}
	status, _ := reply.ParseStatus(r.Status)
	if first, rest, _ := strings.Cut(text, " "); code != 0 {
		if st, valid := reply.ParseStatus(first); valid && st.Class == code/100 && (status.IsZero() || st == status) {
			status, text = st, rest
		}
	}
	if code < 400 || code >= 600 {
		return nil, oneLine(r.Diagnostic), false
	}
	if !status.IsZero() && status.Class != code/100 {
		status = reply.Status{}
	}
	text = continuations(text, code, status)
	return &reply.Reply{Code: code, Status: status, Text: text}, text, true
}

// continuations removes the code and status that begin every line of a
// multi-line reply once its lines are joined ("... Please try 550-5.1.1
// double-checking ..."): they would quote the code again mid-sentence.
func continuations(text string, code int, status reply.Status) string {
	prefixes := []string{strconv.Itoa(code) + "-", strconv.Itoa(code) + " "}
	if !status.IsZero() {
		prefixes = []string{strconv.Itoa(code) + "-" + status.String() + " ", strconv.Itoa(code) + " " + status.String() + " "}
	}
	for _, p := range prefixes {
		text = strings.ReplaceAll(text, " "+p, " ")
	}
	return text
}

// leadingCode splits a reply code off the start of text: "550 x" or
// "550-x" gives 550 and "x".
func leadingCode(text string) (int, string, bool) {
	if len(text) < 3 {
		return 0, "", false
	}
	c, err := strconv.Atoi(text[:3])
	if err != nil || c < 200 || c > 599 || text[0] == '+' {
		return 0, "", false
	}
	switch {
	case len(text) == 3:
		return c, "", true
	case text[3] == ' ' || text[3] == '-':
		return c, strings.TrimSpace(text[4:]), true
	}
	return 0, "", false
}
