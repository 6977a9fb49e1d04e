package rbmguard

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

// The rule as client/same-message.ts says it, without a server (the cross-language test drives Track).
func heldAt(t *testing.T, r TrackRequest, at time.Time) map[string]any {
	t.Helper()
	m, err := ParseTrackInput(r, at)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	b, _ := json.Marshal(m)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSameMessageSaysWhatDiffers(t *testing.T) {
	first := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	staleAt, sentAt := first.Add(10*time.Minute), first
	r := TrackRequest{AgentID: "agent", MessageID: "m1", Phone: "+14155550100", StaleAt: &staleAt, SentAt: &sentAt, TrafficType: "AUTHENTICATION", FallbackText: "code 1"}
	held := heldAt(t, r, first)
	later := first.Add(11 * time.Minute)
	for _, c := range []struct {
		name string
		edit func(*TrackRequest)
		want []string
	}{
		{"same", func(*TrackRequest) {}, nil},
		{"an OTP's own priority", func(x *TrackRequest) { x.Priority = ptr(1) }, nil},
		{"priority", func(x *TrackRequest) { x.Priority = ptr(3) }, []string{"priority"}},
		{"phone", func(x *TrackRequest) { x.Phone = "+14155550101" }, []string{"phone"}},
		{"text and deadline", func(x *TrackRequest) { x.FallbackText, x.StaleAt = "code 2", &later }, []string{"deadline", "fallback text"}},
		{"not valid as of the first track", func(x *TrackRequest) {
			s, a := first.Add(time.Hour), first.Add(70*time.Minute)
			x.SentAt, x.StaleAt = &s, &a
		}, []string{anyDifference}},
	} {
		x := r
		c.edit(&x)
		if got := messageDifferences(x, held); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	delete(held, "priority") // a guard tracked before messages carried one: matched on the rest
	if got := messageDifferences(r, held); got != nil {
		t.Errorf("no priority: %q", got)
	}
}

func TestSameMessageStaleInResolvesFromTheFirstTrack(t *testing.T) {
	first := time.Now().Add(-time.Minute)
	r := TrackRequest{AgentID: "agent", MessageID: "m1", Phone: "+14155550100", StaleIn: "10m", FallbackText: "code 1"}
	held := heldAt(t, r, first)
	if got := messageDifferences(r, held); got != nil {
		t.Errorf("resent staleIn: %q", got)
	}
	r.StaleIn = "11m"
	if got := messageDifferences(r, held); !slices.Equal(got, []string{"deadline"}) {
		t.Errorf("another staleIn: %q", got)
	}
}

func TestDifferentMessageErrorIsErrDifferentMessage(t *testing.T) {
	var err error = &DifferentMessageError{WorkflowID: "rbm-guard/agent/m1", Differences: []string{"phone"}}
	if !errors.Is(err, ErrDifferentMessage) || err.Error() != "rbm-guard/agent/m1: a guard for this message id holds a different message (phone)" {
		t.Fatalf("%v", err)
	}
	if gone := (&DifferentMessageError{WorkflowID: "rbm-guard/agent/m1"}).Error(); gone != "rbm-guard/agent/m1: this message id was guarded before, and that guard's history is gone" {
		t.Fatal(gone)
	}
}
