""""The same message" as client/same-message.ts says it, without a server (the cross-language test
drives track() itself against the TypeScript worker)."""
from datetime import datetime, timezone

from rbm_guard import DifferentMessageError, parse_track_input
from rbm_guard.same_message import ANY_DIFFERENCE, message_differences

FIRST = datetime(2030, 1, 1, 0, 0, 0, tzinfo=timezone.utc)
BODY = {"agentId": "agent", "messageId": "m1", "phone": "+14155550100", "staleAt": "2030-01-01T00:10:00Z", "sentAt": "2030-01-01T00:00:00Z", "trafficType": "AUTHENTICATION", "fallbackText": "code 1"}
HELD = parse_track_input(BODY, FIRST)


def test_the_same_body_is_the_same_message_and_another_says_what_differs():
    assert message_differences(BODY, HELD) == []
    assert message_differences({**BODY, "priority": 1}, HELD) == []  # an OTP's own default
    assert message_differences({**BODY, "priority": 3}, HELD) == ["priority"]
    assert message_differences({**BODY, "phone": "+14155550101"}, HELD) == ["phone"]
    assert message_differences({**BODY, "fallbackText": "code 2", "staleAt": "2030-01-01T00:11:00Z"}, HELD) == ["deadline", "fallback text"]


def test_a_stale_in_without_sent_at_resolves_from_the_first_track():
    resend = {k: v for k, v in BODY.items() if k not in ("sentAt", "staleAt")}
    first = parse_track_input({**resend, "staleIn": "10m"}, FIRST)
    assert message_differences({**resend, "staleIn": "10m"}, first) == []
    assert message_differences({**resend, "staleIn": "11m"}, first) == ["deadline"]


def test_a_guard_without_a_priority_is_matched_on_the_rest():
    before = {k: v for k, v in HELD.items() if k != "priority"}
    assert message_differences(BODY, before) == []
    assert message_differences({**BODY, "fallbackText": "code 2"}, before) == ["fallback text"]


def test_a_request_not_valid_as_of_the_first_track_is_another_message():
    # sentAt an hour after the first track: "in the future" as of then.
    assert message_differences({**BODY, "sentAt": "2030-01-01T01:00:00Z", "staleAt": "2030-01-01T01:10:00Z"}, HELD) == [ANY_DIFFERENCE]


def test_the_error_names_the_guard_and_what_differs_never_the_values():
    err = DifferentMessageError("rbm-guard/agent/m1", ["phone"])
    assert str(err) == "rbm-guard/agent/m1: a guard for this message id holds a different message (phone)"
    assert err.workflow_id == "rbm-guard/agent/m1" and err.differences == ["phone"]
    assert "history is gone" in str(DifferentMessageError("rbm-guard/agent/m1", None))
