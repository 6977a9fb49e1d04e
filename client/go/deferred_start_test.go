package rbmguard

import (
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The status a deferred guard reports before its first run, filled from the contract's template
// (test/workflows/contract.test.ts checks that template against the workflow's own answer).
func TestStatusBeforeFirstRunFillsTheTemplate(t *testing.T) {
	id := GuardWorkflowID("Acme", "m-1")
	in := startInput{AgentID: "Acme", MessageID: "m-1", Message: &struct {
		StaleAt string `json:"staleAt"`
	}{StaleAt: "2026-12-04T10:21:12.013Z"}}
	// Sub-millisecond nanos: toISOString() keeps the milliseconds and drops the rest.
	startedAt := time.Date(2026, 12, 4, 11, 11, 12, 13_999_999, time.FixedZone("CET", 3600))
	s, err := statusFromStart(id, in, startedAt)
	if err != nil {
		t.Fatal(err)
	}
	want := GuardStatus{
		WorkflowID: id, AgentID: "Acme", MessageID: "m-1", State: "AWAITING_DELIVERY", Outcome: nil,
		StaleAt: ptr("2026-12-04T10:21:12.013Z"), RevokeRounds: 0,
		Timeline: []TimelineEntry{{At: "2026-12-04T10:11:12.013Z", State: "AWAITING_DELIVERY", Event: "TRACKED", Reason: "guarding until 2026-12-04T10:21:12.013Z"}},
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got  %+v\nwant %+v", s, want)
	}
	placeholders := slices.Sorted(maps.Keys(C.DeferredStart.StatusBeforeFirstRun.Placeholders))
	if filled := slices.Sorted(maps.Keys(startValues(id, in, startedAt))); !slices.Equal(filled, placeholders) {
		t.Fatalf("fills %v, the contract has %v", filled, placeholders)
	}
}

func TestFillTemplateLikeTypeScript(t *testing.T) {
	template := map[string]any{"a": []any{"{x}-{y}", 1.0, nil, true}, "b": map[string]any{"c": "{unknown} {x}"}}
	got := fillTemplate(template, map[string]string{"x": "{y}", "y": "2"})
	// One pass, as String.replace: "{y}" brought in by x is not filled again; an unknown placeholder stays.
	want := map[string]any{"a": []any{"{y}-2", 1.0, nil, true}, "b": map[string]any{"c": "{unknown} {y}"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%v", got)
	}
	if template["a"].([]any)[0] != "{x}-{y}" {
		t.Fatal("the template changed")
	}
}

func TestStartDelay(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) TrackedMessage { return TrackedMessage{StaleAt: ISO(now.Add(d))} }
	minDelay := time.Duration(C.DeferredStart.MinDelayMs) * time.Millisecond
	if got := startDelay(at(10*time.Minute), now); got != 10*time.Minute {
		t.Fatalf("10m: %v", got)
	}
	if got := startDelay(at(minDelay), now); got != minDelay {
		t.Fatalf("at the minimum: %v", got)
	}
	if got := startDelay(at(minDelay-time.Millisecond), now); got != 0 {
		t.Fatalf("under the minimum: %v", got)
	}
	// Whole milliseconds, as Date.now(): 0.9 ms later is still the same millisecond.
	if got := startDelay(at(minDelay), now.Add(900*time.Microsecond)); got != minDelay {
		t.Fatalf("sub-millisecond now: %v", got)
	}
	if got := startDelay(at(-time.Minute), now); got != 0 {
		t.Fatalf("past: %v", got)
	}
	sends := at(10 * time.Minute)
	sends.Send = &SendText{Text: "hi"}
	if got := startDelay(sends, now); got != 0 {
		t.Fatalf("a guard that sends: %v", got)
	}
}

func TestMayNotHaveRun(t *testing.T) {
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	info := func(exec time.Time, length int64) *workflowpb.WorkflowExecutionInfo {
		return &workflowpb.WorkflowExecutionInfo{StartTime: timestamppb.New(start), ExecutionTime: timestamppb.New(exec), HistoryLength: length}
	}
	first := int64(C.DeferredStart.StatusBeforeFirstRun.FirstPage)
	if !mayNotHaveRun(info(start.Add(time.Hour), 1)) || !mayNotHaveRun(info(start.Add(time.Hour), first-1)) {
		t.Fatal("a deferred guard with a short history may not have run")
	}
	if mayNotHaveRun(info(start.Add(time.Hour), first)) || mayNotHaveRun(info(start, 1)) || mayNotHaveRun(info(start.Add(time.Microsecond), 1)) {
		t.Fatal("a long history, or no start delay (to the millisecond): it ran, or a worker runs it")
	}
}
