// Package bounce reads bounces, feedback reports and automatic replies, and
// classifies each failed recipient into the bounce taxonomy that Corriere
// shares with Sisimai ("userunknown", "mailboxfull", "blocked",
// "spamdetected", ...), with a hard/soft decision.
//
// # Parsing
//
// Parse turns a raw message into a Report: its kind and one
// policy.BounceReport per recipient. It understands
//
//   - RFC 3464 delivery status notifications (multipart/report with a
//     message/delivery-status part, or the same fields pasted into text),
//     failed, delayed and successful ones;
//   - bounces written in prose by qmail, Exim, old Sendmail, Exchange,
//     webmail providers and filtering gateways: it finds the failed
//     recipients (X-Failed-Recipients, lines that list addresses, SMTP
//     transcripts) and the lines that explain each failure;
//   - Amazon SES notifications in JSON;
//   - RFC 5965 feedback reports and older complaint formats (kind "arf");
//   - vacation and other automatic replies (kind "autoreply").
//
// A message that is none of these yields an empty Kind. Parsing is lenient
// (broken MIME, lost headers, unknown charsets, CRLF or LF) and bounded: it
// reads at most the first 8 MiB of a message and 1 MiB of each part, and
// never panics. For each failure it extracts the SMTP reply code and the
// enhanced status code quoted in the diagnostic, preferring a precise quoted
// code to a vague declared one (X.0.0, 4.4.7), and notes which SMTP command
// failed ("(in reply to RCPT TO command)") when the bounce says it
// elsewhere.
//
// # Classifying
//
// Rules, loaded from rules/bounces.lua by LoadRulesFile (or decoded from a
// Lua value by RulesFromLua), decide the category of a report: the rules are
// tried in order and the first that matches wins. The file documents its
// own language. Rules are immutable and safe for concurrent use; Classify
// scans the diagnostic once (Aho-Corasick over every fragment of every
// rule) and does not allocate. The Lua engine exposes Classify to scripts,
// and its default on_bounce hook is Classify itself.
//
// A rule may be limited to a provider (host): the recipient's domain, the
// Remote-MTA (or the server a bounce's prose names, or else the
// Reporting-MTA) must be one of its domains. Parse keeps in the diagnostic
// what the sending MTA says besides the reply: the comment of a DSN's
// Status field, PowerMTA's X-PowerMTA-BounceCategory, au's verdict sentence
// and X-SPASIGN mark.
//
// ReadExpectations, EvaluateFile and ScoreOutcomes measure the rules on a
// labelled corpus (agreement, per-category precision and recall,
// confusions), and Fold splits it for cross-validation; "corriere bounce
// eval" prints them.
//
// Classify (the function) is the single path from raw message to verdicts:
// Parse, then policy.Policy.OnBounce for each failure. The bounce listener
// and "corriere bounce classify" both use it, and FormatLine prints its
// results.
package bounce
