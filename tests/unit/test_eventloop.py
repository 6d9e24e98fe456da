"""The services' event loop (shared/eventloop.py): uvloop with sendfile(2) for FileResponse, so local
blobs are pulled without being copied through Python. Each test runs an aiohttp server on that loop,
as `meridian up` and the service commands do, and reads from it with a real client."""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
import threading

import aiohttp
import pytest
from aiohttp import web

from shared import eventloop

SIZE = 8 << 20


@pytest.fixture
def blob(tmp_path):
    data = os.urandom(SIZE)
    path = tmp_path / "blob"
    path.write_bytes(data)
    return path, data


@pytest.fixture
def no_fallback(monkeypatch):
    """Fail any response that falls back to reading blocks through Python."""
    async def refused(*args, **kwargs):
        raise AssertionError("FileResponse fell back to reading blocks")

    monkeypatch.setattr(web.FileResponse, "_sendfile_fallback", refused)


def run_on_services_loop(main):
    """Run `main` on the loop the services get from eventloop.install(), and put the default back."""
    assert eventloop.install() == "uvloop"
    try:
        return asyncio.run(main())
    finally:
        asyncio.set_event_loop_policy(None)


async def serve(path, ssl_context=None) -> tuple[web.AppRunner, int]:
    async def get(request):
        return web.FileResponse(path, chunk_size=256 * 1024)

    app = web.Application()
    app.router.add_get("/blob", get)
    runner = web.AppRunner(app)
    await runner.setup()
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, listening, ssl_context=ssl_context)
    await site.start()
    return runner, listening.getsockname()[1]


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_whole_blobs_and_ranges_go_out_by_sendfile(blob, no_fallback):
    path, data = blob

    async def main():
        assert type(asyncio.get_running_loop()).sendfile is not asyncio.AbstractEventLoop.sendfile
        runner, port = await serve(path)
        try:
            async with aiohttp.ClientSession() as http:
                pulls = [http.get(f"http://127.0.0.1:{port}/blob") for _ in range(4)]
                for response in await asyncio.gather(*pulls):
                    assert response.status == 200
                    assert hashlib.sha256(await response.read()).digest() == hashlib.sha256(data).digest()
                async with http.get(f"http://127.0.0.1:{port}/blob", headers={"Range": "bytes=1000-1099999"}) as r:
                    assert r.status == 206
                    assert await r.read() == data[1000:1100000]
                async with http.get(f"http://127.0.0.1:{port}/blob", headers={"Range": f"bytes={SIZE - 10}-"}) as r:
                    assert r.status == 206
                    assert await r.read() == data[-10:]
        finally:
            await runner.cleanup()

    run_on_services_loop(main)


def test_a_slow_reader_gets_every_byte_as_its_socket_drains(blob, no_fallback, monkeypatch):
    """A client that reads slowly fills the socket: sendfile(2) says EAGAIN and the loop waits until the
    socket can take more, without holding a worker thread or busy-looping."""
    path, data = blob
    waits = []
    writable = eventloop._writable

    async def counted(loop, fd):
        waits.append(fd)
        await writable(loop, fd)

    monkeypatch.setattr(eventloop, "_writable", counted)

    def slow_client(port: int) -> bytes:
        with socket.socket() as conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            conn.connect(("127.0.0.1", port))
            conn.sendall(b"GET /blob HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            received = bytearray()
            while True:
                block = conn.recv(256 * 1024)
                if not block:
                    return bytes(received)
                received += block
                if len(received) < SIZE // 4:
                    threading.Event().wait(0.002)  # a slow reader at first, so the server's socket fills

    async def main():
        runner, port = await serve(path)
        try:
            return await asyncio.to_thread(slow_client, port)
        finally:
            await runner.cleanup()

    response = run_on_services_loop(main)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == data
    assert waits, "the socket never filled: the slow-reader path was not exercised"


def test_a_client_that_hangs_up_mid_blob_leaves_no_descriptor_and_the_server_serving(blob, no_fallback):
    path, data = blob

    def hang_up_early(port: int) -> None:
        with socket.socket() as conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            conn.connect(("127.0.0.1", port))
            conn.sendall(b"GET /blob HTTP/1.1\r\nHost: x\r\n\r\n")
            conn.recv(64 * 1024)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset

    async def main():
        runner, port = await serve(path)
        try:
            async with aiohttp.ClientSession() as http:  # its pooled connection is counted in the baseline
                async with http.get(f"http://127.0.0.1:{port}/blob") as r:
                    assert await r.read() == data
                before = open_descriptors()
                for _ in range(5):
                    await asyncio.to_thread(hang_up_early, port)
                deadline = asyncio.get_running_loop().time() + 10
                while open_descriptors() > before and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.02)
                assert open_descriptors() <= before, "a descriptor outlived the connection it sent on"
                async with http.get(f"http://127.0.0.1:{port}/blob") as r:
                    assert r.status == 200 and await r.read() == data
        finally:
            await runner.cleanup()

    run_on_services_loop(main)


def test_tls_connections_fall_back_to_encrypting_blocks(blob, tmp_path):
    from shared.tls import client_context, server_context
    from tests.integration.test_geo_failures import make_test_ca

    path, data = blob
    config_dir = tmp_path / "config"
    make_test_ca(config_dir)

    async def main():
        runner, port = await serve(path, ssl_context=server_context(config_dir))
        try:
            connector = aiohttp.TCPConnector(ssl=client_context(config_dir))
            async with aiohttp.ClientSession(connector=connector) as http:
                async with http.get(f"https://127.0.0.1:{port}/blob") as r:
                    assert r.status == 200
                    assert await r.read() == data
        finally:
            await runner.cleanup()

    run_on_services_loop(main)
    assert isinstance(server_context(config_dir), ssl.SSLContext)


def test_the_standard_loop_is_kept_when_asked(monkeypatch):
    monkeypatch.setenv("MERIDIAN_EVENT_LOOP", "asyncio")
    assert eventloop.install() == "asyncio"

    async def loop_type():
        return type(asyncio.get_running_loop())

    assert asyncio.run(loop_type()).__module__.startswith("asyncio")


def test_sendfile_calls_run_on_their_own_threads_not_the_default_executor(blob, no_fallback, monkeypatch):
    """Pulls waiting on a slow disk must not queue name lookups and file opens behind them."""
    path, data = blob
    threads: set[str] = set()
    real_sendfile = os.sendfile

    def recorded(*args):
        threads.add(threading.current_thread().name)
        return real_sendfile(*args)

    monkeypatch.setattr(os, "sendfile", recorded)

    async def main():
        runner, port = await serve(path)
        try:
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/blob") as response:
                assert await response.read() == data
        finally:
            await runner.cleanup()

    run_on_services_loop(main)
    assert threads and all(name.startswith("meridian-sendfile") for name in threads), threads


def test_sendfile_checks_its_arguments_as_the_standard_loop_does(blob):
    path, data = blob

    async def main():
        loop = asyncio.get_running_loop()
        received = bytearray()
        done = asyncio.Event()

        async def reader(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            received.extend(await r.read(-1))
            done.set()
            w.close()

        server = await asyncio.start_server(reader, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        try:
            with open(path, "rb") as file:
                for offset, count in ((-1, None), (0, 0), (0, -5)):
                    with pytest.raises(ValueError):
                        await loop.sendfile(transport, file, offset, count)
                with open(path) as text, pytest.raises(ValueError):
                    await loop.sendfile(transport, text)  # type: ignore[arg-type]  # wrong on purpose
                assert await loop.sendfile(transport, file, 1000, 5000) == 5000
            transport.close()
            await asyncio.wait_for(done.wait(), 10)
            assert bytes(received) == data[1000:6000]
            with open(path, "rb") as file, pytest.raises(asyncio.SendfileNotAvailableError):
                await loop.sendfile(transport, file, fallback=False)  # closed: nothing to send on
        finally:
            server.close()
            await server.wait_closed()

    run_on_services_loop(main)


def test_a_file_cut_while_it_is_sent_drops_the_connection(blob, no_fallback, monkeypatch):
    """The Content-Length went out before the file shrank: a client on a kept-alive connection must
    learn at once that the body is cut, not wait for bytes that never come."""
    path, data = blob
    real_sendfile = eventloop._sendfile
    cuts = [1000]

    async def cut_first(loop, transport, file, offset, count):
        if cuts:
            with open(path, "r+b") as damaged:
                damaged.truncate(cuts.pop())  # after FileResponse read the size, before any byte went out
        return await real_sendfile(loop, transport, file, offset, count)

    monkeypatch.setattr(eventloop, "_sendfile", cut_first)

    async def main():
        runner, port = await serve(path)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                async with http.get(f"http://127.0.0.1:{port}/blob") as r:
                    assert r.status == 200 and r.content_length == SIZE
                    with pytest.raises(aiohttp.ClientPayloadError):
                        await r.read()
            path.write_bytes(data)  # whole again: the server still serves
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/blob") as r:
                assert await r.read() == data
        finally:
            await runner.cleanup()

    run_on_services_loop(main)
