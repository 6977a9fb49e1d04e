"""Cross-language: driven by test/client/cross-language.test.ts, which runs the TypeScript worker against the
RBM simulator and the SMS sink and passes what to do in RBM_GUARD_XLANG_* variables. Skipped when run
alone (the unit suites need no server)."""
import asyncio
import json
import os
import time

import pytest

from rbm_guard import DifferentMessageError, GuardClient

ENV = os.environ
needs_stack = pytest.mark.skipif("RBM_GUARD_XLANG_ADDRESS" not in ENV, reason="run by test/client/cross-language.test.ts")
POLICY = {"graceMs": 1500, "lingerMs": 2500, "revokeAttempts": 2, "maxRevokeRounds": 2, "fallbackAttempts": 4}


_opened: list[GuardClient] = []


async def guards() -> GuardClient:
    g = await GuardClient.connect(ENV["RBM_GUARD_XLANG_ADDRESS"], ENV["RBM_GUARD_XLANG_KEYS"], task_queue=ENV["RBM_GUARD_XLANG_TASK_QUEUE"])
    _opened.append(g)
    return g


def run_closing(coro) -> None:
    """Runs a test's body, then closes its clients and their runtimes, so no SDK thread meets the
    interpreter's exit (temporalio/sdk-python#300; client.py, GuardClient.close)."""

    async def body():
        try:
            await coro
        finally:
            while _opened:
                await _opened.pop().close()

    asyncio.run(body())


async def until_outcome(g: GuardClient, workflow_id: str, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status = await g.status(workflow_id)
        if status["outcome"] or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.2)


@needs_stack
@pytest.mark.skipif("RBM_GUARD_XLANG_MESSAGE_ID" not in ENV, reason="this run reads only")
def test_python_tracks_the_typescript_worker_revokes_and_sends():
    async def run():
        g = await guards()
        message = dict(
            agent_id=ENV["RBM_GUARD_XLANG_AGENT_ID"],
            message_id=ENV["RBM_GUARD_XLANG_MESSAGE_ID"],
            phone=ENV["RBM_GUARD_XLANG_PHONE"],
            stale_in="1s",
            fallback_text=ENV["RBM_GUARD_XLANG_TEXT"],
            traffic_type="AUTHENTICATION",
            policy=POLICY,
        )
        result = await g.track(**message)
        assert result.created
        again = await g.track(**message)  # the same message (staleIn resolves from the first track)
        assert not again.created and again.run_id == result.run_id
        status = await until_outcome(g, result.workflow_id)
        assert status["outcome"] == "FALLBACK_SENT", status
        states = [t["state"] for t in status["timeline"]]
        assert states[0] == "AWAITING_DELIVERY" and "REVOKING" in states and states[-1] == "FALLBACK_SENT", states
        print("XLANG " + json.dumps({"workflowId": result.workflow_id, "outcome": status["outcome"], "states": states}))

    run_closing(run())


@needs_stack
@pytest.mark.skipif("RBM_GUARD_XLANG_READ_ID" not in ENV, reason="this run tracks only")
def test_python_reads_what_typescript_wrote():
    async def run():
        g = await guards()
        workflow_id = ENV["RBM_GUARD_XLANG_READ_ID"]
        status = await g.status(workflow_id)
        assert status["workflowId"] == workflow_id
        assert status["outcome"] == ENV["RBM_GUARD_XLANG_EXPECT_OUTCOME"], status
        assert [t["state"] for t in status["timeline"]][-1] == status["outcome"]
        listed = await g.list(agent_id=status["agentId"], outcome=status["outcome"], limit=1000)
        assert workflow_id in [s["workflowId"] for s in listed]
        print("XLANG " + json.dumps({"workflowId": workflow_id, "outcome": status["outcome"]}))

    run_closing(run())


@needs_stack
@pytest.mark.skipif("RBM_GUARD_XLANG_CASES" not in ENV, reason="run by the same-message test")
def test_python_answers_the_same_message_like_every_client():
    """Tracks each body of RBM_GUARD_XLANG_CASES again (their guards exist) and reports accepted or refused."""

    async def run():
        g = await guards()
        out = []
        for body in json.loads(ENV["RBM_GUARD_XLANG_CASES"]):
            try:
                r = await g.track(body)
                out.append({"accepted": True, "created": r.created, "runId": r.run_id, "differences": None})
            except DifferentMessageError as err:
                out.append({"accepted": False, "created": None, "runId": None, "differences": err.differences})
        print("XLANG " + json.dumps(out))

    run_closing(run())


@needs_stack
@pytest.mark.skipif("RBM_GUARD_XLANG_DEFER_MESSAGE_ID" not in ENV, reason="run by the deferred-start test")
def test_python_tracks_a_deferred_guard_and_reads_its_status_at_once():
    """A guard that only waits starts deferred (defer_start, on by default): no worker has run it, and
    status() answers at once from its start input (deferred_start.py)."""

    async def run():
        g = await guards()
        result = await g.track(
            agent_id=ENV["RBM_GUARD_XLANG_AGENT_ID"],
            message_id=ENV["RBM_GUARD_XLANG_DEFER_MESSAGE_ID"],
            phone=ENV["RBM_GUARD_XLANG_PHONE"],
            stale_in=ENV["RBM_GUARD_XLANG_STALE_IN"],
            fallback_text=ENV["RBM_GUARD_XLANG_TEXT"],
            traffic_type="AUTHENTICATION",
            policy=POLICY,
        )
        assert result.created
        info = (await g._temporal.get_workflow_handle(result.workflow_id).describe()).raw_info
        assert info.execution_time.ToMilliseconds() > info.start_time.ToMilliseconds(), "started without a start delay"
        began = time.monotonic()
        status = await g.status(result.workflow_id)
        elapsed = time.monotonic() - began
        assert elapsed < 5, elapsed
        assert (status["workflowId"], status["state"], status["outcome"]) == (result.workflow_id, "AWAITING_DELIVERY", None), status
        assert [t["event"] for t in status["timeline"]] == ["TRACKED"], status
        print("XLANG " + json.dumps(status))

    run_closing(run())


@needs_stack
@pytest.mark.skipif("RBM_GUARD_XLANG_STATUS_ID" not in ENV, reason="run by the deferred-start test")
def test_python_prints_a_guard_status():
    async def run():
        g = await guards()
        print("XLANG " + json.dumps(await g.status(ENV["RBM_GUARD_XLANG_STATUS_ID"])))

    run_closing(run())


@needs_stack
@pytest.mark.skipif("RBM_GUARD_XLANG_CANCEL_ID" not in ENV, reason="run by the deferred-start test")
def test_python_cancels_a_guard():
    async def run():
        g = await guards()
        status = await g.cancel(ENV["RBM_GUARD_XLANG_CANCEL_ID"], "cancelled from python")
        assert status["outcome"] == "CANCELLED", status
        print("XLANG " + json.dumps(status))

    run_closing(run())
