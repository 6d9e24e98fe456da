"""Which asyncio event loop the services run on: uvloop (libuv; aiohttp serves markedly more requests
per core on it) unless MERIDIAN_EVENT_LOOP=asyncio asks for the standard one, which keeps working
(the tests run on it).

uvloop has no `loop.sendfile` (it inherits the abstract method, which raises NotImplementedError), so
aiohttp's FileResponse fell back to reading 256 KiB blocks on a worker thread and writing them through
the transport: every pulled byte copied twice in user space, and per block a thread hop. `_SendfileLoop`
adds sendfile(2) for uvloop's plain TCP and Unix transports, as the standard loop has it: the kernel
moves the file's pages to the socket. TLS transports still fall back (the bytes must be encrypted)."""
from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from shared.logging import get_logger

try:
    import uvloop
except ImportError:  # a platform without a uvloop wheel
    uvloop = None  # type: ignore[assignment]

# One sendfile(2) call moves at most this much: the socket's free buffer space limits it anyway.
_SENDFILE_BLOCK = 1 << 30
# sendfile(2) calls get threads of their own: on the loop's default executor, many pulls waiting on a
# slow disk would queue the other work sent there (name lookups, aiohttp's file fallback, local
# storage writes) behind them. Each call is short (the socket is non-blocking), so a few threads do.
_SENDFILE_THREADS = 8
_sendfile_pool: ThreadPoolExecutor | None = None

log = get_logger(__name__)


def _pool() -> ThreadPoolExecutor:
    global _sendfile_pool
    if _sendfile_pool is None:
        _sendfile_pool = ThreadPoolExecutor(_SENDFILE_THREADS, thread_name_prefix="meridian-sendfile")
    return _sendfile_pool


def install() -> str:
    """Make asyncio.run() use the chosen loop in this process; returns its name."""
    if os.environ.get("MERIDIAN_EVENT_LOOP", "uvloop") == "asyncio" or uvloop is None:  # no uvloop wheel here
        return "asyncio"
    asyncio.set_event_loop_policy(_SendfilePolicy())
    return "uvloop"


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop that can sendfile (for asyncio.Runner(loop_factory=new_loop))."""
    return _SendfileLoop()


if uvloop is not None:
    # Cython classes that uvloop's type stubs do not list.
    _PLAIN_TRANSPORTS = (uvloop.loop.TCPTransport, uvloop.loop.UnixTransport)  # type: ignore[attr-defined]

    class _SendfileLoop(uvloop.Loop):
        async def sendfile(self, transport: asyncio.BaseTransport, file: IO[bytes], offset: int = 0,
                           count: int | None = None, *, fallback: bool | None = True) -> int:
            # The standard loop's argument checks (asyncio.BaseEventLoop._check_sendfile_params).
            if "b" not in getattr(file, "mode", "b"):
                raise ValueError("file should be opened in binary mode")
            if not isinstance(offset, int) or offset < 0:
                raise ValueError(f"offset must be a non-negative integer (got {offset!r})")
            if count is not None and (not isinstance(count, int) or count <= 0):
                raise ValueError(f"count must be a positive integer (got {count!r})")
            if not isinstance(transport, _PLAIN_TRANSPORTS) or transport.is_closing():
                if fallback is False:  # the caller asked for sendfile(2) or nothing
                    raise asyncio.SendfileNotAvailableError("sendfile needs a plain (not TLS) socket transport")
                # aiohttp (the only caller) then writes the file in blocks itself.
                raise NotImplementedError("sendfile needs a plain (not TLS) socket transport")
            return await _sendfile(self, transport, file, offset, count)

    class _SendfilePolicy(uvloop.EventLoopPolicy):
        def _loop_factory(self) -> asyncio.AbstractEventLoop:
            return _SendfileLoop()


async def _sendfile(loop: asyncio.AbstractEventLoop, transport: Any, file: IO[bytes], offset: int,
                    count: int | None) -> int:
    """Send the file's bytes [offset, offset+count) on the transport's socket; returns how many.

    The socket is written through a duplicate of its descriptor (uvloop refuses to watch a descriptor
    its transport owns), once everything the transport holds (the response headers) is on the wire.
    The call itself runs on a worker thread: on a page-cache miss sendfile(2) waits for the disk, which
    must not stall the event loop."""
    try:
        socket_fd = os.dup(transport.get_extra_info("socket").fileno())
    except OSError as exc:  # out of descriptors: aiohttp falls back to writing the body in blocks
        raise NotImplementedError(f"cannot duplicate the socket: {exc}") from exc
    file_fd = file.fileno()
    sent = 0
    try:
        while transport.get_write_buffer_size():
            await _writable(loop, socket_fd)
            await asyncio.sleep(0)  # let the transport flush before asking again
        while count is None or sent < count:
            if transport.is_closing():
                raise ConnectionResetError("the connection closed during sendfile")
            block = _SENDFILE_BLOCK if count is None else min(count - sent, _SENDFILE_BLOCK)
            call = loop.run_in_executor(_pool(), os.sendfile, socket_fd, file_fd, offset + sent, block)
            try:
                moved = await asyncio.shield(call)
            except asyncio.CancelledError:
                # The thread may not have made the call yet: closing the descriptors now could let it
                # send into (or from) whatever reuses their numbers. Close only once it has returned.
                await asyncio.wait([call])
                raise
            except BlockingIOError:
                await _writable(loop, socket_fd)
                continue
            if moved == 0:  # the end of the file
                if count is not None and sent < count:
                    # The file is shorter than the response promised (cut while it was sent): drop the
                    # connection, so the client sees a cut body instead of waiting for the rest on a
                    # connection kept alive, or reading the next answer as this one's bytes.
                    log.error("file ended short while sent; connection dropped", file=getattr(file, "name", None),
                              sent=sent, expected=count)
                    transport.abort()
                    raise ConnectionResetError(f"the file ended after {sent} of {count} bytes; connection dropped")
                break
            sent += moved
        return sent
    finally:
        os.close(socket_fd)
        if sent:
            file.seek(offset + sent)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)
