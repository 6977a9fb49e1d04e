"""What "the same message" means when a message id is tracked again, as client/same-message.ts says
it: the request, resolved as of the moment the guard first got its message, gives exactly the tracked
message the guard holds. A retried `staleIn` without `sentAt` is the same message (it resolves from
the first track's sentAt); any other phone, text, deadline, traffic type, policy or TTL is not. The
guard's message is read from its history (the start input, or the first `track` signal of a guard an
early RBM event started), decrypted by the client's data converter."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Mapping

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from .contract import SIGNAL_TRACK
from .track import ValidationError, parse_date_time, parse_track_input

ANY_DIFFERENCE = "phone, text, deadline, traffic type, policy or TTL"
# A TrackedMessage field in the words an error uses (the same as the TypeScript and Go clients').
_FIELD_WORDS = {
    "agentId": "agent",
    "messageId": "message id",
    "phone": "phone",
    "staleAt": "deadline",
    "sentAt": "sent time",
    "platformExpireAt": "TTL",
    "trafficType": "traffic type",
    "fallback": "fallback text",
    "send": "text",
    "policy": "policy",
    "priority": "priority",
}
_TASK_ENDED = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
}


class DifferentMessageError(Exception):
    """track() on an existing guard whose message is another one, or whose history is gone: nothing
    changed. `differences` names what differs ('phone', 'deadline', …); None when the history is gone."""

    def __init__(self, workflow_id: str, differences: list[str] | None) -> None:
        super().__init__(
            f"{workflow_id}: a guard for this message id holds a different message ({', '.join(differences)})"
            if differences is not None
            else f"{workflow_id}: this message id was guarded before, and that guard's history is gone"
        )
        self.workflow_id = workflow_id
        self.differences = differences


@dataclass
class HeldMessage:
    message: dict[str, Any]
    from_start: bool  # False: a `track` signal brought it (a guard an early RBM event started)
    track_signals: int  # how many `track` signals the history holds


async def held_message(client: Client, workflow_id: str) -> HeldMessage | None:
    """The message a guard holds, or None. A signal sent while a workflow task runs enters the history
    when that task completes, so an event-started guard is re-read until no task is in flight: the
    count of `track` signals then includes the caller's own."""
    wait = 0.02
    while True:
        held, task_in_flight = await _read_history(client, workflow_id)
        if (held and held.from_start) or not task_in_flight:
            return held
        await asyncio.sleep(wait)
        wait = min(wait * 2, 0.2)


async def _read_history(client: Client, workflow_id: str) -> tuple[HeldMessage | None, bool]:
    held: HeldMessage | None = None
    task_in_flight = False
    try:
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events(page_size=200):
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                guard_input = (await client.data_converter.decode(payloads[:1]))[0] if payloads else {}
                if guard_input.get("message"):  # started with its message: that is all there is to know
                    return HeldMessage(guard_input["message"], True, 0), False
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED and event.workflow_execution_signaled_event_attributes.signal_name == SIGNAL_TRACK:
                if held:
                    held.track_signals += 1
                else:
                    payloads = event.workflow_execution_signaled_event_attributes.input.payloads
                    held = HeldMessage((await client.data_converter.decode(payloads[:1]))[0], False, 1)
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                task_in_flight = True
            elif event.event_type in _TASK_ENDED:
                task_in_flight = False
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # removed after its retention since the start
            return None, False
        raise
    return held, task_in_flight


def message_differences(body: Mapping[str, Any], held: Mapping[str, Any]) -> list[str]:
    """What differs between `body` (valid: track() accepted it), resolved as of the held message's
    first track, and the held message, in words; empty when it is the same message."""
    as_of = parse_date_time(held.get("sentAt") or held.get("staleAt"))
    try:
        parsed = parse_track_input(body, as_of)
    except ValidationError:
        return [ANY_DIFFERENCE]  # valid now, but not as of the first track: not the same request
    # A guard tracked before messages carried a priority holds none: the rest must match.
    if "priority" not in held:
        parsed.pop("priority", None)
    keys = list(parsed) + [k for k in held if k not in parsed]
    return [_FIELD_WORDS.get(k, k) for k in keys if k not in parsed or k not in held or parsed[k] != held[k]]
