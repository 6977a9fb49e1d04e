"""Deferred starts, as client/deferred-start.ts says them (the contract's `deferredStart`): a guard that
only waits for its deadline starts with a Temporal start delay until it instead of a deadline timer
(one billable action less). Such a guard runs no workflow task before its deadline, so no worker can
answer a `status` query: its status then comes from its start input, by the contract's template."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client

from .contract import CONTRACT
from .track import iso, parse_date_time

_DEFERRED: dict[str, Any] = CONTRACT["deferredStart"]
_BEFORE_FIRST_RUN: dict[str, Any] = _DEFERRED["statusBeforeFirstRun"]
MIN_DELAY_MS: int = _DEFERRED["minDelayMs"]
FIRST_PAGE: int = _BEFORE_FIRST_RUN["firstPage"]
# JavaScript's \w (fillTemplate's) is ASCII only.
_PLACEHOLDER = re.compile(r"\{(\w+)\}", re.ASCII)


def start_delay_ms(message: Mapping[str, Any], now: datetime) -> int:
    """The start delay of a guard for this TrackedMessage, or 0 (start now). A guard that sends the RBM
    message itself must run now, and a wait shorter than minDelayMs is not worth a deferred start."""
    if message.get("send"):
        return 0
    stale_at = parse_date_time(message["staleAt"])
    if stale_at is None:
        return 0
    delay = (stale_at - now) // timedelta(milliseconds=1)
    return delay if delay >= MIN_DELAY_MS else 0


def may_not_have_run(info: WorkflowExecutionInfo) -> bool:
    """What describe() tells of an open guard: started deferred (execution time ≠ start time, compared
    in milliseconds as TypeScript does) and short enough to have run nothing."""
    return _ms(info, "execution_time") != _ms(info, "start_time") and info.history_length < FIRST_PAGE


def fill_template(template: Any, values: Mapping[str, str]) -> Any:
    """Every `{placeholder}` in every string of `template`, recursively, replaced by its value (an unknown
    one is left as it is): client/deferred-start.ts's fillTemplate."""
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    if isinstance(template, list):
        return [fill_template(v, values) for v in template]
    if isinstance(template, dict):
        return {k: fill_template(v, values) for k, v in template.items()}
    return template


def status_from_start(workflow_id: str, guard_input: Mapping[str, Any], started_at: datetime) -> dict[str, Any]:
    """The status a deferred guard that has run nothing has: the contract's template, filled from its start."""
    values = {
        "workflowId": workflow_id,
        "agentId": guard_input["agentId"],
        "messageId": guard_input["messageId"],
        "staleAt": guard_input["message"]["staleAt"],
        "startedAt": iso(started_at),
    }
    return fill_template(_BEFORE_FIRST_RUN["template"], values)


async def status_before_first_run(client: Client, workflow_id: str) -> dict[str, Any] | None:
    """The status of a deferred guard that has run no workflow task yet (in its start delay, or past it
    in a deadline wave's backlog), from its start input; None once it ran. One page of history: a guard
    that ran nothing holds fewer than firstPage events."""
    response = await client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id), maximum_page_size=FIRST_PAGE)
    )
    events = response.history.events
    if any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in events):
        return None
    if not events or events[0].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED or not events[0].HasField("event_time"):
        return None
    payloads = events[0].workflow_execution_started_event_attributes.input.payloads
    if not payloads:
        return None
    guard_input = (await client.data_converter.decode(payloads[:1]))[0]
    if not isinstance(guard_input, dict) or not isinstance(guard_input.get("message"), dict):
        return None  # started by an early RBM event: no message, and never deferred
    return status_from_start(workflow_id, guard_input, _ms_datetime(events[0].event_time.ToMilliseconds()))


def _ms(info: WorkflowExecutionInfo, field: str) -> int | None:
    return getattr(info, field).ToMilliseconds() if info.HasField(field) else None


def _ms_datetime(ms: int) -> datetime:
    """A datetime of whole milliseconds (floored, as TypeScript's tsToMs): what toISOString() shows."""
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
