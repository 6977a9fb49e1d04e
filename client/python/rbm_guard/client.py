"""GuardClient for Python backends: track / status / cancel / extend / list, speaking the guard's
contract (guard-contract.json) on Temporal directly, with the same encrypted payloads as the
TypeScript service. Input is validated before anything is sent; an error names the field."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import Priority, SearchAttributeKey, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from .codec import EncryptionCodec
from .contract import (
    CONTRACT,
    DEFAULT_TASK_QUEUE,
    GUARD_RULES,
    QUERY_STATUS,
    SIGNAL_TRACK,
    UPDATE_CANCEL,
    UPDATE_EXTEND,
    WORKFLOW_TYPE,
    agent_id_problem,
    guard_workflow_id,
    normalize_agent_id,
    parse_guard_workflow_id,
)
from .same_message import DifferentMessageError, held_message, message_differences
from .track import ValidationError, iso, parse_date_time, parse_track_input

_SA_AGENT = SearchAttributeKey.for_keyword("RbmAgentId")
_SA_STATE = SearchAttributeKey.for_keyword("RbmState")
_SA_OUTCOME = SearchAttributeKey.for_keyword("RbmOutcome")
_SA_STALE_AT = SearchAttributeKey.for_datetime("RbmStaleAt")
_TRACK_FIELDS = set(CONTRACT["schemas"]["TrackRequest"]["properties"])


def _camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def data_converter(codec: EncryptionCodec | None) -> DataConverter:
    """The converter every client needs: Temporal's default JSON, wrapped by the payload codec."""
    return DataConverter(payload_codec=codec) if codec else DataConverter.default


async def connect(address: str, keys: str, namespace: str = "default", **kwargs: Any) -> Client:
    """A Client with the codec for `keys` (`id:base64key`, comma-separated: RBM_GUARD_ENCRYPTION_KEYS)."""
    return await Client.connect(address, namespace=namespace, data_converter=data_converter(EncryptionCodec.from_text(keys)), **kwargs)


@dataclass(frozen=True)
class TrackResult:
    """`created`: this call started the guard, or gave its message to a guard an early RBM event
    started (the HTTP API's 201); `already_closed`: the guard had ended, nothing new was started."""

    workflow_id: str
    run_id: str | None
    created: bool
    already_closed: bool


class GuardClient:
    def __init__(self, client: Client, task_queue: str = DEFAULT_TASK_QUEUE) -> None:
        self._client = client
        self._task_queue = task_queue

    async def track(self, message: Mapping[str, Any] | None = None, **fields: Any) -> TrackResult:
        """Starts the guard of a sent message, or finds the one already guarding it. Fields in the
        contract's names (agentId, staleIn, …) or as snake_case keywords (agent_id, stale_in, …).
        Raises DifferentMessageError when that guard holds another message under this id."""
        data = {**(message or {}), **{(_camel(k) if _camel(k) in _TRACK_FIELDS else k): v for k, v in fields.items()}}
        tracked = parse_track_input(data)
        workflow_id = guard_workflow_id(tracked["agentId"], tracked["messageId"])
        guard_input = {"agentId": tracked["agentId"], "messageId": tracked["messageId"], "rules": GUARD_RULES, "message": tracked}
        stale_at = parse_date_time(tracked["staleAt"])
        try:
            handle = await self._client.start_workflow(
                WORKFLOW_TYPE,
                guard_input,
                id=workflow_id,
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes([SearchAttributePair(_SA_AGENT, tracked["agentId"]), SearchAttributePair(_SA_STALE_AT, stale_at)]),
                # In a deadline wave the server hands out an OTP's tasks before a promotion's.
                priority=Priority(priority_key=tracked["priority"]),
                static_summary=f"RBM {tracked['trafficType'].lower()} from {tracked['agentId']}, stale at {tracked['staleAt']}, fallback: {'sms' if tracked['fallback'] else 'none'}, priority {tracked['priority']}",
            )
            return TrackResult(workflow_id, handle.first_execution_run_id, True, False)
        except WorkflowAlreadyStartedError:
            pass
        # The guard exists: tracked before, or started by an early RBM event. Hand it the message (a
        # no-op if it has one; the first one a guard gets is the one it keeps); a closed guard is never
        # reopened. Then the rule every entry point shares (same_message.py): it must hold this message.
        handle = self._client.get_workflow_handle(workflow_id)
        run_id: str | None = None
        try:
            await handle.signal(SIGNAL_TRACK, tracked)
            run_id = (await handle.describe()).run_id
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        held = await held_message(self._client, workflow_id)
        if held is None:
            raise DifferentMessageError(workflow_id, None)
        if differences := message_differences(data, held.message):
            raise DifferentMessageError(workflow_id, differences)
        # The first track of a guard an early RBM event started is this call's: new to the caller.
        created = not held.from_start and held.track_signals == 1 and run_id is not None
        return TrackResult(workflow_id, run_id, created, run_id is None)

    async def status(self, workflow_id: str) -> dict[str, Any]:
        """State and timeline; for a closed guard its final status (no worker needed)."""
        handle = self._client.get_workflow_handle(_checked_id(workflow_id))
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.RUNNING:
            return await handle.query(QUERY_STATUS)
        return await handle.result()

    async def cancel(self, workflow_id: str, reason: str | None = None) -> dict[str, Any]:
        return await self._client.get_workflow_handle(_checked_id(workflow_id)).execute_update(UPDATE_CANCEL, {} if reason is None else {"reason": reason})

    async def extend(self, workflow_id: str, stale_at: datetime | str) -> dict[str, Any]:
        at = parse_date_time(stale_at)
        if at is None:
            raise ValidationError([("staleAt", f"not an ISO-8601 date-time with a zone: {stale_at}")])
        if at <= datetime.now(timezone.utc):
            raise ValidationError([("staleAt", f"{iso(at)} is in the past")])
        return await self._client.get_workflow_handle(_checked_id(workflow_id)).execute_update(UPDATE_EXTEND, {"staleAt": iso(at)})

    async def list(self, *, state: str | None = None, outcome: str | None = None, agent_id: str | None = None, open: bool | None = None, limit: int = 100) -> list[dict[str, Any]]:
        states = CONTRACT["states"]
        issues = []
        if state is not None and state not in states["all"]:
            issues.append(("state", f"one of {', '.join(states['all'])}"))
        if outcome is not None and outcome not in states["outcomes"]:
            issues.append(("outcome", f"one of {', '.join(states['outcomes'])}"))
        if agent_id is not None and (problem := agent_id_problem(agent_id.strip())):
            issues.append(("agentId", problem))
        if not isinstance(limit, int) or limit < 1:
            issues.append(("limit", "a positive whole number"))
        if issues:
            raise ValidationError(issues)
        clauses = [f'WorkflowType = "{WORKFLOW_TYPE}"']
        if state:
            clauses.append(f'RbmState = "{state}"')
        if outcome:
            clauses.append(f'RbmOutcome = "{outcome}"')
        if agent_id:
            clauses.append(f'RbmAgentId = "{normalize_agent_id(agent_id)}"')
        if open:
            clauses.append('ExecutionStatus = "Running"')
        out: list[dict[str, Any]] = []
        async for wf in self._client.list_workflows(" AND ".join(clauses)):
            sa = wf.typed_search_attributes
            stale = sa.get(_SA_STALE_AT)
            out.append({
                "workflowId": wf.id,
                "state": sa.get(_SA_STATE),
                "outcome": sa.get(_SA_OUTCOME),
                "agentId": sa.get(_SA_AGENT),
                "staleAt": iso(stale) if stale else None,
                "startTime": iso(wf.start_time),
                "closeTime": iso(wf.close_time) if wf.close_time else None,
            })
            if len(out) >= limit:
                break
        return out


def _checked_id(workflow_id: str) -> str:
    if not isinstance(workflow_id, str) or parse_guard_workflow_id(workflow_id) is None:
        raise ValidationError([("workflowId", "a guard id looks like rbm-guard/<agentId>/<messageId>")])
    return workflow_id
