// Package rbmguard is the Go client of rbm-guard: start and read RBM message guards on Temporal with
// the service's own contract (guard-contract.json, generated from the TypeScript definition by
// scripts/generate-contract.ts; never edit it) and the same encrypted payloads.
package rbmguard

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

//go:embed guard-contract.json
var contractJSON []byte

// Contract is the part of guard-contract.json this client applies.
type Contract struct {
	WorkflowType     string `json:"workflowType"`
	DefaultTaskQueue string `json:"defaultTaskQueue"`
	GuardRules       int    `json:"guardRules"`
	WorkflowID       struct {
		Template string `json:"template"`
		Pattern  string `json:"pattern"`
	} `json:"workflowId"`
	AgentID struct {
		Pattern   string `json:"pattern"`
		MaxLength int    `json:"maxLength"`
		Rule      string `json:"rule"`
		Normalise struct {
			Trim   bool   `json:"trim"`
			Suffix string `json:"stripSuffixCaseInsensitive"`
		} `json:"normalise"`
	} `json:"agentId"`
	MessageID struct {
		Pattern   string `json:"pattern"`
		MaxLength int    `json:"maxLength"`
		Rule      string `json:"rule"`
	} `json:"messageId"`
	Phone struct {
		Pattern string `json:"pattern"`
		Rule    string `json:"rule"`
	} `json:"phone"`
	Duration struct {
		Pattern string             `json:"pattern"`
		UnitMs  map[string]float64 `json:"unitMs"`
	} `json:"duration"`
	DateTime struct {
		Pattern string `json:"pattern"`
	} `json:"dateTime"`
	Limits struct {
		MaxMessageLifetimeMs int64 `json:"maxMessageLifetimeMs"`
		MaxFallbackText      int   `json:"maxFallbackText"`
		MaxRbmText           int   `json:"maxRbmText"`
		SentAtSkewMs         int64 `json:"sentAtSkewMs"`
		LateTrackMs          int64 `json:"lateTrackMs"`
	} `json:"limits"`
	SendExpiryPerRevokeAttemptMs int64                  `json:"sendExpiryPerRevokeAttemptMs"`
	TrafficTypes                 []string               `json:"trafficTypes"`
	DefaultTrafficType           string                 `json:"defaultTrafficType"`
	PolicyDefaults               map[string]GuardPolicy `json:"policyDefaults"`
	// Priority bounds Temporal's task priority key (1 first); TrafficPriority is each traffic type's default.
	Priority struct {
		Min int `json:"min"`
		Max int `json:"max"`
	} `json:"priority"`
	TrafficPriority map[string]int `json:"trafficPriority"`
	States          struct {
		All      []string `json:"all"`
		Outcomes []string `json:"outcomes"`
	} `json:"states"`
	Signals struct {
		Track struct {
			Name string `json:"name"`
		} `json:"track"`
	} `json:"signals"`
	Queries struct {
		Status struct {
			Name string `json:"name"`
		} `json:"status"`
	} `json:"queries"`
	// DeferredStart is client/deferred-start.ts's rules (deferred_start.go applies them).
	DeferredStart struct {
		MinDelayMs           int64 `json:"minDelayMs"`
		StatusBeforeFirstRun struct {
			FirstPage    int               `json:"firstPage"`
			Placeholders map[string]string `json:"placeholders"`
			Template     any               `json:"template"`
		} `json:"statusBeforeFirstRun"`
	} `json:"deferredStart"`
	Updates struct {
		Cancel struct {
			Name string `json:"name"`
		} `json:"cancel"`
		Extend struct {
			Name string `json:"name"`
		} `json:"extend"`
	} `json:"updates"`
	PayloadEncryption struct {
		KeyBytes int `json:"keyBytes"`
		IVBytes  int `json:"ivBytes"`
		TagBytes int `json:"tagBytes"`
		Metadata struct {
			Encoding string `json:"encoding"`
			KeyID    string `json:"keyId"`
		} `json:"metadata"`
		KeyIDPattern string `json:"keyIdPattern"`
	} `json:"payloadEncryption"`
	Schemas struct {
		TrackRequest struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"TrackRequest"`
	} `json:"schemas"`
}

// C is the loaded contract.
var C = mustLoad()

var (
	agentIDRe, messageIDRe, phoneRe, durationRe, dateTimeRe, guardIDRe, keyIDRe *regexp.Regexp
	policyBounds                                                                map[string][2]float64
)

func mustLoad() Contract {
	var c Contract
	if err := json.Unmarshal(contractJSON, &c); err != nil {
		panic(fmt.Sprintf("rbmguard: guard-contract.json: %v", err))
	}
	agentIDRe = regexp.MustCompile(c.AgentID.Pattern)
	messageIDRe = regexp.MustCompile(c.MessageID.Pattern)
	phoneRe = regexp.MustCompile(c.Phone.Pattern)
	durationRe = regexp.MustCompile(c.Duration.Pattern)
	dateTimeRe = regexp.MustCompile("(?i)" + c.DateTime.Pattern)
	guardIDRe = regexp.MustCompile("(?s)" + c.WorkflowID.Pattern)
	keyIDRe = regexp.MustCompile(c.PayloadEncryption.KeyIDPattern)
	// Without them every guard would look deferred-worthy (a zero minimum) and none readable before it runs.
	if d := c.DeferredStart; d.MinDelayMs <= 0 || d.StatusBeforeFirstRun.FirstPage <= 0 || d.StatusBeforeFirstRun.Template == nil {
		panic("rbmguard: guard-contract.json: deferredStart is missing")
	}
	// The policy knobs' bounds, from the wire schema.
	var policy struct {
		Properties map[string]struct {
			Minimum *float64 `json:"minimum"`
			Maximum *float64 `json:"maximum"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(c.Schemas.TrackRequest.Properties["policy"], &policy); err != nil {
		panic(fmt.Sprintf("rbmguard: policy schema: %v", err))
	}
	policyBounds = map[string][2]float64{}
	for name, p := range policy.Properties {
		if p.Minimum != nil && p.Maximum != nil {
			policyBounds[name] = [2]float64{*p.Minimum, *p.Maximum}
		}
	}
	return c
}

// NormalizeAgentID: RBM writes agent ids bare and as `<id>@rbm.goog`; a guard knows its agent by the bare id.
func NormalizeAgentID(agentID string) string {
	text := agentID
	if C.AgentID.Normalise.Trim {
		text = strings.TrimSpace(text)
	}
	suffix := C.AgentID.Normalise.Suffix
	if len(text) >= len(suffix) && strings.EqualFold(text[len(text)-len(suffix):], suffix) {
		return text[:len(text)-len(suffix)]
	}
	return text
}

// GuardWorkflowID is the one guard id of a message.
func GuardWorkflowID(agentID, messageID string) string {
	return strings.NewReplacer("{agentId}", NormalizeAgentID(agentID), "{messageId}", messageID).Replace(C.WorkflowID.Template)
}

func agentIDProblem(id string) string {
	switch {
	case id == "":
		return "must not be empty"
	case len([]rune(id)) > C.AgentID.MaxLength:
		return fmt.Sprintf("at most %d characters", C.AgentID.MaxLength)
	case !agentIDRe.MatchString(id):
		return C.AgentID.Rule
	}
	return ""
}

func messageIDProblem(id string) string {
	switch {
	case id == "":
		return "must not be empty"
	case len([]rune(id)) > C.MessageID.MaxLength:
		return fmt.Sprintf("at most %d characters", C.MessageID.MaxLength)
	case !utf8.ValidString(id) || !messageIDRe.MatchString(id):
		return C.MessageID.Rule
	}
	return ""
}

// ParseGuardWorkflowID returns the agent and message of a guard id, ok=false unless it is exactly what
// GuardWorkflowID makes of valid ids.
func ParseGuardWorkflowID(id string) (agentID, messageID string, ok bool) {
	m := guardIDRe.FindStringSubmatch(id)
	if m == nil || m[0] != id {
		return "", "", false
	}
	if agentIDProblem(m[1]) != "" || messageIDProblem(m[2]) != "" || GuardWorkflowID(m[1], m[2]) != id {
		return "", "", false
	}
	return m[1], m[2], true
}
