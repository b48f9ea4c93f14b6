// Package demo runs "corriere demo": a whole Corriere node against the
// simulated mail internet of core/sim, on loopback, with a realistic mixed
// workload, live progress and an accounting of every message at the end.
//
// Run prepares a workspace (a temporary directory, or Options.KeepDir): a
// copy of the policy (scripts/ and rules/ as shipped) plus two demo tenants
// with passwords made for the run, of which only bcrypt hashes are written
// — "negozio", an online shop sending from negozio-esempio.it, and
// "ricette", a platform through which doctors write from their own
// practices' domains — and one source IP (127.0.0.8) put on day 1 of a
// warm-up schedule. It then starts the simulator, a receiver for the
// senders' domains, and a node (the same node.Start that "corriere serve"
// runs) bound to the source addresses 127.0.0.2–8, and submits the workload
// over SMTP with AUTH from several connections: a newsletter campaign in
// batches, order confirmations and shipping notices, verification codes
// and electronic prescriptions (critical by the tenants' classify rules),
// and doctors' personal mail, including recipients that meet every
// behaviour of the world (unknown users, full mailboxes, greylisting,
// nolisting, null MX, NXDOMAIN, the tarpit, rate and connection limits).
//
// TLS. The node trusts the simulator's certificate as its only authority,
// fetches the MTA-STS policies from the simulator's policy server and
// takes the simulator's DNS server as its validating resolver, so mail to
// the world's MTA-STS and DANE domains goes over verified TLS, and mail to
// the attacked domain (an enforce policy, STARTTLS stripped on the path)
// waits, deferred with 451 4.7.10, until it expires with a DSN: the summary
// shows it was never sent in clear, and the day's TLS-RPT figures.
//
// Ports. Corriere reaches every MX host on one port, the simulator's MX
// port; the senders' domains resolve to 127.0.0.1 in the default world, so
// the receiver listens on 127.0.0.1 at that same port, and the simulator is
// told to send its later bounces and complaint reports there too
// (Options.ReturnPort). One listener thus gets Corriere's DSNs to the shop
// and the providers' asynchronous mail.
//
// Time. So that a campaign, its retries and its suspensions fit in well
// under a minute, the node retries after 2s, 5s and 10s, recipients expire
// after Options.MaxAge, the demo tenants' on_response hooks (in the
// workspace only) divide the delays the default policy asks for by 300 and
// cap them at 10s, and the simulated providers' clock runs fifteen times
// as fast. The run ends when every recipient is settled and the providers'
// late bounces have had time to arrive, or after Options.Duration.
//
// Accounting. Every recipient acknowledged with 250 must end delivered
// (and recorded by the simulated provider with its Message-ID), bounced or
// expired with a DSN queued to its sender, suppressed, or still in the
// spool (read back after shutdown) with its last reply as the reason.
// Anything else is listed in Report.Unaccounted. Each recipient address
// occurs once in the workload, so the events of a recipient identify its
// message.
package demo
