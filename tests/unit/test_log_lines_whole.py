"""Gateway processes of one `meridian up` share one stderr. Each log line must reach it whole: a JSON
line cut by another process's write cannot be parsed by whatever reads the log (journald, a container
runtime's pipe, a shipper). On a pipe only writes of at most PIPE_BUF bytes are never interleaved."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each writer: structlog warnings and batches of access lines (many per event-loop turn, as a busy
# gateway writes them), as fast as it can.
WRITER = textwrap.dedent("""
    import asyncio, sys
    TURNS = int(sys.argv[2])
    from shared.logging import access, configure_logging, get_logger
    configure_logging(service="gateway", region="test", json=True)
    log = get_logger("writer")

    async def main():
        for turn in range(TURNS):
            for n in range(40):
                access(method="GET", path="/v2/acme/app/manifests/latest", status=200, bytes=418,
                       duration_ms=0.1, request_id=f"{sys.argv[1]}-{turn}-{n}")
            log.warning("a warning between the batches", writer=sys.argv[1], turn=turn, padding="x" * 300)
            await asyncio.sleep(0)

    asyncio.run(main())
""")


TURNS = 1500


def test_two_processes_sharing_a_pipe_write_only_whole_lines():
    read_end, write_end = os.pipe()
    # PYTHONUNBUFFERED=1, as many container images set it: each write of the text layer is a system call.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, name, str(TURNS)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=write_end, env=env) for name in ("a", "b")]
    os.close(write_end)
    received = bytearray()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read_end], [], [], 1)
            if ready:
                piece = os.read(read_end, 65536)
                if not piece:
                    break
                received += piece
                time.sleep(0.002)  # a slow reader: the pipe fills and the writers' writes are cut
    finally:
        os.close(read_end)
        for writer in writers:
            writer.wait(10)
    assert all(writer.returncode == 0 for writer in writers), received[-2000:].decode(errors="replace")
    lines = received.decode().splitlines()
    broken = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            broken.append(line)
    assert not broken, f"{len(broken)} of {len(lines)} lines cut, e.g. {broken[0][:300]!r}"
    assert len(lines) == 2 * TURNS * 41
