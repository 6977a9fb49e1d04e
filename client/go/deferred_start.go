package rbmguard

// Deferred starts, as client/deferred-start.ts says them (the contract's deferredStart carries its
// numbers and template): a guard that only waits for its deadline starts with a start delay until it
// instead of a deadline timer (one billable action less; GuardInput.deferred). Such a guard runs no
// workflow task before its deadline, so no worker answers a status query: its status then comes from
// its start input.

import (
	"context"
	"encoding/json"
	"regexp"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
)

// startDelay is how long a guard for m waits before its first workflow task, or 0 (start now). A guard
// that sends the RBM message itself must run now: only a guard that waits is deferred.
func startDelay(m TrackedMessage, now time.Time) time.Duration {
	if m.Send != nil {
		return 0
	}
	staleAt, ok := ParseDateTime(m.StaleAt)
	if !ok {
		return 0
	}
	// Whole milliseconds, as TypeScript's Date.parse(staleAt) - Date.now(): the same answer at the boundary.
	delayMs := staleAt.UnixMilli() - now.UnixMilli()
	if delayMs < C.DeferredStart.MinDelayMs {
		return 0
	}
	return time.Duration(delayMs) * time.Millisecond
}

// mayNotHaveRun: what Describe tells of an open guard, started deferred (execution time ≠ start time)
// and short enough to have run nothing yet.
func mayNotHaveRun(info *workflowpb.WorkflowExecutionInfo) bool {
	// Milliseconds, as the TypeScript client compares them; a missing time reads as the epoch.
	deferred := info.GetExecutionTime().AsTime().UnixMilli() != info.GetStartTime().AsTime().UnixMilli()
	return deferred && info.GetHistoryLength() < int64(C.DeferredStart.StatusBeforeFirstRun.FirstPage)
}

// startInput is the part of a guard's start input its status before the first run is made of.
type startInput struct {
	AgentID   string `json:"agentId"`
	MessageID string `json:"messageId"`
	Message   *struct {
		StaleAt string `json:"staleAt"`
	} `json:"message"`
}

// statusBeforeFirstRun is the status of a deferred guard that has run no workflow task yet (in its
// start delay, or past it in a deadline wave's backlog), from its start input; ok=false once it ran.
func (g *GuardClient) statusBeforeFirstRun(ctx context.Context, id string) (s GuardStatus, ok bool, err error) {
	it := g.c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var in startInput
	var startedAt time.Time
	for n := 0; n < C.DeferredStart.StatusBeforeFirstRun.FirstPage && it.HasNext(); n++ {
		e, err := it.Next()
		if err != nil {
			return s, false, err
		}
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			return s, false, nil
		}
		if n > 0 {
			continue
		}
		a := e.GetWorkflowExecutionStartedEventAttributes()
		if a == nil || e.GetEventTime() == nil || len(a.GetInput().GetPayloads()) == 0 {
			return s, false, nil
		}
		if err := g.dc.FromPayloads(a.GetInput(), &in); err != nil {
			return s, false, err
		}
		startedAt = e.GetEventTime().AsTime()
	}
	// Started by an RBM event, without its message: never deferred, a worker runs it.
	if in.Message == nil {
		return s, false, nil
	}
	s, err = statusFromStart(id, in, startedAt)
	return s, err == nil, err
}

// startValues fills each of the contract's placeholders (deferredStart.statusBeforeFirstRun.placeholders).
func startValues(id string, in startInput, startedAt time.Time) map[string]string {
	v := map[string]string{"workflowId": id, "agentId": in.AgentID, "messageId": in.MessageID, "startedAt": ISO(startedAt)}
	if in.Message != nil {
		v["staleAt"] = in.Message.StaleAt
	}
	return v
}

// statusFromStart is the contract's template filled from a guard's start.
func statusFromStart(id string, in startInput, startedAt time.Time) (GuardStatus, error) {
	var s GuardStatus
	b, err := json.Marshal(fillTemplate(C.DeferredStart.StatusBeforeFirstRun.Template, startValues(id, in, startedAt)))
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

var placeholderRe = regexp.MustCompile(`\{(\w+)\}`)

// fillTemplate replaces each `{name}` in every string of a decoded JSON value, as client/deferred-start.ts's
// fillTemplate does (in one pass: a filled value is never read for placeholders; an unknown one stays).
func fillTemplate(template any, values map[string]string) any {
	switch t := template.(type) {
	case string:
		return placeholderRe.ReplaceAllStringFunc(t, func(whole string) string {
			if v, ok := values[whole[1:len(whole)-1]]; ok {
				return v
			}
			return whole
		})
	case []any:
		out := make([]any, len(t))
		for i, v := range t {
			out[i] = fillTemplate(v, values)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			out[k] = fillTemplate(v, values)
		}
		return out
	}
	return template
}
