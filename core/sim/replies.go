package sim

import (
	"fmt"
	"sort"
	"strings"

	"github.com/emersion/go-smtp"

	"corriere/core/reply"
)

// replyKind names a situation a provider answers with its own words.
type replyKind string

const (
	kindAccepted           replyKind = "accepted"
	kindGreylisted         replyKind = "greylisted"
	kindTooManyConnections replyKind = "too_many_connections"
	kindRateLimited        replyKind = "rate_limited"
	kindUnknownUser        replyKind = "unknown_user"
	kindMailboxFull        replyKind = "mailbox_full"
	kindSpam               replyKind = "spam"
	kindBlocked            replyKind = "blocked"
)

// styles holds each provider style's replies; "" is the generic,
// Postfix-like style and fills what a style leaves out. The texts imitate
// what the real providers answer, so that an MTA's response rules and bounce
// classifier meet the same words they will meet in production.
var styles = map[string]map[replyKind]string{
	"": {
		kindAccepted:           "250 2.0.0 Ok: queued as {id}",
		kindGreylisted:         "451 4.7.1 <{rcpt}>: Recipient address rejected: Greylisted, please try again later",
		kindTooManyConnections: "421 4.7.0 Too many connections from your IP [{ip}]",
		kindRateLimited:        "421 4.7.0 {host} Error: too much mail from [{ip}], try again later",
		kindUnknownUser:        "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table",
		kindMailboxFull:        "452 4.2.2 <{rcpt}>: Recipient address rejected: Mailbox full",
		kindSpam:               "550 5.7.1 Message rejected as spam by content filter",
		kindBlocked:            "554 5.7.1 Service unavailable; Client host [{ip}] blocked using {list}; https://check.{list}/query/ip/{ip}",
	},
	"generic": {},
	"gmail": {
		kindAccepted:           "250 2.0.0 OK {id} - gsmtp",
		kindGreylisted:         "451 4.7.1 Greylisted, please try again later. The recipient's server has not seen this sender before - gsmtp",
		kindTooManyConnections: "421 4.7.0 Try again later, closing connection. Too many connections from your IP [{ip}] - gsmtp",
		kindRateLimited:        "421 4.7.28 [{ip}] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. For more information, go to https://support.google.com/mail/?p=UnsolicitedRateLimitError - gsmtp",
		kindUnknownUser:        "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser - gsmtp",
		kindMailboxFull:        "452 4.2.2 The recipient's inbox is out of storage space. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp - gsmtp",
		kindSpam:               "550 5.7.1 [{ip}] Gmail has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. For more information, go to https://support.google.com/mail/?p=UnsolicitedMessageError - gsmtp",
		kindBlocked:            "554 5.7.1 Service unavailable; Client host [{ip}] blocked using {list}; The IP you're using to send mail is not authorized to send email directly to our servers - gsmtp",
	},
	"microsoft": {
		kindAccepted:           "250 2.6.0 <{id}@{host}> [InternalId={id}] Queued mail for delivery",
		kindGreylisted:         "451 4.7.1 Greylisted, please try again later [{host}]",
		kindTooManyConnections: "421 4.3.2 The maximum number of concurrent server connections has exceeded a limit, closing transmission channel",
		kindRateLimited:        "451 4.7.500 Server busy. Please try again later from [{ip}]. (S3150) [{host}]",
		kindUnknownUser:        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient {rcpt} not found by SMTP address lookup",
		kindMailboxFull:        "452 4.2.2 The recipient's mailbox is full and can't accept messages now. Please try resending this message later, or contact the recipient directly",
		kindSpam:               "550 5.7.1 Message rejected as spam by Content Filtering.",
		kindBlocked:            "554 5.7.1 Service unavailable; Client host [{ip}] blocked using {list}. To request removal from this list please forward this message to delist@messaging.microsoft.com (S3140)",
	},
	"yahoo": {
		kindAccepted:           "250 ok dirdel",
		kindGreylisted:         "451 4.7.1 [TS01] Messages from {ip} temporarily deferred; please try again later",
		kindTooManyConnections: "421 4.7.0 [TSS09] Too many connections from {ip}; see https://postmaster.yahooinc.com/error-codes",
		kindRateLimited:        "421 4.7.0 [TSS04] Messages from {ip} temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
		kindUnknownUser:        "550 5.1.1 delivery error: dd This user doesn't have an account ({rcpt}) [0] - {host}",
		kindMailboxFull:        "452 4.2.2 Mailbox is over quota ({rcpt}) - {host}",
		kindSpam:               "550 5.7.1 [CS01] Message not accepted for policy reasons. See https://postmaster.yahooinc.com/error-codes",
		kindBlocked:            "554 5.7.1 [BL21] Connections will not be accepted from {ip}, because the ip is listed in {list}; see https://postmaster.yahooinc.com/error-codes",
	},
	"libero": {
		kindAccepted:           "250 2.0.0 {id} mail accepted for delivery",
		kindGreylisted:         "451 4.7.1 <{rcpt}>: Greylisted, please try again later (IOL GL)",
		kindTooManyConnections: "421 4.7.0 {host} Too many connections from your IP [{ip}] (IOL CL)",
		kindRateLimited:        "421 4.7.0 {host} [{ip}] Too many messages, please slow down (IOL RL)",
		kindUnknownUser:        "550 5.1.1 <{rcpt}>: recipient rejected: user unknown (IOL UU)",
		kindMailboxFull:        "452 4.2.2 <{rcpt}>: mailbox full, over quota (IOL MF)",
		kindSpam:               "550 5.7.1 Message rejected: spam detected (IOL AS)",
	},
	"tim": {
		kindAccepted:           "250 2.0.0 {id} Message accepted for delivery",
		kindGreylisted:         "451 4.7.1 Greylisted, please try again later",
		kindTooManyConnections: "421 4.7.0 Too many concurrent connections from [{ip}]",
		kindRateLimited:        "450 4.7.1 [{ip}] Too many messages per minute, try again later",
		kindUnknownUser:        "550 5.1.1 <{rcpt}>... User unknown",
		kindMailboxFull:        "452 4.2.2 <{rcpt}>... Mailbox full, quota exceeded",
		kindSpam:               "550 5.7.1 Message refused by antispam policy",
	},
}

func styleNames() string {
	names := make([]string, 0, len(styles))
	for n := range styles {
		if n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// parseReply parses a one-line reply template, "550 5.1.1 text".
func parseReply(line string) (*reply.Reply, error) {
	if strings.ContainsAny(line, "\r\n") {
		return nil, fmt.Errorf("reply %q must be one line", line)
	}
	r, err := reply.Parse([]string{line})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// replyVars are the values substituted into reply templates.
type replyVars struct {
	ip, host, from, rcpt, list, id string
}

// replies is one provider's parsed reply templates.
type replies map[replyKind]*reply.Reply

// newReplies resolves a provider's templates: its overrides, then its style,
// then the generic style. The world was validated, so every template parses.
func newReplies(p *Provider) (replies, error) {
	out := replies{}
	for kind, generic := range styles[""] {
		text := generic
		if s, ok := styles[p.Style][kind]; ok {
			text = s
		}
		if s, ok := p.Replies[string(kind)]; ok {
			text = s
		}
		r, err := parseReply(text)
		if err != nil {
			return nil, fmt.Errorf("replies.%s: %w", kind, err)
		}
		wantSuccess := kind == kindAccepted
		if r.Success() != wantSuccess {
			return nil, fmt.Errorf("replies.%s: %q has the wrong class of reply code", kind, text)
		}
		out[kind] = r
	}
	return out, nil
}

// render fills a template's placeholders.
func (rs replies) render(kind replyKind, v replyVars) *reply.Reply {
	r := *rs[kind]
	r.Text = strings.NewReplacer(
		"{ip}", v.ip, "{host}", v.host, "{from}", v.from,
		"{rcpt}", v.rcpt, "{list}", v.list, "{id}", v.id,
	).Replace(r.Text)
	return &r
}

// smtpError converts a reply to the error a go-smtp session returns; go-smtp
// writes its code, enhanced code and text verbatim, even a 250 from Data.
func smtpError(r *reply.Reply) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: r.Code, Message: r.Text, EnhancedCode: smtp.NoEnhancedCode}
	if !r.Status.IsZero() {
		e.EnhancedCode = smtp.EnhancedCode{r.Status.Class, r.Status.Subject, r.Status.Detail}
	}
	return e
}
