"""GuardClient for Python backends: track / status / cancel / extend / list, speaking the guard's
contract (guard-contract.json) on Temporal directly, with the same encrypted payloads as the
TypeScript service. Input is validated before anything is sent; an error names the field."""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Generator, Mapping

import temporalio
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import Priority, SearchAttributeKey, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime, TelemetryConfig
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
from .deferred_start import may_not_have_run, start_delay_ms, status_before_first_run
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
    """`async with GuardClient.connect(address, keys) as guards:` opens a connection of its own and closes it
    at the end. `GuardClient(client)` uses a Client someone else made; its owner's to close.

    `defer_start` (default on, as in TypeScript): a guard that only waits for its deadline starts with a
    start delay until it instead of a deadline timer (one billable action less; deferred_start.py). Its
    first workflow task then runs at the deadline, or when an RBM event, a cancel or an extend reaches it;
    status() answers from its start input until then."""

    def __init__(self, client: Client, task_queue: str = DEFAULT_TASK_QUEUE, *, defer_start: bool = True) -> None:
        self._client: Client | None = client
        self._task_queue = task_queue
        self._defer_start = defer_start
        self._runtime: Runtime | None = None  # the one connect() made: close() stops it

    @classmethod
    def connect(cls, address: str, keys: str, namespace: str = "default", *, task_queue: str = DEFAULT_TASK_QUEUE, defer_start: bool = True, **kwargs: Any) -> "_Connecting":
        """A GuardClient on a connection and a Temporal runtime of its own: `async with
        GuardClient.connect(...) as guards:`, or `guards = await GuardClient.connect(...)` and
        `await guards.close()` when done. `kwargs` go to temporalio's Client.connect; with a `runtime`
        of the caller's, close() leaves that runtime running."""
        theirs: Runtime | None = kwargs.pop("runtime", None)

        async def open_() -> GuardClient:
            runtime = Runtime(telemetry=TelemetryConfig()) if theirs is None else theirs  # Runtime.default()'s settings
            try:
                guards = cls(await connect(address, keys, namespace, runtime=runtime, **kwargs), task_queue, defer_start=defer_start)
            except BaseException:
                if theirs is None:
                    _stop_runtime(runtime, None)
                raise
            if theirs is None:
                guards._runtime = runtime
            return guards

        return _Connecting(open_)

    async def close(self) -> None:
        """Ends this client; one from connect() stops its Temporal runtime, waiting for the runtime's
        threads. Calls still running then never finish: close after them. A GuardClient(client) leaves
        the client to its owner.

        Why a process must close: temporalio's native runtime hands each call's result to the event loop
        from a thread of its own, which is still inside that hand-over (wanting Python's GIL back) when
        the awaiting code resumes. A process that ends right after its last call can begin finalizing
        the interpreter before that thread is done; CPython (before 3.14) then ends the thread mid-call
        and the process dies by SIGSEGV or SIGABRT after its work was done (temporalio/sdk-python#300)."""
        client, runtime = self._client, self._runtime
        self._client = self._runtime = None
        if client is not None and runtime is not None:
            _stop_runtime(runtime, client)

    async def __aenter__(self) -> "GuardClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def _temporal(self) -> Client:
        if self._client is None:
            raise RuntimeError("GuardClient is closed")
        return self._client

    async def track(self, message: Mapping[str, Any] | None = None, **fields: Any) -> TrackResult:
        """Starts the guard of a sent message, or finds the one already guarding it. Fields in the
        contract's names (agentId, staleIn, …) or as snake_case keywords (agent_id, stale_in, …).
        Raises DifferentMessageError when that guard holds another message under this id."""
        data = {**(message or {}), **{(_camel(k) if _camel(k) in _TRACK_FIELDS else k): v for k, v in fields.items()}}
        tracked = parse_track_input(data)
        workflow_id = guard_workflow_id(tracked["agentId"], tracked["messageId"])
        delay_ms = start_delay_ms(tracked, datetime.now(timezone.utc)) if self._defer_start else 0
        guard_input = {"agentId": tracked["agentId"], "messageId": tracked["messageId"], "rules": GUARD_RULES, "message": tracked, **({"deferred": True} if delay_ms else {})}
        stale_at = parse_date_time(tracked["staleAt"])
        try:
            handle = await self._temporal.start_workflow(
                WORKFLOW_TYPE,
                guard_input,
                id=workflow_id,
                task_queue=self._task_queue,
                start_delay=timedelta(milliseconds=delay_ms) if delay_ms else None,
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
        handle = self._temporal.get_workflow_handle(workflow_id)
        run_id: str | None = None
        try:
            await handle.signal(SIGNAL_TRACK, tracked)
            run_id = (await handle.describe()).run_id
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        held = await held_message(self._temporal, workflow_id)
        if held is None:
            raise DifferentMessageError(workflow_id, None)
        if differences := message_differences(data, held.message):
            raise DifferentMessageError(workflow_id, differences)
        # The first track of a guard an early RBM event started is this call's: new to the caller.
        created = not held.from_start and held.track_signals == 1 and run_id is not None
        return TrackResult(workflow_id, run_id, created, run_id is None)

    async def status(self, workflow_id: str) -> dict[str, Any]:
        """State and timeline; for a closed guard its final status (no worker needed)."""
        handle = self._temporal.get_workflow_handle(_checked_id(workflow_id))
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return await handle.result()
        # A deferred guard that has run no workflow task yet (in its start delay, or past it in a deadline
        # wave's backlog) has no worker to answer a query: its status is the one its start input gives.
        if may_not_have_run(desc.raw_info) and (waiting := await status_before_first_run(self._temporal, handle.id)):
            return waiting
        return await handle.query(QUERY_STATUS)

    async def cancel(self, workflow_id: str, reason: str | None = None) -> dict[str, Any]:
        return await self._temporal.get_workflow_handle(_checked_id(workflow_id)).execute_update(UPDATE_CANCEL, {} if reason is None else {"reason": reason})

    async def extend(self, workflow_id: str, stale_at: datetime | str) -> dict[str, Any]:
        at = parse_date_time(stale_at)
        if at is None:
            raise ValidationError([("staleAt", f"not an ISO-8601 date-time with a zone: {stale_at}")])
        if at <= datetime.now(timezone.utc):
            raise ValidationError([("staleAt", f"{iso(at)} is in the past")])
        return await self._temporal.get_workflow_handle(_checked_id(workflow_id)).execute_update(UPDATE_EXTEND, {"staleAt": iso(at)})

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
        async for wf in self._temporal.list_workflows(" AND ".join(clauses)):
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


def _stop_runtime(runtime: Runtime, client: Client | None) -> None:
    """Stops `runtime` now. The native runtime ends with its last native handle, the runtime's own or
    the connection's (which holds it too), and ending waits for its threads with the GIL released: a
    thread still handing a result over finishes first. Python objects can outlive close() (an
    exception's traceback holds the frames of the call that raised it), so the handles are let go of
    here rather than when the last reference goes. temporalio has no public close for a client or a
    runtime: `_bridge_client`, `_core_runtime` and `_ref` are its attributes as of 1.35, and
    tests/test_close.py checks that the runtime's threads are gone."""
    service = client.service_client if client is not None else None
    core = getattr(runtime, "_core_runtime", None)
    bridge = getattr(service, "_bridge_client", None)  # None: a lazy client that never connected
    if not hasattr(core, "_ref") or (service is not None and not hasattr(service, "_bridge_client")) or (bridge is not None and not hasattr(bridge, "_ref")):
        warnings.warn(f"rbm_guard: temporalio {temporalio.__version__} keeps its native handles elsewhere; its runtime is left running", RuntimeWarning, stacklevel=2)
        return
    if bridge is not None:
        bridge._ref = None
    core._ref = None


class _Connecting:
    """What GuardClient.connect() returns: `async with` it (closed at the end), or await it."""

    def __init__(self, open_: Callable[[], Awaitable[GuardClient]]) -> None:
        self._open = open_
        self._guards: GuardClient | None = None

    def __await__(self) -> Generator[Any, None, GuardClient]:
        return self._open().__await__()

    async def __aenter__(self) -> GuardClient:
        self._guards = await self._open()
        return self._guards

    async def __aexit__(self, *exc: object) -> None:
        guards, self._guards = self._guards, None
        if guards is not None:
            await guards.close()


def _checked_id(workflow_id: str) -> str:
    if not isinstance(workflow_id, str) or parse_guard_workflow_id(workflow_id) is None:
        raise ValidationError([("workflowId", "a guard id looks like rbm-guard/<agentId>/<messageId>")])
    return workflow_id
