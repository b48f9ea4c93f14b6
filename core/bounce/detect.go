package bounce

import "strings"

// bounceSenders are local parts of the addresses bounces come from.
var bounceSenders = []string{
	"mailer-daemon", "postmaster", "post_master", "mail-daemon", "mailerdaemon", "maildaemon", "mmdf",
	"mail.delivery", "bounce", "nobody", "ndr", "mail-delivery", "-admin",
}

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
var bounceDisplayNames = []string{
	"mail delivery", "mailer-daemon", "mailer daemon", "postmaster", "system administrator", "mail administrator",
}

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
