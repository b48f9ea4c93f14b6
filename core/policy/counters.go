package policy

import "time"

// Counts are delivery outcomes over a sliding window.
type Counts struct {
	Attempted  int64
	Delivered  int64
	Deferred   int64
	Bounced    int64
	Complained int64
}

// Counters gives a policy read access to the core's live counters, so that a
// rotation strategy can move traffic away from an IP whose deferral or
// bounce rate at a provider rises. Empty strings are wildcards: Counts("",
// "gmail", "", time.Hour) is every source and class towards gmail.
type Counters interface {
	Counts(source, provider string, class string, window time.Duration) Counts
}

// Windows are the sliding windows the core keeps counters for; other
// durations are rounded up to the next of these.
var Windows = []time.Duration{5 * time.Minute, time.Hour, 24 * time.Hour}

// ReputationCounts are what a source IP, tenant or class sent to a
// provider over a window, as the persistent reputation keeps them (see
// core/reputation): attempts and their outcomes, complaints, and the
// first human opens and clicks of each recipient apart from those made by
// image proxies and link scanners.
type ReputationCounts struct {
	Sent, Delivered, Deferred, Bounced, Complained int64
	Opened, Clicked, MachineOpened, ScannerClicked int64
}

// Reputation gives a policy read access to the persistent reputation, kept
// over 1 hour, 24 hours and 7 days across restarts. Kind is "ip",
// "tenant", "class" or "provider"; an empty provider is every provider
// (for "provider", name is the provider).
type Reputation interface {
	Reputation(kind, name, provider string, window time.Duration) ReputationCounts
}
