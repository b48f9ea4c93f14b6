package sim

import (
	"fmt"
	"strings"
	"time"

	"corriere/core/address"
	"corriere/core/reply"
)

// original is what a provider remembers of an accepted message to bounce
// or report it later.
type original struct {
	provider *provider
	mxHost   string
	from     string // envelope sender
	rcpt     string
	ip       string // source address
	arrival  time.Time
	header   []byte
	subject  string
	queueID  string
	ref      string // unique per recipient: names generated messages
}

// bounceFormats writes a bounce of o for diag at time now.
var bounceFormats = map[string]func(o original, diag *reply.Reply, now time.Time) string{
	"dsn":      dsnBounce,
	"qmail":    qmailBounce,
	"exchange": exchangeBounce,
}

// crlf turns the line ends of s into CRLF, as SMTP carries them.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func mailDate(t time.Time) string { return t.Format(time.RFC1123Z) }

// dsnBounce is an RFC 3464 delivery status notification: a
// multipart/report with a human part, a message/delivery-status part and
// the returned headers.
func dsnBounce(o original, diag *reply.Reply, now time.Time) string {
	boundary := "sim-dsn-" + o.ref
	subject := "Undelivered Mail Returned to Sender"
	if o.provider.cfg.Style == "gmail" {
		subject = "Delivery Status Notification (Failure)"
	}
	return crlf(fmt.Sprintf(`From: Mail Delivery Subsystem <mailer-daemon@%[1]s>
To: <%[2]s>
Subject: %[3]s
Date: %[4]s
Message-ID: <%[12]s.dsn@%[1]s>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="%[6]s"

This is a MIME-encapsulated message.

--%[6]s
Content-Type: text/plain; charset=us-ascii
Content-Description: Notification

Your message to %[7]s couldn't be delivered.
The response from the remote server was:

%[8]s

--%[6]s
Content-Type: message/delivery-status
Content-Description: Delivery report

Reporting-MTA: dns; %[1]s
X-Queue-ID: %[5]s
Arrival-Date: %[9]s

Final-Recipient: rfc822; %[7]s
Original-Recipient: rfc822; %[7]s
Action: failed
Status: %[10]s
Remote-MTA: dns; %[1]s
Diagnostic-Code: smtp; %[8]s
Last-Attempt-Date: %[4]s

--%[6]s
Content-Type: text/rfc822-headers
Content-Description: Undelivered Message Headers

%[11]s
--%[6]s--
`, o.mxHost, o.from, subject, mailDate(now), o.queueID, boundary, o.rcpt, diag.String(),
		mailDate(o.arrival), diag.EffectiveStatus(), o.header, o.ref))
}

// qmailBounce is the plain-text bounce of qmail-send: no MIME structure, the
// diagnostic in prose and the returned headers after a marker line.
func qmailBounce(o original, diag *reply.Reply, now time.Time) string {
	return crlf(fmt.Sprintf(`From: MAILER-DAEMON@%[1]s
To: %[2]s
Subject: failure notice
Date: %[3]s
Message-ID: <%[4]s.qmail@%[1]s>

Hi. This is the qmail-send program at %[1]s.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<%[5]s>:
%[6]s does not like recipient.
Remote host said: %[7]s
Giving up on %[6]s.

--- Below this line is a copy of the message.

%[8]s
`, o.mxHost, o.from, mailDate(now), o.ref, o.rcpt, o.provider.outIPString(), diag.String(), o.header))
}

// exchangeBounce is an Exchange-style non-delivery report in plain text,
// with the diagnostic for administrators and the original headers.
func exchangeBounce(o original, diag *reply.Reply, now time.Time) string {
	return crlf(fmt.Sprintf(`From: Microsoft Outlook <postmaster@%[1]s>
To: <%[2]s>
Subject: Undeliverable: %[3]s
Date: %[4]s
Message-ID: <%[5]s.ndr@%[6]s>
Content-Type: text/plain; charset=us-ascii
X-MS-Exchange-Message-Is-Ndr:
Auto-Submitted: auto-replied

Delivery has failed to these recipients or groups:

%[7]s
Your message couldn't be delivered. The recipient's email system rejected it after accepting it; the diagnostic information below says why.

Diagnostic information for administrators:

Generating server: %[6]s

%[7]s
Remote Server returned '%[8]s'

Original message headers:

%[9]s
`, o.provider.cfg.Domains[0].Name, o.from, o.subject, mailDate(now), o.ref, o.mxHost, o.rcpt, diag.String(), o.header))
}

// arfReport is an RFC 5965 abuse report: a multipart/report with a human
// part, a message/feedback-report part and the reported message's headers.
func arfReport(o original, from, to string, now time.Time) string {
	boundary := "sim-arf-" + o.ref
	return crlf(fmt.Sprintf(`From: <%[1]s>
To: <%[2]s>
Subject: Abuse report: %[3]s
Date: %[4]s
Message-ID: <%[5]s.arf@%[6]s>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="%[7]s"

--%[7]s
Content-Type: text/plain; charset=us-ascii

This is an email abuse report for an email message received from IP %[8]s on %[9]s.
A user of %[14]s marked it as spam.

--%[7]s
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: corriere-sim/1.0
Version: 1
Original-Mail-From: <%[10]s>
Original-Rcpt-To: <%[11]s>
Arrival-Date: %[9]s
Reporting-MTA: dns; %[6]s
Source-IP: %[8]s
Reported-Domain: %[12]s

--%[7]s
Content-Type: text/rfc822-headers

%[13]s
--%[7]s--
`, from, to, o.subject, mailDate(now), o.ref, o.mxHost, boundary, o.ip, mailDate(o.arrival),
		o.from, o.rcpt, address.Domain(o.from), o.header, o.provider.cfg.Domains[0].Name))
}
