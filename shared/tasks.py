"""Stopping background tasks."""
from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task, *, recancel_every: float = 1.0) -> None:
    """Cancel `task` and return once it has ended (whatever it raised is dropped: the caller is stopping).

    It is cancelled again while it runs on. A cancellation can be swallowed: asyncio.wait_for on Python
    3.11 drops it when what it waits for ends at the same moment. A background loop that swallowed its
    one cancellation went on to its next pass, and a stop that awaited it never returned (`meridian up`
    stopped while the collector's first pass ran: seen once in about 100 tries)."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=recancel_every)
    read_outcome(task)


def read_outcome(task: asyncio.Future) -> None:
    """Mark an ended task's exception as read, so asyncio does not report it as never retrieved (for a
    done-callback where the caller learns of the failure some other way, or not at all on purpose)."""
    if not task.cancelled():
        task.exception()
