package eventtest

import (
	"testing"

	"corriere/core/event"
)

func TestRecorder(t *testing.T) {
	var r Recorder
	bus := r.Bus()
	bus.Emit(&event.Event{Type: event.Delivered, Recipient: "a@x"})
	bus.Emit(&event.Event{Type: event.Bounced, Recipient: "b@x"})
	bus.Emit(&event.Event{Type: event.Delivered, Recipient: "c@x"})
	if n := len(r.All()); n != 3 {
		t.Errorf("All: %d events, want 3", n)
	}
	if d := r.Of(event.Delivered); len(d) != 2 || d[1].Recipient != "c@x" {
		t.Errorf("Of(delivered) = %+v", d)
	}
	if r.Count(event.Delivered, "") != 2 || r.Count(event.Delivered, "a@x") != 1 || r.Count(event.Expired, "") != 0 {
		t.Error("Count disagrees with what was emitted")
	}
}
