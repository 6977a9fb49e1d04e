package rbmguard

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GuardPolicy is the guard's per-message policy (defaults by traffic type come from the contract).
type GuardPolicy struct {
	GraceMs          int64  `json:"graceMs"`
	MaxRevokeRounds  int64  `json:"maxRevokeRounds"`
	RevokeAttempts   int64  `json:"revokeAttempts"`
	FallbackAttempts int64  `json:"fallbackAttempts"`
	OnUnknown        string `json:"onUnknown"`
	LingerMs         int64  `json:"lingerMs"`
}

// PolicyOverrides: nil fields keep the traffic type's default.
type PolicyOverrides struct {
	GraceMs, MaxRevokeRounds, RevokeAttempts, FallbackAttempts, LingerMs *int64
	OnUnknown                                                            *string
}

// TrackRequest is what a backend hands to Track. Durations use the contract's grammar ("90s", "10m").
type TrackRequest struct {
	AgentID      string
	MessageID    string
	Phone        string
	StaleAt      *time.Time
	StaleIn      string
	SentAt       *time.Time
	ExpireTime   *time.Time
	TTL          string
	TrafficType  string
	FallbackText string
	SendText     string
	Policy       *PolicyOverrides
	Priority     *int // Temporal task priority, 1 (first) to 5; nil: the traffic type's (contract trafficPriority)
}

// TrackedMessage is the guard's message in the contract's JSON form.
type TrackedMessage struct {
	AgentID          string       `json:"agentId"`
	MessageID        string       `json:"messageId"`
	Phone            string       `json:"phone"`
	StaleAt          string       `json:"staleAt"`
	SentAt           string       `json:"sentAt"`
	PlatformExpireAt *string      `json:"platformExpireAt"`
	TrafficType      string       `json:"trafficType"`
	Fallback         *FallbackSMS `json:"fallback"`
	Send             *SendText    `json:"send"`
	Policy           GuardPolicy  `json:"policy"`
	Priority         int          `json:"priority"`
}

type FallbackSMS struct {
	Channel string `json:"channel"`
	Text    string `json:"text"`
}
type SendText struct {
	Text string `json:"text"`
}

// FieldError is one bad field.
type FieldError struct{ Field, Message string }

// ValidationError lists each bad field; nothing was sent.
type ValidationError struct{ Issues []FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		parts[i] = is.Field + ": " + is.Message
	}
	return strings.Join(parts, "; ")
}

// Fields names the bad fields.
func (e *ValidationError) Fields() []string {
	out := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		out[i] = is.Field
	}
	return out
}

func fail(field, message string) error {
	return &ValidationError{Issues: []FieldError{{field, message}}}
}

// ISO formats as JavaScript's toISOString(): UTC, milliseconds, Z.
func ISO(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z")
}

// ParseDateTime accepts the contract's date-time grammar (a zone is required).
func ParseDateTime(text string) (time.Time, bool) {
	if !dateTimeRe.MatchString(text) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(text))
	if err != nil {
		if t, err = time.Parse("2006-01-02T15:04Z07:00", strings.ToUpper(text)); err != nil {
			return time.Time{}, false
		}
	}
	return t.Truncate(time.Millisecond), true
}

func parseDurationMs(text string) (float64, bool) {
	m := durationRe.FindStringSubmatch(strings.TrimSpace(text))
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseFloat(m[1], 64)
	ms := n * C.Duration.UnitMs[m[2]]
	return ms, err == nil && ms > 0 && !math.IsInf(ms, 0)
}

func addMs(t time.Time, ms float64) time.Time {
	return t.Add(time.Duration(math.Floor(ms)) * time.Millisecond)
}

// ParseTrackInput validates a request and resolves it as client/track-input.ts does.
func ParseTrackInput(r TrackRequest, now time.Time) (TrackedMessage, error) {
	var issues []FieldError
	add := func(field, message string) { issues = append(issues, FieldError{field, message}) }
	agentID, messageID := strings.TrimSpace(r.AgentID), strings.TrimSpace(r.MessageID)
	if p := agentIDProblem(agentID); p != "" {
		add("agentId", p)
	}
	if p := messageIDProblem(messageID); p != "" {
		add("messageId", p)
	}
	if !phoneRe.MatchString(r.Phone) {
		add("phone", "must be an E.164 number like "+strings.TrimPrefix(C.Phone.Rule, "E.164, e.g. "))
	}
	trafficType := r.TrafficType
	if trafficType == "" {
		trafficType = C.DefaultTrafficType
	}
	if !slices.Contains(C.TrafficTypes, trafficType) {
		add("trafficType", "one of "+strings.Join(C.TrafficTypes, ", "))
	}
	if n := len([]rune(r.FallbackText)); n > C.Limits.MaxFallbackText {
		add("fallbackText", fmt.Sprintf("at most %d characters (10 SMS segments)", C.Limits.MaxFallbackText))
	}
	if n := len([]rune(r.SendText)); n > C.Limits.MaxRbmText {
		add("sendText", fmt.Sprintf("at most %d characters", C.Limits.MaxRbmText))
	}
	priority := C.TrafficPriority[trafficType]
	if r.Priority != nil {
		if *r.Priority < C.Priority.Min || *r.Priority > C.Priority.Max {
			add("priority", fmt.Sprintf("between %d (first) and %d (last)", C.Priority.Min, C.Priority.Max))
		}
		priority = *r.Priority
	}
	for field, text := range map[string]string{"staleIn": r.StaleIn, "ttl": r.TTL} {
		if _, ok := parseDurationMs(text); text != "" && !ok {
			add(field, "not a duration like 90s, 10m or 2h: "+text)
		}
	}
	policy, ok := C.PolicyDefaults[trafficType]
	if ok && r.Policy != nil {
		set := func(name string, v *int64, dst *int64) {
			if v == nil {
				return
			}
			if b, has := policyBounds[name]; has && (float64(*v) < b[0] || float64(*v) > b[1]) {
				add("policy."+name, fmt.Sprintf("between %v and %v", b[0], b[1]))
			}
			*dst = *v
		}
		set("graceMs", r.Policy.GraceMs, &policy.GraceMs)
		set("maxRevokeRounds", r.Policy.MaxRevokeRounds, &policy.MaxRevokeRounds)
		set("revokeAttempts", r.Policy.RevokeAttempts, &policy.RevokeAttempts)
		set("fallbackAttempts", r.Policy.FallbackAttempts, &policy.FallbackAttempts)
		set("lingerMs", r.Policy.LingerMs, &policy.LingerMs)
		if r.Policy.OnUnknown != nil {
			if *r.Policy.OnUnknown != "fallback" && *r.Policy.OnUnknown != "no-fallback" {
				add("policy.onUnknown", "fallback or no-fallback")
			}
			policy.OnUnknown = *r.Policy.OnUnknown
		}
	}
	if len(issues) > 0 {
		return TrackedMessage{}, &ValidationError{Issues: issues}
	}

	maxMs := float64(C.Limits.MaxMessageLifetimeMs)
	if r.SentAt != nil && r.SentAt.After(addMs(now, float64(C.Limits.SentAtSkewMs))) {
		return TrackedMessage{}, fail("sentAt", ISO(*r.SentAt)+" is in the future")
	}
	if r.StaleAt != nil && r.StaleIn != "" {
		return TrackedMessage{}, fail("staleAt", "give staleAt or staleIn, not both")
	}
	if r.StaleAt == nil && r.StaleIn == "" {
		return TrackedMessage{}, fail("staleAt", "required (or staleIn)")
	}
	start := now
	if r.SentAt != nil {
		start = r.SentAt.Truncate(time.Millisecond)
	}
	var staleAt time.Time
	if r.StaleIn != "" {
		ms, _ := parseDurationMs(r.StaleIn)
		if ms > maxMs {
			return TrackedMessage{}, fail("staleIn", "at most 15 days (RBM’s own maximum)")
		}
		staleAt = addMs(start, ms)
	} else {
		staleAt = r.StaleAt.Truncate(time.Millisecond)
		if float64(staleAt.Sub(start).Milliseconds()) > maxMs {
			return TrackedMessage{}, fail("staleAt", "at most 15 days ahead (RBM’s own maximum)")
		}
		if !staleAt.After(now) {
			// A deadline that passed recently is a late track, guarded at once; far in the past, a mistake.
			if r.SentAt != nil && !staleAt.After(start) {
				return TrackedMessage{}, fail("staleAt", ISO(staleAt)+" is not after sentAt "+ISO(start))
			}
			if now.Sub(staleAt).Milliseconds() > C.Limits.LateTrackMs {
				return TrackedMessage{}, fail("staleAt", ISO(staleAt)+" is more than 24 h in the past: a clock or unit error?")
			}
		}
	}
	var expire *time.Time
	switch {
	case r.SendText != "" && r.ExpireTime != nil:
		return TrackedMessage{}, fail("expireTime", "not with sendText: the guard sets the TTL of messages it sends itself (staleAt + one revoke round)")
	case r.SendText != "" && r.TTL != "":
		return TrackedMessage{}, fail("ttl", "not with sendText: the guard sets the TTL of messages it sends itself (staleAt + one revoke round)")
	case r.SendText != "":
		t := addMs(staleAt, float64(policy.RevokeAttempts*C.SendExpiryPerRevokeAttemptMs))
		expire = &t
	case r.ExpireTime != nil && r.TTL != "":
		return TrackedMessage{}, fail("expireTime", "give expireTime or ttl, not both (RBM takes one)")
	case r.TTL != "":
		ms, _ := parseDurationMs(r.TTL)
		if ms > maxMs {
			return TrackedMessage{}, fail("ttl", "at most 15 days (RBM’s own maximum)")
		}
		t := addMs(start, ms)
		expire = &t
	case r.ExpireTime != nil:
		if float64(r.ExpireTime.Sub(start).Milliseconds()) > maxMs {
			return TrackedMessage{}, fail("expireTime", "at most 15 days after sentAt (RBM’s own maximum)")
		}
		t := r.ExpireTime.Truncate(time.Millisecond)
		expire = &t
	}
	m := TrackedMessage{
		AgentID: NormalizeAgentID(agentID), MessageID: messageID, Phone: r.Phone,
		StaleAt: ISO(staleAt), SentAt: ISO(start), TrafficType: trafficType, Policy: policy, Priority: priority,
	}
	if expire != nil {
		s := ISO(*expire)
		m.PlatformExpireAt = &s
	}
	if r.FallbackText != "" {
		m.Fallback = &FallbackSMS{Channel: "sms", Text: r.FallbackText}
	}
	if r.SendText != "" {
		m.Send = &SendText{Text: r.SendText}
	}
	return m, nil
}
