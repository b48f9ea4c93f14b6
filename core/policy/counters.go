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
