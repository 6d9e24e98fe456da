"""Gateway workers listen together: the first process lets them listen once each has started, and a
worker that dies while starting does not hold the others (services/cli.py)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from services.cli import WORKER_HANDSHAKE_ENV, Worker, _start_workers_listening

# A stand-in worker: says it started (or not), waits for the word to listen, and prints what it heard.
SCRIPT = """
import os, sys
started, go = (int(fd) for fd in os.environ[sys.argv[2]].split(","))
if sys.argv[1] == "hangs":
    import time
    time.sleep(60)
if sys.argv[1] == "starts":
    os.write(started, b"1")
    os.close(started)
    print("go" if os.read(go, 1) == b"1" else "eof", flush=True)
"""


def spawn(behaviour: str) -> Worker:
    started_read, started_write = os.pipe()
    go_read, go_write = os.pipe()
    env = {**os.environ, WORKER_HANDSHAKE_ENV: f"{started_write},{go_read}"}
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, behaviour, WORKER_HANDSHAKE_ENV], env=env,
                               pass_fds=(started_write, go_read), stdout=subprocess.PIPE, text=True)
    os.close(started_write)
    os.close(go_read)
    return Worker(process, started_read, go_write)


async def test_every_started_worker_is_told_to_listen_and_a_dead_one_does_not_block():
    workers = [spawn("starts"), spawn("dies"), spawn("starts")]
    began = time.monotonic()
    await _start_workers_listening(workers, timeout=30)
    assert time.monotonic() - began < 10  # the dead worker's closed pipe ended the wait, not the timeout
    outputs = [await asyncio.to_thread(w.process.communicate, timeout=10) for w in workers]
    assert [out.strip() for out, _ in outputs] == ["go", "", "go"]


async def test_a_worker_that_never_starts_is_waited_for_only_until_the_timeout():
    ready, hanging = spawn("starts"), spawn("hangs")
    began = time.monotonic()
    await _start_workers_listening([ready, hanging], timeout=1.5)
    assert 1.4 < time.monotonic() - began < 10
    out, _ = await asyncio.to_thread(ready.process.communicate, timeout=10)
    assert out.strip() == "go"
    hanging.process.kill()  # its end of the pipe closes with it, which ends the reader still waiting
    hanging.process.wait()
