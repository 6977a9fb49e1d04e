package rbmguard

// Cross-language: driven by test/client/cross-language.test.ts (the TypeScript worker, the RBM simulator and
// the SMS sink), which passes what to do in RBM_GUARD_XLANG_* variables. Skipped when run alone.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
)

func xlang(t *testing.T, need string) *GuardClient {
	if os.Getenv("RBM_GUARD_XLANG_ADDRESS") == "" || os.Getenv(need) == "" {
		t.Skip("run by test/client/cross-language.test.ts")
	}
	c, err := Dial(os.Getenv("RBM_GUARD_XLANG_ADDRESS"), "default", os.Getenv("RBM_GUARD_XLANG_KEYS"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return NewGuardClient(c, os.Getenv("RBM_GUARD_XLANG_TASK_QUEUE"))
}

func untilOutcome(t *testing.T, g *GuardClient, id string) GuardStatus {
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := g.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Outcome != nil || time.Now().After(deadline) {
			return s
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestCrossLanguageGoTracks(t *testing.T) {
	g := xlang(t, "RBM_GUARD_XLANG_MESSAGE_ID")
	ctx := context.Background()
	r := TrackRequest{
		AgentID: os.Getenv("RBM_GUARD_XLANG_AGENT_ID"), MessageID: os.Getenv("RBM_GUARD_XLANG_MESSAGE_ID"), Phone: os.Getenv("RBM_GUARD_XLANG_PHONE"),
		StaleIn: "1s", FallbackText: os.Getenv("RBM_GUARD_XLANG_TEXT"), TrafficType: "AUTHENTICATION",
		Policy: &PolicyOverrides{GraceMs: ptr[int64](1500), LingerMs: ptr[int64](2500), RevokeAttempts: ptr[int64](2), MaxRevokeRounds: ptr[int64](2), FallbackAttempts: ptr[int64](4)},
	}
	res, err := g.Track(ctx, r)
	if err != nil || !res.Created {
		t.Fatalf("track: %+v %v", res, err)
	}
	again, err := g.Track(ctx, r)
	if err != nil || again.Created || again.RunID != res.RunID {
		t.Fatalf("track again: %+v %v", again, err)
	}
	s := untilOutcome(t, g, res.WorkflowID)
	if s.Outcome == nil || *s.Outcome != "FALLBACK_SENT" {
		t.Fatalf("status %+v", s)
	}
	var states []string
	for _, e := range s.Timeline {
		states = append(states, e.State)
	}
	if states[0] != "AWAITING_DELIVERY" || !slices.Contains(states, "REVOKING") || states[len(states)-1] != "FALLBACK_SENT" {
		t.Fatalf("timeline %v", states)
	}
	out, _ := json.Marshal(map[string]any{"workflowId": res.WorkflowID, "outcome": *s.Outcome, "states": states})
	fmt.Println("XLANG " + string(out))
}

func TestCrossLanguageGoReads(t *testing.T) {
	g := xlang(t, "RBM_GUARD_XLANG_READ_ID")
	ctx := context.Background()
	id := os.Getenv("RBM_GUARD_XLANG_READ_ID")
	s, err := g.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if s.WorkflowID != id || s.Outcome == nil || *s.Outcome != os.Getenv("RBM_GUARD_XLANG_EXPECT_OUTCOME") || s.Timeline[len(s.Timeline)-1].State != *s.Outcome {
		t.Fatalf("status %+v", s)
	}
	listed, err := g.List(ctx, ListFilter{AgentID: s.AgentID, Outcome: *s.Outcome, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(listed, func(x GuardSummary) bool { return x.WorkflowID == id }) {
		t.Fatalf("%s not listed", id)
	}
	out, _ := json.Marshal(map[string]any{"workflowId": id, "outcome": *s.Outcome})
	fmt.Println("XLANG " + string(out))
}

// Tracks each body of RBM_GUARD_XLANG_CASES again (their guards exist) and reports accepted or refused.
// The bodies are the wire JSON: encoding/json matches agentId to AgentID and so on (case-insensitive).
func TestCrossLanguageSameMessage(t *testing.T) {
	g := xlang(t, "RBM_GUARD_XLANG_CASES")
	var bodies []TrackRequest
	if err := json.Unmarshal([]byte(os.Getenv("RBM_GUARD_XLANG_CASES")), &bodies); err != nil {
		t.Fatal(err)
	}
	out := []map[string]any{}
	for _, r := range bodies {
		res, err := g.Track(context.Background(), r)
		var different *DifferentMessageError
		switch {
		case err == nil:
			out = append(out, map[string]any{"accepted": true, "created": res.Created, "runId": res.RunID, "differences": nil})
		case errors.As(err, &different) && errors.Is(err, ErrDifferentMessage):
			out = append(out, map[string]any{"accepted": false, "created": nil, "runId": nil, "differences": different.Differences})
		default:
			t.Fatalf("track %s: %v", r.MessageID, err)
		}
	}
	b, _ := json.Marshal(out)
	fmt.Println("XLANG " + string(b))
}

// Tracks a message that waits a minute: Go starts its guard deferred (a start delay, deferred in the
// input), and Status answers at once from the start input, with no worker having run the guard.
func TestCrossLanguageGoTracksDeferred(t *testing.T) {
	g := xlang(t, "RBM_GUARD_XLANG_DEFER_MESSAGE_ID")
	ctx := context.Background()
	res, err := g.Track(ctx, TrackRequest{
		AgentID: os.Getenv("RBM_GUARD_XLANG_AGENT_ID"), MessageID: os.Getenv("RBM_GUARD_XLANG_DEFER_MESSAGE_ID"), Phone: os.Getenv("RBM_GUARD_XLANG_PHONE"),
		StaleIn: "60s", FallbackText: os.Getenv("RBM_GUARD_XLANG_TEXT"), TrafficType: "AUTHENTICATION",
		Policy: &PolicyOverrides{GraceMs: ptr[int64](1500), LingerMs: ptr[int64](2500), RevokeAttempts: ptr[int64](2), MaxRevokeRounds: ptr[int64](2), FallbackAttempts: ptr[int64](4)},
	})
	if err != nil || !res.Created {
		t.Fatalf("track: %+v %v", res, err)
	}
	desc, err := g.c.DescribeWorkflowExecution(ctx, res.WorkflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	if info := desc.GetWorkflowExecutionInfo(); info.GetExecutionTime().AsTime().Sub(info.GetStartTime().AsTime()) < 50*time.Second {
		t.Fatalf("no start delay: %+v", info)
	}
	it := g.c.GetWorkflowHistory(ctx, res.WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	started, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	var in GuardInput
	if err := g.dc.FromPayloads(started.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil || !in.Deferred {
		t.Fatalf("input %+v %v", in, err)
	}
	s, err := g.Status(ctx, res.WorkflowID)
	if err != nil {
		t.Fatal(err)
	}
	if s.WorkflowID != res.WorkflowID || s.State != "AWAITING_DELIVERY" || s.Outcome != nil || len(s.Timeline) != 1 || s.Timeline[0].Event != "TRACKED" {
		t.Fatalf("status %+v", s)
	}
	out, _ := json.Marshal(map[string]any{"workflowId": res.WorkflowID, "status": s})
	fmt.Println("XLANG " + string(out))
}

// Prints the status of RBM_GUARD_XLANG_STATUS_ID as Status returns it (the caller compares).
func TestCrossLanguageGoStatus(t *testing.T) {
	g := xlang(t, "RBM_GUARD_XLANG_STATUS_ID")
	id := os.Getenv("RBM_GUARD_XLANG_STATUS_ID")
	s, err := g.Status(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(map[string]any{"workflowId": id, "status": s})
	fmt.Println("XLANG " + string(out))
}

// Cancels RBM_GUARD_XLANG_CANCEL_ID (a deferred guard in its start delay: the update wakes it).
func TestCrossLanguageGoCancels(t *testing.T) {
	g := xlang(t, "RBM_GUARD_XLANG_CANCEL_ID")
	id := os.Getenv("RBM_GUARD_XLANG_CANCEL_ID")
	s, err := g.Cancel(context.Background(), id, "login completed")
	if err != nil {
		t.Fatal(err)
	}
	if s.Outcome == nil || *s.Outcome != "CANCELLED" {
		t.Fatalf("cancel: %+v", s)
	}
	out, _ := json.Marshal(map[string]any{"workflowId": id, "outcome": *s.Outcome})
	fmt.Println("XLANG " + string(out))
}
