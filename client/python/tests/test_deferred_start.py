"""Deferred starts as client/deferred-start.ts has them, without a server: the contract's status template
filled from a start, the start-delay rule, and what track() and status() hand Temporal (a stand-in
client records it). The cross-language test runs them against the TypeScript worker."""
import asyncio
import copy
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryResponse
from temporalio.converter import DataConverter

from rbm_guard import CONTRACT, GuardClient, guard_workflow_id, parse_track_input
from rbm_guard.deferred_start import FIRST_PAGE, MIN_DELAY_MS, fill_template, may_not_have_run, start_delay_ms, status_before_first_run, status_from_start

NOW = datetime(2026, 12, 4, 10, 0, 0, tzinfo=timezone.utc)
MESSAGE = parse_track_input({"agentId": "Acme@rbm.goog", "messageId": "m/é-1", "phone": "+14155550100", "staleIn": "10m", "trafficType": "AUTHENTICATION"}, NOW)
WORKFLOW_ID = guard_workflow_id(MESSAGE["agentId"], MESSAGE["messageId"])
GUARD_INPUT = {"agentId": MESSAGE["agentId"], "messageId": MESSAGE["messageId"], "rules": CONTRACT["guardRules"], "message": MESSAGE, "deferred": True}
# A start time with microseconds: the status shows milliseconds, as JavaScript's toISOString().
STARTED = datetime(2026, 12, 4, 10, 11, 12, 13_999, tzinfo=timezone.utc)
EXPECTED = {
    "workflowId": "rbm-guard/Acme/m/é-1",
    "agentId": "Acme",
    "messageId": "m/é-1",
    "state": "AWAITING_DELIVERY",
    "outcome": None,
    "staleAt": "2026-12-04T10:10:00.000Z",
    "revokeRounds": 0,
    "timeline": [{"at": "2026-12-04T10:11:12.013Z", "state": "AWAITING_DELIVERY", "event": "TRACKED", "reason": "guarding until 2026-12-04T10:10:00.000Z"}],
}


def test_the_template_filled_from_a_start_is_the_status_typescript_gives():
    template = copy.deepcopy(CONTRACT["deferredStart"]["statusBeforeFirstRun"]["template"])
    assert status_from_start(WORKFLOW_ID, GUARD_INPUT, STARTED) == EXPECTED
    # Any zone: startedAt is UTC. The contract's template is left as it was.
    assert status_from_start(WORKFLOW_ID, GUARD_INPUT, STARTED.astimezone(timezone(timedelta(hours=-7)))) == EXPECTED
    assert CONTRACT["deferredStart"]["statusBeforeFirstRun"]["template"] == template


def test_fill_template_fills_every_string_and_leaves_the_rest():
    template = {"a": "{x}-{x}", "b": ["{y}", 3, None, True, {"c": "{unknown} {x}"}], "{x}": 1.5}
    assert fill_template(template, {"x": "1", "y": "$1 \\1"}) == {"a": "1-1", "b": ["$1 \\1", 3, None, True, {"c": "{unknown} 1"}], "{x}": 1.5}


def test_only_a_guard_that_waits_long_enough_is_deferred():
    at = lambda ms: {"staleAt": (NOW + timedelta(milliseconds=ms)).isoformat(), "send": None}  # noqa: E731
    assert start_delay_ms(MESSAGE, NOW) == 600_000
    assert start_delay_ms({**MESSAGE, "send": {"text": "hi"}}, NOW) == 0  # it sends the message itself: runs now
    assert start_delay_ms(at(MIN_DELAY_MS), NOW) == MIN_DELAY_MS
    assert start_delay_ms(at(MIN_DELAY_MS - 1), NOW) == 0
    assert start_delay_ms(at(-5_000), NOW) == 0  # a late track is guarded at once


def test_describe_tells_a_guard_that_may_not_have_run():
    info = WorkflowExecutionInfo(history_length=FIRST_PAGE - 1)
    info.start_time.FromDatetime(STARTED)
    info.execution_time.FromDatetime(STARTED)
    assert not may_not_have_run(info)  # started at once
    info.execution_time.FromDatetime(STARTED + timedelta(minutes=10))
    assert may_not_have_run(info)
    info.history_length = FIRST_PAGE
    assert not may_not_have_run(info)  # too long to have run nothing


class FakeTemporal:
    """What GuardClient and status_before_first_run use of a temporalio Client, recorded."""

    def __init__(self, events: list[HistoryEvent] | None = None) -> None:
        self.namespace = "default"
        self.data_converter = DataConverter.default
        self.started: list[tuple[Any, dict[str, Any]]] = []
        self.history_requests: list[Any] = []
        self.workflow_service = SimpleNamespace(get_workflow_execution_history=self._history)
        self._events = events or []

    async def _history(self, request: Any) -> GetWorkflowExecutionHistoryResponse:
        self.history_requests.append(request)
        response = GetWorkflowExecutionHistoryResponse()
        response.history.events.extend(self._events)
        return response

    async def start_workflow(self, workflow: str, arg: Any, **kwargs: Any) -> SimpleNamespace:
        self.started.append((arg, kwargs))
        return SimpleNamespace(first_execution_run_id="run-1")


def started_event(guard_input: dict[str, Any]) -> HistoryEvent:
    event = HistoryEvent(event_id=1, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    event.event_time.FromNanoseconds(int(STARTED.timestamp()) * 10**9 + 13_999_999)  # 10:11:12.013999999
    payloads = asyncio.run(DataConverter.default.encode([guard_input]))
    event.workflow_execution_started_event_attributes.input.payloads.extend(payloads)
    return event


def test_status_before_first_run_reads_one_page_of_the_start():
    fake = FakeTemporal([started_event(GUARD_INPUT), HistoryEvent(event_id=2, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)])
    assert asyncio.run(status_before_first_run(fake, WORKFLOW_ID)) == EXPECTED  # type: ignore[arg-type]
    request = fake.history_requests[0]
    assert (request.namespace, request.execution.workflow_id, request.maximum_page_size) == ("default", WORKFLOW_ID, FIRST_PAGE)
    ran = FakeTemporal([started_event(GUARD_INPUT), HistoryEvent(event_id=2, event_type=EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)])
    assert asyncio.run(status_before_first_run(ran, WORKFLOW_ID)) is None  # type: ignore[arg-type]


def test_track_starts_a_waiting_guard_deferred_unless_told_not_to():
    body = {k: v for k, v in MESSAGE.items() if k in ("agentId", "messageId", "phone", "trafficType")}

    def start(defer_start: bool, **more: Any) -> tuple[Any, dict[str, Any]]:
        fake = FakeTemporal()
        result = asyncio.run(GuardClient(fake, defer_start=defer_start).track({**body, **more}))  # type: ignore[arg-type]
        assert result.created and result.run_id == "run-1"
        return fake.started[0]

    guard_input, options = start(True, staleIn="10m")
    assert guard_input["deferred"] is True
    assert timedelta(minutes=10) - timedelta(seconds=5) < options["start_delay"] <= timedelta(minutes=10)
    for guard_input, options in (start(False, staleIn="10m"), start(True, staleIn="10m", sendText="hi"), start(True, staleIn=MIN_DELAY_MS - 1)):
        assert "deferred" not in guard_input and options["start_delay"] is None
