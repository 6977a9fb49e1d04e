"""What track() accepts, checked before anything reaches Temporal: the wire schema of the generated
contract (TrackRequest) for every field, then the rules between fields, resolved exactly as
client/track-input.ts resolves them. Every error names its field."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from jsonschema import Draft202012Validator

from .contract import CONTRACT, DURATION_RE, ISO_DATE_TIME_RE, default_policy, message_id_problem, normalize_agent_id

_VALIDATOR = Draft202012Validator(CONTRACT["schemas"]["TrackRequest"])
_LIMITS = CONTRACT["limits"]
_UNIT_MS: dict[str, int] = CONTRACT["duration"]["unitMs"]


class ValidationError(ValueError):
    """Bad input; `issues` lists each bad field and what is wrong with it."""

    def __init__(self, issues: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in issues))
        self.issues = issues

    @property
    def fields(self) -> list[str]:
        return [field for field, _ in self.issues]


def _fail(field: str, message: str) -> ValidationError:
    return ValidationError([(field, message)])


def iso(at: datetime) -> str:
    """As JavaScript's toISOString(): UTC, milliseconds, Z."""
    at = at.astimezone(timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse_date_time(value: Any) -> datetime | None:
    """A datetime with a zone, or an ISO-8601 date-time string with a zone; None for anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo else None
    if not isinstance(value, str) or not ISO_DATE_TIME_RE.match(value):
        return None
    try:
        at = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def parse_duration_ms(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        ms = float(value)
    elif isinstance(value, str) and (m := DURATION_RE.match(value.strip())):
        ms = float(m.group(1)) * _UNIT_MS[m.group(2)]
    else:
        return None
    return ms if math.isfinite(ms) and ms > 0 else None


def _wire(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _add_ms(at: datetime, ms: float) -> datetime:
    return at + timedelta(milliseconds=math.floor(ms))


def parse_track_input(data: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The TrackedMessage (a dict in the contract's JSON form) for a track request; raises ValidationError."""
    now = now or datetime.now(timezone.utc)
    if not isinstance(data, Mapping):
        raise _fail("(input)", "must be a mapping of the track fields")
    body = {k: _wire(v) for k, v in data.items() if v is not None or k == "fallbackText"}
    for key in ("agentId", "messageId"):
        if isinstance(body.get(key), str):
            body[key] = body[key].strip()
    issues: list[tuple[str, str]] = []
    for err in sorted(_VALIDATOR.iter_errors(body), key=lambda e: list(e.absolute_path)):
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            where = ".".join(str(p) for p in err.absolute_path)
            issues.extend(((f"{where}.{k}" if where else k), "unknown field") for k in extra)
        else:
            issues.append((".".join(str(p) for p in err.absolute_path) or "(input)", err.message))
    # The message-id rule has no pattern in the schema (its \p{…} classes are not Python's): checked here.
    message_id = body.get("messageId")
    if isinstance(message_id, str) and message_id and not any(f == "messageId" for f, _ in issues) and (problem := message_id_problem(message_id)):
        issues.append(("messageId", problem))
    for key in ("staleIn", "ttl"):
        if key in body and parse_duration_ms(body[key]) is None and not any(f == key for f, _ in issues):
            issues.append((key, f"not a duration like 90s, 10m or 2h (or positive milliseconds): {body[key]}"))
    if issues:
        raise ValidationError(issues)

    traffic_type = body.get("trafficType", CONTRACT["defaultTrafficType"])
    # The schema took 3.0 as an integer (as JSON does); Temporal's priority key is an int.
    priority = int(body["priority"]) if "priority" in body else CONTRACT["trafficPriority"][traffic_type]
    policy = {**default_policy(traffic_type), **body.get("policy", {})}
    stale_at = _resolve_stale_at(body, now)
    sent_at = parse_date_time(body["sentAt"]) if "sentAt" in body else now
    assert sent_at is not None  # checked in _resolve_stale_at
    if body.get("sendText"):
        for key in ("expireTime", "ttl"):
            if key in body:
                raise _fail(key, "not with sendText: the guard sets the TTL of messages it sends itself (staleAt + one revoke round)")
        platform_expire_at: datetime | None = _add_ms(stale_at, policy["revokeAttempts"] * CONTRACT["sendExpiryPerRevokeAttemptMs"])
    else:
        platform_expire_at = _resolve_platform_expiry(body, sent_at)
    fallback_text = body.get("fallbackText")
    return {
        "agentId": normalize_agent_id(body["agentId"]),
        "messageId": body["messageId"],
        "phone": body["phone"],
        "staleAt": iso(stale_at),
        "sentAt": iso(sent_at),
        "platformExpireAt": iso(platform_expire_at) if platform_expire_at else None,
        "trafficType": traffic_type,
        "fallback": {"channel": "sms", "text": fallback_text} if fallback_text else None,
        "send": {"text": body["sendText"]} if body.get("sendText") else None,
        "policy": policy,
        "priority": priority,
    }


def _resolve_stale_at(body: dict[str, Any], now: datetime) -> datetime:
    max_ms = _LIMITS["maxMessageLifetimeMs"]
    sent_at = None
    if "sentAt" in body:
        sent_at = parse_date_time(body["sentAt"])
        if sent_at is None:
            raise _fail("sentAt", f"not an ISO-8601 date-time with a zone: {body['sentAt']}")
        if sent_at > _add_ms(now, _LIMITS["sentAtSkewMs"]):
            raise _fail("sentAt", f"{iso(sent_at)} is in the future")
    if "staleAt" in body and "staleIn" in body:
        raise _fail("staleAt", "give staleAt or staleIn, not both")
    if "staleAt" not in body and "staleIn" not in body:
        raise _fail("staleAt", "required (or staleIn)")
    start = sent_at or now
    if "staleIn" in body:
        ms = parse_duration_ms(body["staleIn"])
        assert ms is not None
        if ms > max_ms:
            raise _fail("staleIn", "at most 15 days (RBM’s own maximum)")
        return _add_ms(start, ms)
    at = parse_date_time(body["staleAt"])
    if at is None:
        raise _fail("staleAt", f"not an ISO-8601 date-time with a zone: {body['staleAt']}")
    if (at - start) / timedelta(milliseconds=1) > max_ms:
        raise _fail("staleAt", "at most 15 days ahead (RBM’s own maximum)")
    if at <= now:
        # A deadline that passed recently is a late track, guarded at once; far in the past, a mistake.
        if sent_at is not None and at <= sent_at:
            raise _fail("staleAt", f"{iso(at)} is not after sentAt {iso(sent_at)}")
        if (now - at) / timedelta(milliseconds=1) > _LIMITS["lateTrackMs"]:
            raise _fail("staleAt", f"{iso(at)} is more than 24 h in the past: a clock or unit error?")
    return at


def _resolve_platform_expiry(body: dict[str, Any], sent_at: datetime) -> datetime | None:
    max_ms = _LIMITS["maxMessageLifetimeMs"]
    if "expireTime" in body and "ttl" in body:
        raise _fail("expireTime", "give expireTime or ttl, not both (RBM takes one)")
    if "ttl" in body:
        ms = parse_duration_ms(body["ttl"])
        assert ms is not None
        if ms > max_ms:
            raise _fail("ttl", "at most 15 days (RBM’s own maximum)")
        return _add_ms(sent_at, ms)
    if "expireTime" not in body:
        return None
    at = parse_date_time(body["expireTime"])
    if at is None:
        raise _fail("expireTime", f"not an ISO-8601 date-time with a zone: {body['expireTime']}")
    if (at - sent_at) / timedelta(milliseconds=1) > max_ms:
        raise _fail("expireTime", "at most 15 days after sentAt (RBM’s own maximum)")
    return at
