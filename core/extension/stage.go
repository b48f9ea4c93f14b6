package extension

import (
	"context"

	"corriere/core/message"
)

// Stage is a step every accepted message passes after the policy's
// Rewrite and before it is spooled (DKIM signing is one). Process may
// change m. An error refuses the message with 451 4.3.0, so the client
// retries; ctx ends when the policy deadline of the message
// (ingest.Options.PolicyTimeout) passes.
type Stage interface {
	Process(ctx context.Context, m *message.Message) error
}

// StageOrderer is implemented by stages that must run at a given point:
// lower orders run first, stages without it have order 0, and stages of
// equal order keep the order of the plugins. A signing stage runs last
// (SignOrder), after every stage that changes the message.
type StageOrderer interface {
	StageOrder() int
}

// SignOrder is the order of stages that sign the message.
const SignOrder = 1000
