// Package tracking is the open and click tracking plugin ("tracking"): for
// the tenants and classes that opt in, in rules/tracking.lua, it rewrites
// the links of the HTML parts of each message and adds an open pixel, all
// pointing at the tenant's tracking domain (a CNAME to the node's
// --tracking-listen address), and serves those URLs: the pixel, and a 302
// to the original link.
//
// Each URL carries a token signed with HMAC-SHA256 under a key kept in the
// spool directory (tracking.key, made on first start): the token names the
// tenant, message, recipient, class, campaign, the tracking host and, for
// a click, the original URL. A token that does not verify, or that is used
// on another host than the one it names, gets a 404: the redirector never
// sends anyone to a URL it did not sign itself.
//
// Rewriting is an ingest stage that runs before DKIM signs (its order is
// StageOrder, under extension.SignOrder), so the signature covers the
// rewritten body. It changes only http and https links of HTML parts that
// are not attachments; mailto:, tel: and other schemes, and any link that
// is also in the List-Unsubscribe field, are left as they are, and header
// fields are never touched. A message to several recipients shares one
// body, so its tokens name no recipient: its opens and clicks are counted
// per message.
//
// Each recipient's first open and first click emit an event.Opened and an
// event.Clicked; repeats emit nothing. Opens fetched by a machine (Apple
// Mail Privacy Protection's proxies, Gmail's and Yahoo's image proxies)
// and clicks made by security scanners (a HEAD request, a click within
// scanner_window of the delivery, a scanner's network or user agent) are
// flagged with the categories event.MachineOpen and event.ScannerClick
// and deduplicated apart from the human ones, so that a scanner's visit
// neither counts as a reader nor hides the reader's own click. Which
// recipients were seen is kept for dedup_window (30 days by default), in
// memory and in the spool directory's tracking.seen, one line per first
// event, compacted at each start (to the default window): a restart does
// not count them again.
//
// The provider and source IP of an open or click come from the delivered
// event of the recipient, which the plugin remembers for the tracked
// tenants for a day (at most a million recipients); later events name the
// tenant and class only.
package tracking
