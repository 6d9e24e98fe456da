"""`meridian up`: the embedded default answers on its port, takes a push, and stops on Ctrl-C."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys

import aiohttp
import pytest
import yaml

from shared.embedded import free_port, port_open
from tests.helpers import eventually, sha256

pytestmark = pytest.mark.e2e


async def start_up(tmp_path, http, port: int, *args: str, wait_for: str | None = None) -> subprocess.Popen:
    """`meridian up` as a real process; returns once `wait_for` (default its first port) answers."""
    with open(tmp_path / "up.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--data", str(tmp_path / "data"), "--port", str(port), *args],
            stdout=log, stderr=subprocess.STDOUT,
        )
    url = wait_for or f"http://127.0.0.1:{port}"

    async def answering():
        if process.poll() is not None:
            raise AssertionError((tmp_path / "up.log").read_text())
        try:
            async with http.get(f"{url}/v2/") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await eventually(answering, timeout=60, what="meridian up to answer")
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen) -> None:
    """After a failed test: Ctrl-C first, so `up` stops its embedded PostgreSQL and NATS (a SIGKILL
    would leave them running), then SIGKILL if it has not stopped within 30 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def listening_sockets(port: int) -> int:
    """Sockets in LISTEN on 127.0.0.1:port (/proc/net/tcp: local address as hex, state 0A)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        return sum(1 for line in table.readlines()[1:] if line.split()[1] == local and line.split()[3] == "0A")


async def test_up_says_it_listens_only_once_it_answers(data_root):
    """A newcomer tries the printed address the moment it appears: it must answer then, not after."""
    tmp_path = data_root
    port = free_port()
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--data", str(tmp_path / "data"), "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        async def announced() -> bool:
            if process.poll() is not None:
                raise AssertionError(log_path.read_text())
            return f"listening on http://127.0.0.1:{port}" in log_path.read_text()

        await eventually(announced, timeout=60, interval=0.01, what="meridian up to say it listens")
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/v2/") as r:  # one try
            assert r.status == 200
    finally:
        stop(process)


@pytest.mark.parametrize("workers", [1, 2])
async def test_up_runs_the_registry_and_stops_cleanly(data_root, workers):
    tmp_path = data_root  # the pgserver user must reach the data folder (tests/e2e/conftest.py)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = None
    try:
        async with aiohttp.ClientSession() as http:
            process = await start_up(tmp_path, http, port, "--workers", str(workers))
            # Answering means every worker listens: keep-alive clients that connect at once spread over all.
            assert listening_sockets(port) == workers
            data = b"hello from meridian up"
            async with http.post(f"{url}/v2/acme/app/blobs/uploads/", params={"digest": sha256(data)}, data=data) as r:
                assert r.status == 201
            for _ in range(20):  # with two workers, requests land on both
                async with http.get(f"{url}/v2/acme/app/blobs/{sha256(data)}") as r:
                    assert await r.read() == data
            async with http.get(f"{url}/metrics") as r:
                metrics = await r.text()
            served = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                         if line.startswith("meridian_http_requests_total{") and 'route="blob"' in line and 'method="GET"' in line)
            assert served == 20  # every worker's requests, whichever worker answered the scrape
        output = (tmp_path / "up.log").read_text()
        assert f"listening on http://127.0.0.1:{port}" in output
        # The hint names the address listened on (localhost may resolve to ::1 only), as does the token realm.
        assert f"docker://127.0.0.1:{port}/acme/hello:latest" in output and "localhost" not in output
        generated = yaml.safe_load((tmp_path / "data" / "config.generated.yaml").read_text())
        assert generated["SERVER_HOSTNAME"] == f"127.0.0.1:{port}"
        nats_log = (tmp_path / "data" / "nats" / "nats.log").read_text().splitlines()
        nats_ports = [int(line.split(":")[-1]) for line in nats_log if "Listening for client connections on" in line]
        process.send_signal(signal.SIGINT)
        await asyncio.to_thread(process.wait, 30)
        assert process.returncode == 0, (tmp_path / "up.log").read_text()
        assert not port_open("127.0.0.1", port)
        assert nats_ports and not port_open("127.0.0.1", nats_ports[0])
        assert (tmp_path / "data" / "storage" / "sha256").is_dir()
        leftover = subprocess.run(["pgrep", "-f", f"--listen 127.0.0.1:{port}"], capture_output=True, text=True).stdout
        assert leftover.strip() == ""
    finally:
        if process is not None:
            stop(process)


async def test_up_with_two_regions_replicates_between_them(data_root, port_pair):
    tmp_path, port = data_root, port_pair
    us, eu = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
    process = None
    try:
        async with aiohttp.ClientSession() as http:
            process = await start_up(tmp_path, http, port, "--regions", "us,eu", wait_for=eu)
            data = b"pushed in us"
            async with http.post(f"{us}/v2/acme/app/blobs/uploads/", params={"digest": sha256(data)}, data=data) as r:
                assert r.status == 201

            async def served_by_eu():
                async with http.get(f"{eu}/v2/acme/app/blobs/{sha256(data)}") as r:
                    assert await r.read() == data
                    return r.headers["Meridian-Storage-Location"] == "eu"

            await eventually(served_by_eu, timeout=30, what="eu to serve the blob from its own location")
        process.send_signal(signal.SIGINT)
        await asyncio.to_thread(process.wait, 30)
        assert process.returncode == 0, (tmp_path / "up.log").read_text()
    finally:
        if process is not None:
            stop(process)


async def test_up_stopped_by_sigterm_while_its_workers_start_stops_everything(data_root):
    """SIGTERM (a service manager's stop) before the registry listens, here while `up` waits for its
    workers to start, stops `up` as Ctrl-C does: workers, the embedded PostgreSQL and NATS all end.
    Before, the default action killed `up` outright and left the embedded servers running."""
    tmp_path, port = data_root, free_port()
    with open(tmp_path / "up.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--data", str(tmp_path / "data"), "--port", str(port), "--workers", "3"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        def workers() -> str:
            return subprocess.run(["pgrep", "-P", str(process.pid), "-f", "services.cli gateway"],
                                  capture_output=True, text=True).stdout

        await eventually(lambda: asyncio.sleep(0, len(workers().split()) == 2), timeout=60, what="up to spawn its workers")
        assert listening_sockets(port) == 0  # still starting: the workers have not been told to listen
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)
        output = (tmp_path / "up.log").read_text()
        assert process.returncode == 0, output
        assert "Meridian stopped." in output

        def leftover() -> str:
            found = subprocess.run(["pgrep", "-af", str(tmp_path)], capture_output=True, text=True).stdout
            return "\n".join(line for line in found.splitlines() if "pgrep" not in line)

        await eventually(lambda: asyncio.sleep(0, leftover() == ""), timeout=20, what="embedded servers to stop")
        assert workers() == ""
    finally:
        stop(process)
        for line in subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line), signal.SIGKILL)  # this test's own embedded servers, if they outlived `up`
