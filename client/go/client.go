package rbmguard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

var (
	saAgent   = temporal.NewSearchAttributeKeyKeyword("RbmAgentId")
	saStaleAt = temporal.NewSearchAttributeKeyTime("RbmStaleAt")
)

// GuardInput is the workflow input.
type GuardInput struct {
	AgentID   string          `json:"agentId"`
	MessageID string          `json:"messageId"`
	Rules     int             `json:"rules"`
	Message   *TrackedMessage `json:"message,omitempty"`
	// Deferred: started with a start delay until its deadline, no deadline timer (deferred_start.go).
	Deferred bool `json:"deferred,omitempty"`
}

// TimelineEntry is one row of a guard's story.
type TimelineEntry struct {
	At     string `json:"at"`
	State  string `json:"state"`
	Event  string `json:"event"`
	Reason string `json:"reason"`
}

// GuardStatus is what the status query, the updates and the result return.
type GuardStatus struct {
	WorkflowID   string          `json:"workflowId"`
	AgentID      string          `json:"agentId"`
	MessageID    string          `json:"messageId"`
	State        string          `json:"state"`
	Outcome      *string         `json:"outcome"`
	StaleAt      *string         `json:"staleAt"`
	RevokeRounds int             `json:"revokeRounds"`
	Timeline     []TimelineEntry `json:"timeline"`
}

// TrackResult says which guard guards the message. Created: this call started it, or gave its message
// to a guard an early RBM event started (the HTTP API's 201); AlreadyClosed: it had ended (RunID "").
type TrackResult struct {
	WorkflowID    string
	RunID         string
	Created       bool
	AlreadyClosed bool
}

// GuardSummary is one guard in a list.
type GuardSummary struct {
	WorkflowID string
	State      string
	Outcome    string
	AgentID    string
	StaleAt    *time.Time
	StartTime  time.Time
	CloseTime  *time.Time
}

// GuardClient tracks and reads guards. The client must carry DataConverter(codec); Track reads a
// guard's history with it too (Dial's client says which it carries; otherwise WithDataConverter).
type GuardClient struct {
	c          client.Client
	taskQueue  string
	dc         converter.DataConverter
	deferStart bool
}

// NewGuardClient: taskQueue "" means the contract's default. It starts guards deferred (WithDeferStart).
func NewGuardClient(c client.Client, taskQueue string) *GuardClient {
	if taskQueue == "" {
		taskQueue = C.DefaultTaskQueue
	}
	g := &GuardClient{c: c, taskQueue: taskQueue, dc: converter.GetDefaultDataConverter(), deferStart: true}
	if d, ok := c.(carriesConverter); ok {
		g.dc = d.DataConverter()
	}
	return g
}

// Dial connects to Temporal with the payload codec for keys (RBM_GUARD_ENCRYPTION_KEYS-style text).
func Dial(address, namespace, keys string) (client.Client, error) {
	codec, err := NewEncryptionCodecFromText(keys)
	if err != nil {
		return nil, err
	}
	dc := DataConverter(codec)
	c, err := client.Dial(client.Options{HostPort: address, Namespace: namespace, DataConverter: dc})
	if err != nil {
		return nil, err
	}
	return dialedClient{Client: c, dc: dc}, nil
}

// WithDeferStart: on (the default), Track starts a guard that only waits for its deadline with a start
// delay until it instead of a deadline timer (one billable action less on every path; GuardInput.deferred).
// Its first workflow task then runs at the deadline, or at once when an RBM event, a cancel or an extend
// reaches it; Status answers from its start input until then. Off starts every guard at once.
func (g *GuardClient) WithDeferStart(on bool) *GuardClient {
	cp := *g
	cp.deferStart = on
	return &cp
}

// Track starts the guard of a sent message, or finds the one already guarding it. A
// *DifferentMessageError (errors.Is ErrDifferentMessage) when that guard holds another message under this id.
func (g *GuardClient) Track(ctx context.Context, r TrackRequest) (TrackResult, error) {
	m, err := ParseTrackInput(r, time.Now())
	if err != nil {
		return TrackResult{}, err
	}
	id := GuardWorkflowID(m.AgentID, m.MessageID)
	staleAt, _ := ParseDateTime(m.StaleAt)
	fallback := "none"
	if m.Fallback != nil {
		fallback = m.Fallback.Channel
	}
	var delay time.Duration
	if g.deferStart {
		delay = startDelay(m, time.Now())
	}
	run, err := g.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                g.taskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(saAgent.ValueSet(m.AgentID), saStaleAt.ValueSet(staleAt)),
		Priority:                                 temporal.Priority{PriorityKey: m.Priority}, // in a deadline wave, an OTP's tasks before a promotion's
		StaticSummary:                            fmt.Sprintf("RBM %s from %s, stale at %s, fallback: %s, priority %d", strings.ToLower(m.TrafficType), m.AgentID, m.StaleAt, fallback, m.Priority),
		StartDelay:                               delay,
	}, C.WorkflowType, GuardInput{AgentID: m.AgentID, MessageID: m.MessageID, Rules: C.GuardRules, Message: &m, Deferred: delay > 0})
	if err == nil {
		return TrackResult{WorkflowID: id, RunID: run.GetRunID(), Created: true}, nil
	}
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if !errors.As(err, &started) {
		return TrackResult{}, err
	}
	// The guard exists: tracked before, or started by an early RBM event. Hand it the message (a no-op
	// if it has one; the first one a guard gets is the one it keeps); a closed guard is never reopened.
	// Then the rule every entry point shares (same_message.go): it must hold this message.
	runID := ""
	var nf *serviceerror.NotFound
	if err := g.c.SignalWorkflow(ctx, id, "", C.Signals.Track.Name, m); err != nil {
		if !errors.As(err, &nf) {
			return TrackResult{}, err
		}
	} else if desc, err := g.c.DescribeWorkflowExecution(ctx, id, ""); err == nil {
		runID = desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	} else if !errors.As(err, &nf) {
		return TrackResult{}, err
	}
	return g.checkSameMessage(ctx, id, runID, r)
}

func checkedID(id string) error {
	if _, _, ok := ParseGuardWorkflowID(id); !ok {
		return fail("workflowId", "a guard id looks like rbm-guard/<agentId>/<messageId>")
	}
	return nil
}

// Status returns state and timeline; for a closed guard its final status (no worker needed).
func (g *GuardClient) Status(ctx context.Context, id string) (GuardStatus, error) {
	var s GuardStatus
	if err := checkedID(id); err != nil {
		return s, err
	}
	desc, err := g.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return s, err
	}
	if info := desc.GetWorkflowExecutionInfo(); info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		// A deferred guard that has run no workflow task yet has no worker to answer a query: its
		// status is the one its start input gives.
		if mayNotHaveRun(info) {
			if s, ok, err := g.statusBeforeFirstRun(ctx, id); err != nil || ok {
				return s, err
			}
		}
		v, err := g.c.QueryWorkflow(ctx, id, "", C.Queries.Status.Name)
		if err != nil {
			return s, err
		}
		return s, v.Get(&s)
	}
	return s, g.c.GetWorkflow(ctx, id, "").Get(ctx, &s)
}

func (g *GuardClient) update(ctx context.Context, id, name string, arg any) (GuardStatus, error) {
	var s GuardStatus
	if err := checkedID(id); err != nil {
		return s, err
	}
	h, err := g.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		return s, err
	}
	return s, h.Get(ctx, &s)
}

// Cancel cancels a pending guard.
func (g *GuardClient) Cancel(ctx context.Context, id, reason string) (GuardStatus, error) {
	arg := map[string]string{}
	if reason != "" {
		arg["reason"] = reason
	}
	return g.update(ctx, id, C.Updates.Cancel.Name, arg)
}

// Extend moves a pending guard's deadline.
func (g *GuardClient) Extend(ctx context.Context, id string, staleAt time.Time) (GuardStatus, error) {
	if !staleAt.After(time.Now()) {
		return GuardStatus{}, fail("staleAt", ISO(staleAt)+" is in the past")
	}
	return g.update(ctx, id, C.Updates.Extend.Name, map[string]string{"staleAt": ISO(staleAt)})
}

// ListFilter: empty fields do not filter.
type ListFilter struct {
	State, Outcome, AgentID string
	Open                    bool
	Limit                   int
}

// List returns guards, newest first.
func (g *GuardClient) List(ctx context.Context, f ListFilter) ([]GuardSummary, error) {
	var issues []FieldError
	if f.State != "" && !slices.Contains(C.States.All, f.State) {
		issues = append(issues, FieldError{"state", "one of " + strings.Join(C.States.All, ", ")})
	}
	if f.Outcome != "" && !slices.Contains(C.States.Outcomes, f.Outcome) {
		issues = append(issues, FieldError{"outcome", "one of " + strings.Join(C.States.Outcomes, ", ")})
	}
	if f.AgentID != "" {
		if p := agentIDProblem(strings.TrimSpace(f.AgentID)); p != "" {
			issues = append(issues, FieldError{"agentId", p})
		}
	}
	if f.Limit < 0 {
		issues = append(issues, FieldError{"limit", "a positive whole number"})
	}
	if len(issues) > 0 {
		return nil, &ValidationError{Issues: issues}
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	clauses := []string{fmt.Sprintf("WorkflowType = %q", C.WorkflowType)}
	if f.State != "" {
		clauses = append(clauses, fmt.Sprintf("RbmState = %q", f.State))
	}
	if f.Outcome != "" {
		clauses = append(clauses, fmt.Sprintf("RbmOutcome = %q", f.Outcome))
	}
	if f.AgentID != "" {
		clauses = append(clauses, fmt.Sprintf("RbmAgentId = %q", NormalizeAgentID(f.AgentID)))
	}
	if f.Open {
		clauses = append(clauses, `ExecutionStatus = "Running"`)
	}
	var out []GuardSummary
	var token []byte
	for {
		resp, err := g.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: strings.Join(clauses, " AND "), NextPageToken: token})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetExecutions() {
			// Search attributes are plain JSON payloads (never encrypted): Keyword and Datetime are strings.
			sa := map[string]string{}
			for name, p := range e.GetSearchAttributes().GetIndexedFields() {
				var v string
				if converter.GetDefaultDataConverter().FromPayload(p, &v) == nil {
					sa[name] = v
				}
			}
			s := GuardSummary{WorkflowID: e.GetExecution().GetWorkflowId(), State: sa["RbmState"], Outcome: sa["RbmOutcome"], AgentID: sa["RbmAgentId"], StartTime: e.GetStartTime().AsTime()}
			if t, err := time.Parse(time.RFC3339Nano, sa["RbmStaleAt"]); err == nil {
				s.StaleAt = &t
			}
			if e.GetCloseTime() != nil {
				t := e.GetCloseTime().AsTime()
				s.CloseTime = &t
			}
			out = append(out, s)
			if len(out) >= f.Limit {
				return out, nil
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}
