package bounce

import (
	"context"
	"strings"
	"testing"

	"corriere/core/policy"
)

// TestProviderFamilies checks the shipped rules on replies written in the
// style of each provider and sending MTA family the rules know, with the
// category Sisimai's taxonomy gives them. The samples are short synthetic
// replies, not copies of real bounces: they test the families, not files.
func TestProviderFamilies(t *testing.T) {
	rules := loadTestRules(t)
	tests := []struct {
		family, rcpt, remote, status, diag string
		want                               string
	}{
		// Apple iCloud: an inactive address is closed for good.
		{"apple", "a@icloud.com", "", "5.1.1", "550 5.1.1 <a@icloud.com>: inactive email address (in reply to RCPT TO command)", "userunknown"},
		{"apple", "a@me.com", "", "4.7.1", "421 4.7.1 Messages to a@me.com deferred due to excessive volume. Try again later", "speeding"},
		{"apple", "a@mac.com", "", "5.2.2", "552 5.2.2 <a@mac.com>: user is over quota (in reply to RCPT TO command)", "mailboxfull"},
		{"apple elsewhere", "a@example.org", "", "5.1.1", "550 5.1.1 <a@example.org>: inactive email address", "userunknown"},
		// Charter / Spectrum: the AUP number decides.
		{"spectrum", "a@charter.net", "", "5.0.0", "554 5.7.1 AUP#I-1000 Your IP address has been blocked", "blocked"},
		{"spectrum", "a@charter.net", "", "5.0.0", "550 AUP#I-1130 reverse DNS entry required", "requireptr"},
		{"spectrum", "a@spectrum.net", "", "4.0.0", "421 AUP#I-1310 too many connections from your IP", "toomanyconn"},
		{"spectrum", "a@charter.net", "", "4.0.0", "452 AUP#O-1420 sending limit reached", "speeding"},
		// Tencent QQ.
		{"tencent", "a@qq.com", "", "", "550 Mailbox not found. http://service.mail.qq.com/help", "userunknown"},
		{"tencent", "a@foxmail.com", "", "", "550 Ip frequency limited. http://service.mail.qq.com/help", "toomanyconn"},
		{"tencent", "a@qq.com", "", "", "550 Suspected spam ip, connection denied", "blocked"},
		{"tencent", "a@qq.com", "", "", "550 Mail is rejected by recipients", "rejected"},
		{"tencent", "a@qq.com", "", "", "550 Mail content denied", "spamdetected"},
		// AOL's own DNS failures.
		{"aol", "a@aol.com", "", "", "Host or domain name not found. Name service error for name=x.example type=A", "hostunknown"},
		{"aol", "a@aol.com", "", "", "type=MX: Malformed or unexpected name server reply", "notaccept"},
		// Microsoft: the same words under different codes.
		{"microsoft 5.4.1", "a@contoso.onmicrosoft.com", "", "5.4.1", "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)", "userunknown"},
		{"microsoft 5.7.504", "a@outlook.com", "", "5.7.504", "550 5.7.504 Recipient address rejected: Access denied", "suspend"},
		{"microsoft 5.4.14", "a@example.org", "mail.protection.outlook.com", "5.4.14", "554 5.4.14 Hop count exceeded - possible mail loop ATTR34", "networkerror"},
		{"microsoft 5.4.300", "a@example.org", "am0pr01mb0001.eurprd01.prod.outlook.com", "5.4.300", "550 5.4.300 Message expired", "expired"},
		{"microsoft 5.7.501", "a@outlook.com", "", "5.7.501", "550 5.7.501 Access denied, spam abuse detected", "rejected"},
		{"microsoft 5.7.606", "a@outlook.com", "", "5.7.606", "550 5.7.606 Access denied, banned sending IP [192.0.2.1]", "blocked"},
		{"microsoft 5.7.133", "team@contoso.onmicrosoft.com", "", "5.7.133", "550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; sender not authenticated for group", "rejected"},
		{"hotmail", "a@hotmail.com", "", "5.5.0", "550 Requested action not taken: mailbox unavailable", "userunknown"},
		// Yahoo: TSS04 from Yahoo's own servers is a refusal; quoted by
		// someone else, a reputation verdict.
		{"yahoo", "a@yahoo.com", "mta7.am0.yahoodns.net", "4.7.0", "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints", "rejected"},
		{"yahoo quoted", "a@example.org", "", "4.7.0", "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints", "badreputation"},
		{"yahoo", "a@yahoo.com", "mta5.am0.yahoodns.net", "5.0.0", "554 delivery error: dd a@yahoo.com is no longer valid. [-20]", "suspend"},
		// Google: its own table, with the code where words are shared.
		{"google", "a@example.org", "aspmx.l.google.com", "5.1.2", "553 5.1.2 We weren't able to find the recipient domain. Please check for any spelling errors", "userunknown"},
		{"google", "a@gmail.com", "gmail-smtp-in.l.google.com", "5.3.4", "552 5.3.4 Your message exceeded Google's message size limits", "mesgtoobig"},
		{"google", "a@gmail.com", "gmail-smtp-in.l.google.com", "5.2.3", "552 5.2.3 Your message exceeded Google's message size limits", "exceedlimit"},
		{"google", "a@gmail.com", "gmail-smtp-in.l.google.com", "5.7.1", "550 5.7.1 Unauthenticated email is not accepted from this domain", "rejected"},
		{"not google", "a@example.org", "mx.example.org", "5.1.2", "553 5.1.2 We weren't able to find the recipient domain", "hostunknown"},
		// Japanese mobile carriers.
		{"ezweb", "a@ezweb.ne.jp", "", "5.0.0", "550 <a@ezweb.ne.jp>: User unknown", "userunknown"},
		{"ezweb filter", "a@ezweb.ne.jp", "", "5.0.0", "550 : User unknown", "filtered"},
		{"docomo", "a@docomo.ne.jp", "", "5.2.0", "550 5.2.0 Unknown user a@docomo.ne.jp", "filtered"},
		{"docomo", "a@docomo.ne.jp", "", "5.0.0", "550 Unknown user a@docomo.ne.jp (in reply to RCPT TO command)", "userunknown"},
		{"vtext", "5551234567@vtext.com", "", "", "550 - Requested action not taken: no such user here", "userunknown"},
		// Sending MTAs.
		{"qmail", "a@example.org", "", "", "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1) I'm not going to try again; this message has been in the queue too long.", "networkerror"},
		{"qmail", "a@example.org", "", "", "I'm not going to try again; this message has been in the queue too long.", "expired"},
		{"qmail", "a@example.org", "", "", "Connected to 192.0.2.2 but sender was rejected. Remote host said: 553 sorry, your envelope sender is not allowed", "rejected"},
		{"lotus notes", "a@example.org", "", "", "User not listed in public Name & Address Book", "userunknown"},
		{"lotus notes", "a@example.org", "", "", "Message has exceeded maximum hop count", "networkerror"},
		{"dragonfly", "a@nx.example", "", "", "DNS lookup failure: host nx.example not found", "hostunknown"},
		{"dragonfly", "a@example.org", "", "", "Could not deliver for the last 432000 seconds. Giving up.", "expired"},
		{"amavis", "a@example.org", "", "5.7.0", "554 5.7.0 Reject, id=04711-08 - INFECTED: Eicar-Test-Signature", "virusdetected"},
		{"amavis", "a@example.org", "", "5.6.0", "554 5.6.0 Reject, id=04711-08 - BAD HEADER: Duplicate header field", "contenterror"},
		{"amavis", "a@example.org", "", "5.7.0", "554 5.7.0 Reject, id=04711-08 - spam", "spamdetected"},
		{"powermta", "a@example.org", "", "5.0.0", "552 5.0.0 Message rejected (X-PowerMTA-BounceCategory: quota-issues)", "mailboxfull"},
		{"powermta", "a@example.org", "", "5.0.0", "550 5.0.0 rejected (X-PowerMTA-BounceCategory: bad-mailbox)", "userunknown"},
		{"powermta words first", "a@example.org", "", "4.2.2", "452 4.2.2 mailbox full (X-PowerMTA-BounceCategory: bad-mailbox)", "mailboxfull"},
		// Local delivery agents behind the remote server.
		{"procmail", "a@example.org", "", "5.0.0", "554 5.0.0 Service unavailable (from /usr/bin/procmail -f- || exit 75)", "systemerror"},
		{"procmail", "a@example.org", "", "", "procmail: Quota exceeded while writing \"/var/mail/a\"", "mailboxfull"},
		{"procmail", "a@example.org", "", "", "/usr/bin/procmail -f- : Service unavailable", "systemerror"},
		{"maildrop", "a@example.org", "", "", "maildrop: maildir over quota.", "mailboxfull"},
		{"vpopmail", "a@example.org", "", "", "vdelivermail: Sorry, no mailbox here by that name. (#5.1.1)", "userunknown"},
		{"dovecot", "a@example.org", "", "", "Your message to <a@example.org> was automatically rejected: Quota exceeded (mailbox for user is full)", "mailboxfull"},
		{"any LDA", "a@example.org", "", "", "maildrop: signal 0x09", "mailererror"},
		// The confusions: who said it and when.
		{"userunknown at RCPT", "a@example.org", "", "5.0.0", "550 No such user (in reply to RCPT TO command)", "userunknown"},
		{"filtered after DATA", "a@example.org", "", "5.0.0", "550 No such user (in reply to end of DATA command)", "filtered"},
		{"filter words", "a@example.org", "", "", "550 Due to extended inactivity new mail is not currently being accepted for this mailbox", "filtered"},
		{"expired, not network", "a@example.org", "", "4.4.7", "Message could not be delivered for 5 days", "expired"},
		{"network, not expired", "a@example.org", "", "4.4.3", "Host not found, try again", "networkerror"},
		{"HELO refused, not a missing domain", "a@example.org", "", "5.7.1", "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname; Host not found", "blocked"},
		{"storage of the server", "a@example.org", "", "", "552 Requested mail action aborted: exceeded storage allocation", "systemfull"},
		{"SES throttling", "a@example.org", "", "", "454 Throttling failure: Daily message quota exceeded.", "toomanyconn"},
	}
	for _, tt := range tests {
		t.Run(tt.family+"/"+tt.want, func(t *testing.T) {
			r := policy.BounceReport{Kind: KindDSN, Action: "failed", Recipient: tt.rcpt, RemoteMTA: tt.remote,
				Status: tt.status, Diagnostic: tt.diag}
			finishFailure(&r)
			if got := rules.Classify(&r); string(got.Category) != tt.want {
				t.Errorf("%q: %s (%s), want %s", tt.diag, got.Category, rules.Explain(&r), tt.want)
			}
		})
	}
}

// TestFormatFamilies parses whole bounces in the formats of sending MTAs
// whose prose the parser must read (Lotus Notes, the X-series, qmail,
// DragonFly, au's EZweb, PowerMTA, amavisd-new) and classifies them with
// the shipped rules.
func TestFormatFamilies(t *testing.T) {
	pol := &rulesPolicy{rules: loadTestRules(t)}
	tests := []struct {
		name, raw, rcpt, want string
	}{
		{"lotus notes", "From: Postmaster <postmaster@notes.example.org>\nTo: s@example.com\nSubject: Undeliverable message\n" +
			"Content-Type: text/plain\n\n------- Failure Reasons  --------\n\nUser not listed in public Name & Address Book\n" +
			"akane@notes.example.org\n\n------- Returned Message --------\nFrom: s@example.com\nTo: akane@notes.example.org\n\nhi\n",
			"akane@notes.example.org", "userunknown"},
		{"X1", "From: \"Mail Deliver System\" <MAILER-DAEMON@mx.example.net>\nTo: s@example.com\nSubject: Returned Mail: User unknown\n" +
			"Content-Type: text/plain\n\nThe original message was received at Tue, 4 Aug 2026 09:00:00 +0900 (JST)\nfrom s@example.com\n\n" +
			"---The following addresses had delivery errors---\nhiro@example.net [User unknown]\n",
			"hiro@example.net", "filtered"},
		{"X3", "From: Mail Delivery System <MAILER-DAEMON@gw.example.net>\nTo: s@example.com\nSubject: Delivery status notification\n" +
			"Content-Type: text/plain\n\n      This is an automatically generated Delivery Status Notification.\n\n" +
			"Delivery to the following recipients failed permanently:\n\n  * umi@example.net\n\n" +
			"                            Technical details:\n\nSMTP:RCPT host 192.0.2.9: 550 5.1.1 <umi@example.net>... No such user here\n",
			"umi@example.net", "userunknown"},
		{"X6", "From: MAILER-DAEMON@relay.example.net\nTo: s@example.com\nSubject: There was an error sending your mail\n" +
			"Content-Type: text/plain\n\nWe had trouble delivering your message. Full details follow:\n\n1 error(s):\n\n" +
			"SMTP Server <mx.example.org> rejected recipient <nagi@example.org>\n  (Error following RCPT command). It responded as follows: [550 5.1.1 User unknown]\n",
			"nagi@example.org", "userunknown"},
		{"qmail", "From: MAILER-DAEMON@qmail.example.net\nTo: s@example.com\nSubject: failure notice\nContent-Type: text/plain\n\n" +
			"Hi. This is the qmail-send program at qmail.example.net.\nI'm afraid I wasn't able to deliver your message to the following addresses.\n" +
			"This is a permanent error; I've given up. Sorry it didn't work out.\n\n<kaze@example.org>:\n" +
			"I'm not going to try again; this message has been in the queue too long.\n\n--- Below this line is a copy of the message.\n",
			"kaze@example.org", "expired"},
		{"dragonfly", "From: MAILER-DAEMON@dma.example.net\nTo: s@example.com\nSubject: Mail delivery failed\nContent-Type: text/plain\n\n" +
			"This is the DragonFly Mail Agent v0.11 at dma.example.net.\n\nThere was an error delivering your mail to <tsuki@nx.example.invalid>.\n\n" +
			"DNS lookup failure: host nx.example.invalid not found\n\nMessage headers follow.\n",
			"tsuki@nx.example.invalid", "hostunknown"},
		{"ezweb verdict sentence", "From: Postmaster@ezweb.ne.jp\nTo: s@example.com\nSubject: Mail System Error - Returned Mail\n" +
			"Content-Type: text/plain\n\nThe user(s) account is disabled.\n\n<mizu@ezweb.ne.jp>: 550 user unknown (in reply to RCPT TO command)\n",
			"mizu@ezweb.ne.jp", "suspend"},
		{"ezweb spam filter", "From: Postmaster@ezweb.ne.jp\nTo: s@example.com\nSubject: Mail System Error - Returned Mail\nX-SPASIGN: NG\n" +
			"Content-Type: text/plain\n\n<kiri@ezweb.ne.jp>: 550 <kiri@ezweb.ne.jp>: User unknown (in reply to end of DATA command)\n",
			"kiri@ezweb.ne.jp", "filtered"},
		{"powermta category", "From: postmaster@pmta.example.net\nTo: s@example.com\nSubject: Delivery report\n" +
			"Content-Type: multipart/report; report-type=delivery-status; boundary=\"pm\"\n\n--pm\nContent-Type: text/plain\n\n" +
			"Hello, this is the mail server on pmta.example.net.\n\n--pm\nContent-Type: message/delivery-status\n\n" +
			"Reporting-MTA: dns; pmta.example.net\n\nFinal-Recipient: rfc822;ame@example.org\nAction: failed\nStatus: 5.0.0 (undefined status)\n" +
			"Diagnostic-Code: smtp;552 5.0.0 Message rejected\nX-PowerMTA-BounceCategory: quota-issues\n--pm--\n",
			"ame@example.org", "mailboxfull"},
		{"reply under its own heading", "From: MAILER-DAEMON@james.example.net\nTo: s@example.com\nSubject: [BOUNCE]\n" +
			"Content-Type: text/plain\n\nError: Invalid user address\n\nError message below:\n550 - Requested action not taken: no such user here\n\n" +
			"Message details:\n  Subject: hi\n  MAIL FROM: s@example.com\n  RCPT TO: sen@example.org\n  Size (in bytes): 39\n",
			"sen@example.org", "filtered"},
		{"status comment", "From: MAILER-DAEMON@mx.example.net\nTo: s@example.com\nSubject: Returned mail\n" +
			"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nFailed.\n\n" +
			"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822;ko@example.org\n" +
			"Action: failed\nStatus: 5.2.1 (mailbox disabled, not accepting messages)\nDiagnostic-Code: smtp;550 5.2.1 <ko@example.org>... User Unknown\n--b--\n",
			"ko@example.org", "suspend"},
		{"reporting MTA names the provider", "From: postmaster@outlook.com\nTo: s@example.com\nSubject: Undeliverable: hi\n" +
			"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nDelivery has failed.\n\n" +
			"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns;AM0PR01MB0001.eurprd01.prod.outlook.com\n\n" +
			"Final-Recipient: rfc822;rin@example.org\nAction: failed\nStatus: 5.4.300\nDiagnostic-Code: smtp;550 5.4.300 Message expired\n--b--\n",
			"rin@example.org", "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Classify(context.Background(), []byte(strings.ReplaceAll(tt.raw, "\n", "\r\n")), pol)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 {
				t.Fatalf("%d results, want 1: %+v", len(res), res)
			}
			r := res[0]
			if r.Report.Recipient != tt.rcpt || string(r.Verdict.Category) != tt.want {
				t.Errorf("%s %s (%s; %q), want %s %s", r.Report.Recipient, r.Verdict.Category,
					pol.rules.Explain(&r.Report), r.Report.Diagnostic, tt.rcpt, tt.want)
			}
		})
	}
}
