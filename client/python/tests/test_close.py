"""GuardClient.connect's client stops its Temporal runtime on close, waiting for the runtime's threads: a
process that ends right after its last call must not still have one handing a result over (close()
says why). Without a server: a lazy client, and a connect that fails. The threads are counted from
/proc (Linux); the README example runs against a server in test/readme-examples.test.ts."""
import asyncio
import base64
import os
import socket
import warnings

import pytest

from rbm_guard import GuardClient

KEYS = "test-key:" + base64.b64encode(bytes(32)).decode()
linux = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts the runtime's threads from /proc")


def runtime_threads() -> int:
    """The threads of temporalio's native runtime (Tokio names them)."""
    count = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                count += f.read().startswith("tokio")
        except FileNotFoundError:
            pass  # ended meanwhile
    return count


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@linux
def test_close_stops_the_runtime_and_waits_for_its_threads():
    async def run():
        before = runtime_threads()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the temporalio internals close() uses are where it expects them
            async with GuardClient.connect(closed_port(), KEYS, lazy=True) as guards:
                assert runtime_threads() > before
            assert runtime_threads() == before
        with pytest.raises(RuntimeError, match="closed"):
            await guards.status("rbm-guard/agent/m1")
        await guards.close()  # again: nothing to do

    asyncio.run(run())


@linux
def test_a_connect_that_fails_stops_its_runtime():
    async def run():
        before = runtime_threads()
        with pytest.raises(RuntimeError, match="connect"):
            await GuardClient.connect(closed_port(), KEYS)
        assert runtime_threads() == before

    asyncio.run(run())


def test_a_client_of_the_callers_is_left_to_them():
    async def run():
        theirs = object()  # close() does not touch it
        guards = GuardClient(theirs)  # type: ignore[arg-type]
        async with guards:
            pass
        with pytest.raises(RuntimeError, match="closed"):
            await guards.cancel("rbm-guard/agent/m1")

    asyncio.run(run())
