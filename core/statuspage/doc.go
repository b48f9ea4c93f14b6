// Package statuspage renders the node's status page, which the admin
// listener serves at "/": the queue by provider and class, the lanes with
// their depth, rate and limits, the suspensions and their reasons, the
// warm-up of new IPs, the reputation of each provider, source IP, tenant
// and class with small charts of the last day, and the policy generation
// with the last reload error.
//
// Everything is rendered on the server, charts included (inline SVG), and
// embedded in the binary: the page loads nothing from elsewhere, so it
// works on a machine without Internet access. A short script fetches the
// live part again (/status/live) every Options.Refresh and swaps it in;
// without JavaScript the page is still complete, only static. Who may see
// it is the admin listener's business (core/admin: loopback, or a login
// with the admin token).
package statuspage
