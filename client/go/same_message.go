package rbmguard

// What "the same message" means when a message id is tracked again, as client/same-message.ts says
// it: the request, resolved as of the moment the guard first got its message, gives exactly the
// tracked message the guard holds. A retried StaleIn without SentAt is the same message (it resolves
// from the first track's sentAt); any other phone, text, deadline, traffic type, policy or TTL is
// not. The guard's message is read from its history (the start input, or the first `track` signal
// of a guard an early RBM event started), decrypted by the client's DataConverter.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// ErrDifferentMessage matches (errors.Is) every *DifferentMessageError.
var ErrDifferentMessage = errors.New("a guard for this message id holds a different message")

// DifferentMessageError: Track on an existing guard whose message is another one, or whose history
// is gone; nothing changed.
type DifferentMessageError struct {
	WorkflowID string
	// Differences names what differs ("phone", "deadline", …); nil when the guard's history is gone.
	Differences []string
}

func (e *DifferentMessageError) Error() string {
	if e.Differences == nil {
		return e.WorkflowID + ": this message id was guarded before, and that guard's history is gone"
	}
	return fmt.Sprintf("%s: %s (%s)", e.WorkflowID, ErrDifferentMessage, strings.Join(e.Differences, ", "))
}

func (e *DifferentMessageError) Is(target error) bool { return target == ErrDifferentMessage }

// anyDifference: when what differs cannot be named (the request is not valid as of the first track).
const anyDifference = "phone, text, deadline, traffic type, policy or TTL"

// messageFields: a TrackedMessage's JSON fields in order, in the words an error uses (as the
// TypeScript and Python clients say them).
var messageFields = [][2]string{
	{"agentId", "agent"}, {"messageId", "message id"}, {"phone", "phone"}, {"staleAt", "deadline"}, {"sentAt", "sent time"},
	{"platformExpireAt", "TTL"}, {"trafficType", "traffic type"}, {"fallback", "fallback text"}, {"send", "text"},
	{"policy", "policy"}, {"priority", "priority"},
}

// dialedClient is what Dial returns: a client.Client that also says which DataConverter it carries,
// so NewGuardClient can decrypt what it reads from a guard's history.
type dialedClient struct {
	client.Client
	dc converter.DataConverter
}

func (c dialedClient) DataConverter() converter.DataConverter { return c.dc }

type carriesConverter interface {
	DataConverter() converter.DataConverter
}

// WithDataConverter is for a client not made by Dial: the DataConverter(codec) it was made with.
func (g *GuardClient) WithDataConverter(dc converter.DataConverter) *GuardClient {
	cp := *g
	cp.dc = dc
	return &cp
}

// checkSameMessage applies the rule after Track handed an existing guard the message; runID "" when it had ended.
func (g *GuardClient) checkSameMessage(ctx context.Context, id, runID string, r TrackRequest) (TrackResult, error) {
	held, err := g.heldMessage(ctx, id)
	if err != nil {
		return TrackResult{}, fmt.Errorf("reading the message guard %s holds: %w", id, err)
	}
	if held == nil {
		return TrackResult{}, &DifferentMessageError{WorkflowID: id}
	}
	if d := messageDifferences(r, held.message); len(d) > 0 {
		return TrackResult{}, &DifferentMessageError{WorkflowID: id, Differences: d}
	}
	// The first track of a guard an early RBM event started is this call's: new to the caller.
	created := !held.fromStart && held.trackSignals == 1 && runID != ""
	return TrackResult{WorkflowID: id, RunID: runID, Created: created, AlreadyClosed: runID == ""}, nil
}

type held struct {
	message      map[string]any // the contract's JSON form, as decoded
	fromStart    bool           // false: a `track` signal brought it (a guard an early RBM event started)
	trackSignals int
}

// heldMessage: nil if the guard has none or its history is gone. A signal sent while a workflow task
// runs enters the history when that task completes, so an event-started guard is re-read until no
// task is in flight: the count of `track` signals then includes the caller's own.
func (g *GuardClient) heldMessage(ctx context.Context, id string) (*held, error) {
	for wait := 20 * time.Millisecond; ; wait = min(wait*2, 200*time.Millisecond) {
		h, inFlight, err := g.readHistory(ctx, id)
		if err != nil || (h != nil && h.fromStart) || !inFlight {
			return h, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (g *GuardClient) readHistory(ctx context.Context, id string) (*held, bool, error) {
	var h *held
	inFlight := false
	it := g.c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) { // removed after its retention since the start
				return nil, false, nil
			}
			return nil, false, err
		}
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			var in struct {
				Message map[string]any `json:"message"`
			}
			if err := g.dc.FromPayloads(e.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
				return nil, false, err
			}
			if in.Message != nil { // started with its message: that is all there is to know
				return &held{message: in.Message, fromStart: true}, false, nil
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			a := e.GetWorkflowExecutionSignaledEventAttributes()
			if a.GetSignalName() != C.Signals.Track.Name {
				continue
			}
			if h != nil {
				h.trackSignals++
				continue
			}
			var m map[string]any
			if err := g.dc.FromPayloads(a.GetInput(), &m); err != nil {
				return nil, false, err
			}
			h = &held{message: m, trackSignals: 1}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			inFlight = true
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
			inFlight = false
		}
	}
	return h, inFlight, nil
}

// messageDifferences: what differs between r, resolved as of the held message's first track, and the
// held message, in words; empty when it is the same message.
func messageDifferences(r TrackRequest, heldMessage map[string]any) []string {
	asOf, ok := ParseDateTime(fmt.Sprint(heldMessage["sentAt"]))
	if !ok {
		asOf, _ = ParseDateTime(fmt.Sprint(heldMessage["staleAt"]))
	}
	m, err := ParseTrackInput(r, asOf)
	if err != nil {
		return []string{anyDifference} // valid now, but not as of the first track: not the same request
	}
	// Both sides as decoded JSON, so numbers and nulls compare as the payload holds them.
	var parsed map[string]any
	if b, err := json.Marshal(m); err != nil || json.Unmarshal(b, &parsed) != nil {
		return []string{anyDifference}
	}
	// A guard tracked before messages carried a priority holds none: the rest must match.
	if _, has := heldMessage["priority"]; !has {
		delete(parsed, "priority")
	}
	var out []string
	differs := func(key string) bool {
		p, inParsed := parsed[key]
		h, inHeld := heldMessage[key]
		return inParsed != inHeld || !reflect.DeepEqual(p, h)
	}
	known := map[string]bool{}
	for _, f := range messageFields {
		known[f[0]] = true
		if differs(f[0]) {
			out = append(out, f[1])
		}
	}
	var extra []string
	for key := range heldMessage {
		if !known[key] {
			extra = append(extra, key)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}
