package bounce

import (
	"strings"

	"corriere/core/policy"
)

// autoreplySubjects are how the subjects of vacation and other automatic
// replies begin, in the languages we meet most.
var autoreplySubjects = []string{
	"automatic reply", "auto reply", "autoreply", "auto-reply", "auto response", "autoresponse",
	"auto-response", "auto:", "out of office", "out of the office", "vacation:", "on vacation",
	"abwesenheit", "automatische antwort", "réponse automatique", "reponse automatique",
	"risposta automatica", "respuesta automática", "respuesta automatica", "automatisch antwoord",
	"resposta automática", "autosvar", "automaattinen vastaus", "自動応答", "自動返信", "不在",
}

// autoreplyBodies are phrases that give away an automatic reply whose
// subject does not.
var autoreplyBodies = []string{
	"i am out of the office", "i'm out of the office", "i am away", "i'm away", "i am on vacation",
	"i'm on vacation", "i will be traveling", "i will be out of", "i'm out of office", "i am out of office",
	"currently out of the office", "limited access to email", "away from the office",
}

// parseAutoreply recognises vacation messages and other replies sent by a
// program on behalf of the recipient (RFC 3834 and the headers that
// mail systems used before it). The one entry names the replying address.
func parseAutoreply(e *entity) []policy.BounceReport {
	if !looksLikeAutoreply(e) {
		return nil
	}
	from := headerAddress(e.header, "From")
	if !validMailbox(from) {
		return nil
	}
	return []policy.BounceReport{{Recipient: from, Diagnostic: collapseSpace(firstLines(e.text(), 4))}}
}

// looksLikeAutoreply needs a header that only programs write, or an
// automatic subject or wording in a message that is also marked as
// automatic: a person may well write "Out of office" in a subject.
func looksLikeAutoreply(e *entity) bool {
	h := e.header
	for _, k := range []string{"X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation"} {
		if h.Has(k) {
			return true
		}
	}
	if strings.Contains(strings.ToLower(h.Get("X-Apple-Criteria")), "vacation") {
		return true
	}
	prec := strings.ToLower(strings.TrimSpace(h.Get("Precedence")))
	if autoSubmitted(h) == "auto-replied" || prec == "auto_reply" {
		return true
	}
	if !h.Has("X-Auto-Response-Suppress") && !e.automatic() {
		return false
	}
	subject := strings.ToLower(headerText(h, "Subject"))
	for _, s := range autoreplySubjects {
		if strings.HasPrefix(subject, s) {
			return true
		}
	}
	body := strings.ToLower(firstLines(e.text(), 20))
	for _, s := range autoreplyBodies {
		if strings.Contains(body, s) {
			return true
		}
	}
	return false
}
