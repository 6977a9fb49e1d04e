"""track() input is validated before anything is sent, and resolved as the TypeScript client does."""
from datetime import datetime, timedelta, timezone

import pytest

from rbm_guard import CONTRACT, ValidationError, guard_workflow_id, normalize_agent_id, parse_track_input
from rbm_guard.contract import parse_guard_workflow_id

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
OK = {"agentId": "acme", "messageId": "m-1", "phone": "+14155550100", "staleIn": "10m", "fallbackText": "code 1"}


def fields_of(data):
    with pytest.raises(ValidationError) as info:
        parse_track_input(data, NOW)
    return info.value.fields


def test_resolves_a_valid_message_like_typescript():
    m = parse_track_input({**OK, "agentId": " Acme@RBM.GOOG ", "trafficType": "PROMOTION", "policy": {"graceMs": 5}}, NOW)
    assert m["agentId"] == "Acme"
    assert m["staleAt"] == "2030-01-01T12:10:00.000Z"
    assert m["sentAt"] == "2030-01-01T12:00:00.000Z"
    assert m["fallback"] == {"channel": "sms", "text": "code 1"}
    assert m["policy"] == {**CONTRACT["policyDefaults"]["PROMOTION"], "graceMs": 5}
    assert m["policy"]["onUnknown"] == "no-fallback"
    assert m["platformExpireAt"] is None and m["send"] is None


@pytest.mark.parametrize(
    "change, field",
    [
        ({"agentId": "bad agent"}, "agentId"),
        ({"agentId": ""}, "agentId"),
        ({"messageId": "has space"}, "messageId"),
        ({"messageId": "m-\x1b[2J"}, "messageId"),
        ({"messageId": "m-\x9b31m"}, "messageId"),
        ({"messageId": "m-\u202egnp.exe"}, "messageId"),
        ({"messageId": "m-\u200b"}, "messageId"),
        ({"messageId": "m-\ud800"}, "messageId"),
        ({"phone": "0800 123"}, "phone"),
        ({"phone": 14155550100}, "phone"),
        ({"staleIn": "soon"}, "staleIn"),
        ({"staleIn": -5}, "staleIn"),
        ({"staleIn": "16d"}, "staleIn"),
        ({"trafficType": "SPAM"}, "trafficType"),
        ({"fallbackText": "x" * 1531}, "fallbackText"),
        ({"policy": {"graceMs": -1}}, "policy.graceMs"),
        ({"policy": {"colour": 1}}, "policy.colour"),
        ({"colour": "red"}, "colour"),
        ({"staleAt": "tomorrow", "staleIn": None}, "staleAt"),
        ({"staleAt": "2029-01-01T00:00:00Z", "staleIn": None}, "staleAt"),
        ({"staleAt": "2030-01-01T13:00:00Z"}, "staleAt"),
        ({"sentAt": "2030-01-01T13:00:00Z"}, "sentAt"),
        ({"expireTime": "2030-01-01T13:00:00Z", "ttl": "1h"}, "expireTime"),
        ({"sendText": "hi", "ttl": "1h"}, "ttl"),
        ({"priority": CONTRACT["priority"]["max"] + 1}, "priority"),
        ({"priority": 0}, "priority"),
        ({"priority": 2.5}, "priority"),
        ({"priority": True}, "priority"),
        ({"priority": "1"}, "priority"),
    ],
)
def test_names_the_bad_field(change, field):
    assert field in fields_of({**OK, **change})


def test_names_every_bad_field_at_once():
    assert set(fields_of({"agentId": "a b", "messageId": "m", "phone": "1"})) >= {"agentId", "phone"}


def test_a_message_tracked_late_is_still_guarded():
    m = parse_track_input({**OK, "staleIn": None, "sentAt": "2030-01-01T11:00:00Z", "staleAt": "2030-01-01T11:30:00+00:00"}, NOW)
    assert m["staleAt"] == "2030-01-01T11:30:00.000Z"


def test_ttl_and_send_expiry():
    assert parse_track_input({**OK, "ttl": "1h"}, NOW)["platformExpireAt"] == "2030-01-01T13:00:00.000Z"
    sent = parse_track_input({**OK, "sendText": "hello"}, NOW)
    assert sent["send"] == {"text": "hello"}
    expected = NOW + timedelta(minutes=10, milliseconds=5 * CONTRACT["sendExpiryPerRevokeAttemptMs"])
    assert sent["platformExpireAt"] == expected.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_guard_ids_follow_the_contract():
    assert guard_workflow_id("Acme@rbm.goog", "a/b:c") == "rbm-guard/Acme/a/b:c"
    assert normalize_agent_id(" x@RBM.goog ") == "x"
    assert parse_guard_workflow_id("rbm-guard/acme/a/b:c") == ("acme", "a/b:c")
    assert parse_guard_workflow_id("rbm-guard/acme@rbm.goog/m") is None
    assert parse_guard_workflow_id("not-a-guard") is None


def test_message_ids_of_any_script_and_symbol_pass():
    assert parse_track_input({**OK, "messageId": "m-\u20ac/\u00e9:\U0001F600"}, NOW)["messageId"] == "m-\u20ac/\u00e9:\U0001F600"


def test_a_deadline_that_passed_recently_is_a_late_track_guarded_at_once():
    m = parse_track_input({**OK, "staleIn": None, "staleAt": "2030-01-01T11:59:30Z"}, NOW)
    assert m["staleAt"] == "2030-01-01T11:59:30.000Z"
    assert "staleAt" in fields_of({**OK, "staleIn": None, "staleAt": "2029-12-31T11:59:59Z"})


@pytest.mark.parametrize("traffic_type", [None, *CONTRACT["trafficTypes"]])
def test_priority_defaults_by_traffic_type_from_the_contract(traffic_type):
    m = parse_track_input({**OK, "trafficType": traffic_type}, NOW)
    assert m["priority"] == CONTRACT["trafficPriority"][traffic_type or CONTRACT["defaultTrafficType"]]
    assert CONTRACT["priority"]["min"] <= m["priority"] <= CONTRACT["priority"]["max"]


def test_an_otp_goes_first_a_promotion_last_and_a_given_priority_wins():
    # The table is the contract's (names.ts owns it).
    assert CONTRACT["trafficPriority"]["AUTHENTICATION"] == CONTRACT["priority"]["min"]
    assert CONTRACT["trafficPriority"]["PROMOTION"] == CONTRACT["priority"]["max"]
    m = parse_track_input({**OK, "trafficType": "PROMOTION", "priority": 1}, NOW)
    assert m["priority"] == 1 and type(m["priority"]) is int
    assert parse_track_input({**OK, "priority": 4.0}, NOW)["priority"] == 4
    assert fields_of({**OK, "priority": 6}) == ["priority"]
