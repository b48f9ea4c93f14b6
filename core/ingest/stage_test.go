package ingest

import (
	"context"
	"slices"
	"sync"
	"testing"

	"corriere/core/extension"
	"corriere/core/message"
)

// namedStage records its name in log when it processes a message.
type namedStage struct {
	name string
	log  *stageLog
}

type stageLog struct {
	mu    sync.Mutex
	names []string
}

func (s *namedStage) Process(context.Context, *message.Message) error {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	s.log.names = append(s.log.names, s.name)
	return nil
}

// orderedStage is a namedStage with a StageOrder.
type orderedStage struct {
	namedStage
	order int
}

func (s *orderedStage) StageOrder() int { return s.order }

var _ extension.StageOrderer = (*orderedStage)(nil)

// TestStagesRunInStageOrder: stages run by StageOrder, a signing stage
// last, and stages of equal order in the order given.
func TestStagesRunInStageOrder(t *testing.T) {
	log := &stageLog{}
	stages := []extension.Stage{
		&orderedStage{namedStage{"sign", log}, extension.SignOrder},
		&namedStage{"first plain", log},
		&orderedStage{namedStage{"early", log}, -1},
		&namedStage{"second plain", log},
	}
	_, addr, _, col := startServer(t, serverSetup{insecureAuth: true, stages: stages})
	runDialogue(t, addr, dialogue(authAcme, []string{
		"c -> MAIL FROM:<news@acme.example>", "c <- 250",
		"c -> RCPT TO:<a@dest.example>", "c <- 250",
		"c -> DATA", "c <- 354", "c -> Subject: hi", "c ->", "c -> body", "c -> .", "c <- 250",
		"c -> QUIT", "c <- 221",
	}))
	if len(col.metas) != 1 {
		t.Fatalf("queued %d messages; want 1", len(col.metas))
	}
	if want := []string{"early", "first plain", "second plain", "sign"}; !slices.Equal(log.names, want) {
		t.Errorf("stages ran %v; want %v", log.names, want)
	}
}
