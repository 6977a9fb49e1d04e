package rbmguard

import (
	"cmp"
	"errors"
	"slices"
	"testing"
	"time"
)

var now = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func ok() TrackRequest {
	return TrackRequest{AgentID: "acme", MessageID: "m-1", Phone: "+14155550100", StaleIn: "10m", FallbackText: "code 1"}
}

func ptr[T any](v T) *T { return &v }

func TestResolvesLikeTypeScript(t *testing.T) {
	r := ok()
	r.AgentID, r.TrafficType, r.Policy = " Acme@RBM.GOOG ", "PROMOTION", &PolicyOverrides{GraceMs: ptr[int64](5)}
	m, err := ParseTrackInput(r, now)
	if err != nil {
		t.Fatal(err)
	}
	want := C.PolicyDefaults["PROMOTION"]
	want.GraceMs = 5
	if m.AgentID != "Acme" || m.StaleAt != "2030-01-01T12:10:00.000Z" || m.SentAt != "2030-01-01T12:00:00.000Z" || m.Policy != want || m.Policy.OnUnknown != "no-fallback" {
		t.Fatalf("%+v", m)
	}
	if m.Fallback == nil || m.Fallback.Text != "code 1" || m.PlatformExpireAt != nil || m.Send != nil {
		t.Fatalf("%+v", m)
	}
	r = ok()
	r.TTL = "1h"
	if m, _ := ParseTrackInput(r, now); m.PlatformExpireAt == nil || *m.PlatformExpireAt != "2030-01-01T13:00:00.000Z" {
		t.Fatalf("ttl: %+v", m.PlatformExpireAt)
	}
}

func TestNamesTheBadField(t *testing.T) {
	past := now.Add(-25 * time.Hour) // further back than a late track (24 h)
	later := now.Add(time.Hour)
	cases := map[string]func(r *TrackRequest){
		"agentId":          func(r *TrackRequest) { r.AgentID = "bad agent" },
		"messageId":        func(r *TrackRequest) { r.MessageID = "has space" },
		"phone":            func(r *TrackRequest) { r.Phone = "0800 123" },
		"staleIn":          func(r *TrackRequest) { r.StaleIn = "soon" },
		"trafficType":      func(r *TrackRequest) { r.TrafficType = "SPAM" },
		"fallbackText":     func(r *TrackRequest) { r.FallbackText = string(make([]byte, 1531)) },
		"policy.graceMs":   func(r *TrackRequest) { r.Policy = &PolicyOverrides{GraceMs: ptr[int64](-1)} },
		"policy.onUnknown": func(r *TrackRequest) { r.Policy = &PolicyOverrides{OnUnknown: ptr("maybe")} },
		"staleAt":          func(r *TrackRequest) { r.StaleIn, r.StaleAt = "", &past },
		"sentAt":           func(r *TrackRequest) { r.SentAt = &later },
		"expireTime":       func(r *TrackRequest) { r.ExpireTime, r.TTL = &later, "1h" },
		"ttl":              func(r *TrackRequest) { r.SendText, r.TTL = "hi", "1h" },
		"priority":         func(r *TrackRequest) { r.Priority = ptr(C.Priority.Max + 1) },
	}
	for field, change := range cases {
		t.Run(field, func(t *testing.T) {
			r := ok()
			change(&r)
			_, err := ParseTrackInput(r, now)
			var ve *ValidationError
			if !errors.As(err, &ve) || !slices.Contains(ve.Fields(), field) {
				t.Fatalf("got %v, want an error naming %s", err, field)
			}
		})
	}
}

func TestPriorityByTrafficTypeOrAsGiven(t *testing.T) {
	// The table is the contract's (names.ts owns it): every traffic type has one, an OTP goes first, a promotion last.
	if C.TrafficPriority["AUTHENTICATION"] != C.Priority.Min || C.TrafficPriority["PROMOTION"] != C.Priority.Max {
		t.Fatalf("contract trafficPriority %v", C.TrafficPriority)
	}
	for _, trafficType := range append([]string{""}, C.TrafficTypes...) {
		r := ok()
		r.TrafficType = trafficType
		want := C.TrafficPriority[cmp.Or(trafficType, C.DefaultTrafficType)]
		if m, err := ParseTrackInput(r, now); err != nil || m.Priority != want || want < C.Priority.Min || want > C.Priority.Max {
			t.Fatalf("%q: priority %d, %v; want %d", trafficType, m.Priority, err, want)
		}
	}
	r := ok()
	r.TrafficType, r.Priority = "PROMOTION", ptr(1)
	if m, err := ParseTrackInput(r, now); err != nil || m.Priority != 1 {
		t.Fatalf("explicit priority: %d, %v", m.Priority, err)
	}
	for _, bad := range []int{0, -1, 6} {
		r := ok()
		r.Priority = ptr(bad)
		_, err := ParseTrackInput(r, now)
		var ve *ValidationError
		if !errors.As(err, &ve) || !slices.Equal(ve.Fields(), []string{"priority"}) {
			t.Fatalf("priority %d: got %v, want an error naming priority", bad, err)
		}
	}
}

func TestGuardsALateTrackAtOnce(t *testing.T) {
	r := ok()
	recent := now.Add(-30 * time.Second)
	r.StaleIn, r.StaleAt = "", &recent
	m, err := ParseTrackInput(r, now)
	if err != nil || m.StaleAt != ISO(recent) {
		t.Fatalf("a deadline 30 s past: got %v, %v; want it guarded at once", m.StaleAt, err)
	}
}

func TestRefusesHostileMessageIDs(t *testing.T) {
	for _, id := range []string{"m-\x1b[2J", "m-\u009b31m", "m-\u202egnp.exe", "m-\u200b", "m-\xff"} {
		r := ok()
		r.MessageID = id
		_, err := ParseTrackInput(r, now)
		var ve *ValidationError
		if !errors.As(err, &ve) || !slices.Contains(ve.Fields(), "messageId") {
			t.Fatalf("%q: got %v, want an error naming messageId", id, err)
		}
	}
	r := ok()
	r.MessageID = "m-\u20ac/\u00e9:\U0001F600"
	if _, err := ParseTrackInput(r, now); err != nil {
		t.Fatalf("a message id of any script and symbol: %v", err)
	}
}

func TestGuardIDsFollowTheContract(t *testing.T) {
	if id := GuardWorkflowID("Acme@rbm.goog", "a/b:c"); id != "rbm-guard/Acme/a/b:c" {
		t.Fatal(id)
	}
	if a, m, ok := ParseGuardWorkflowID("rbm-guard/acme/a/b:c"); !ok || a != "acme" || m != "a/b:c" {
		t.Fatal(a, m, ok)
	}
	for _, bad := range []string{"rbm-guard/acme@rbm.goog/m", "not-a-guard", "rbm-guard/a b/m"} {
		if _, _, ok := ParseGuardWorkflowID(bad); ok {
			t.Fatal(bad)
		}
	}
}
