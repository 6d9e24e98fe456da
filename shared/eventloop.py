"""Which asyncio event loop the services run on: uvloop (libuv; aiohttp serves markedly more requests
per core on it) unless MERIDIAN_EVENT_LOOP=asyncio asks for the standard one, which keeps working
(the tests run on it)."""
from __future__ import annotations

import asyncio
import os


def install() -> str:
    """Make asyncio.run() use the chosen loop in this process; returns its name."""
    if os.environ.get("MERIDIAN_EVENT_LOOP", "uvloop") == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:  # a platform without a uvloop wheel
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
