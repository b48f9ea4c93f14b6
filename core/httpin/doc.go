// Package httpin is Corriere's HTTP injection API: POST /api/inject/v1 on
// a listener of its own (--http-listen), described in openapi.yaml.
//
// A request authenticates with a tenant's API key (Authorization: Bearer
// <tenant>.<secret>; the tenant file holds only its SHA-256 hash). Its
// JSON body names the envelope sender, the recipients with their
// substitution values, and the content: a raw RFC 5322 message, or parts
// (subject, text, HTML, header fields, attachments) that the package
// assembles into MIME. Every text is a template rendered per recipient, so
// each recipient gets a message of its own; templates may read values and
// branch on them, never call functions.
//
// The messages go to ingest.Server.Submit, the path SMTP's DATA takes: the
// tenant's sender domains, the recipient checks (suppression), Classify,
// Rewrite, the stages (DKIM), and a synced spool write. The answer is
// written only after every accepted message is on disk, with one queue id
// per message, as SMTP's 250 is. A request is refused as a whole, before
// anything is spooled, when it is malformed (400, naming the field), its
// key is unknown (401), or its body is larger than the limit (413).
package httpin
