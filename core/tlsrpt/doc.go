// Package tlsrpt implements the sending side of SMTP TLS Reporting (RFC
// 8460): a Recorder aggregates, per UTC day and per policy domain, the
// outcome of every session the delivery opened under a DANE or MTA-STS
// policy, and Send turns a day's results into one JSON report per domain,
// delivered to the addresses the domain publishes in its _smtp._tls TXT
// record ("v=TLSRPTv1; rua=mailto:...,https://...").
//
// A mailto: report is a multipart/report message (report-type "tlsrpt")
// with the gzipped JSON attached, handed to Options.Mail, which the node
// points at its own queue so that reports travel like any other mail. An
// https: report is POSTed gzipped as application/tlsrpt+gzip, with the
// certificate validated against Options.RootCAs. A day's results stay on
// disk (Options.Path) until its reports are sent, so a restart loses
// nothing; Run sends yesterday's reports shortly after midnight UTC, and
// after a restart those of any day missed. A report that cannot be
// delivered (no TLSRPT record, a refused POST) is logged and dropped: TLS
// reporting is best effort and must not hold results forever.
package tlsrpt
