"""Stopping a background loop that swallowed its cancellation (shared/tasks.py)."""
from __future__ import annotations

import asyncio
import contextlib
import time

from shared.tasks import cancel_and_wait


async def test_a_loop_that_swallows_one_cancellation_is_still_stopped():
    passes = []

    async def loop_swallowing_the_first_cancellation() -> None:
        swallowed = False
        while True:  # a background pass, as the collector's, then a long sleep until the next
            passes.append(time.monotonic())
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed = True  # what asyncio.wait_for can do on Python 3.11
            await asyncio.sleep(0 if swallowed else 3600)

    task = asyncio.ensure_future(loop_swallowing_the_first_cancellation())
    await asyncio.sleep(0.01)
    began = time.monotonic()
    await asyncio.wait_for(cancel_and_wait(task, recancel_every=0.2), timeout=5)
    assert task.cancelled()
    assert time.monotonic() - began < 2


async def test_what_the_task_raised_is_dropped_and_counted_as_retrieved():
    async def fails_when_cancelled() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    task = asyncio.ensure_future(fails_when_cancelled())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert isinstance(task.exception(), RuntimeError)


async def test_a_task_already_ended_returns_at_once():
    task = asyncio.ensure_future(asyncio.sleep(0))
    await task
    began = time.monotonic()
    await cancel_and_wait(task)
    assert time.monotonic() - began < 0.1


async def test_the_old_single_cancel_hangs_on_such_a_loop():
    """The pattern it replaces (cancel once, await): the loop runs on, so the await would never end."""
    async def loop_swallowing_the_first_cancellation() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)

    task = asyncio.ensure_future(loop_swallowing_the_first_cancellation())
    await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=0.3)
    assert not done
    await cancel_and_wait(task)
