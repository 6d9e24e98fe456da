"""The manifest GET tail right after large pushes, Meridian alone (2 gateway processes, wrk on the same
2 cores): one round of the headline's pushes (8 × 64 MiB monolithic, handed over, chunked), then wrk
rounds against one tag, and from the gateway's own access lines the slowest tenths of a second.

    .venv/bin/python -m bench.manifest_tail [wrk rounds, default 6]

bench/README.md ("Bursts of slow manifest GETs, found") has what it showed.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp

from bench import headline
from bench import run as bench_run


class MachineSampler:
    """Every tenth of a second, by the wall clock the access lines use (UTC): the CPU time the
    hypervisor took from this machine (steal, in ticks of 10 ms summed over the cores) and the tasks
    runnable. A burst that comes with steal is the machine's, not Meridian's."""

    def __init__(self) -> None:
        self.samples: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _read() -> tuple[int, int]:
        steal = running = 0
        for line in Path("/proc/stat").read_text().splitlines():
            fields = line.split()
            if fields[0] == "cpu":
                steal = int(fields[8])
            elif fields[0] == "procs_running":
                running = int(fields[1])
        return steal, running

    def _run(self) -> None:
        last_steal, _ = self._read()
        while not self._stop.wait(0.1):
            steal, running = self._read()
            now = time.time()
            tenth = time.strftime("%H:%M:%S", time.gmtime(now)) + f".{int(now * 10) % 10}"
            self.samples[tenth] = (steal - last_steal, running)
            last_steal = steal

    def __enter__(self) -> MachineSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def around(self, tenth: str) -> tuple[int, int]:
        """(steal ticks, most tasks runnable) in the second around that tenth."""
        if tenth not in self.samples:
            return 0, 0
        keys = list(self.samples)
        at = keys.index(tenth)
        near = [self.samples[k] for k in keys[max(0, at - 5): at + 6]]
        return sum(s for s, _ in near), max(r for _, r in near)

    def total_steal(self) -> int:
        return sum(s for s, _ in self.samples.values())


def slowest_tenths(log: Path, threshold_ms: float = 10.0, shown: int = 10) -> list[tuple[str, int, int, float]]:
    """(tenth of a second, GETs, GETs over threshold_ms, longest ms) by the gateway's clock, worst first."""
    total: Counter[str] = Counter()
    slow: Counter[str] = Counter()
    longest: dict[str, float] = {}
    for line in log.open(errors="replace"):
        if '"event":"request"' not in line or "/manifests/latest" not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:  # a line cut by another process's write (none since shared/logging.py keeps them whole)
            continue
        if entry["method"] != "GET":
            continue
        tenth = entry["timestamp"][11:21]
        total[tenth] += 1
        if entry["duration_ms"] > threshold_ms:
            slow[tenth] += 1
        longest[tenth] = max(longest.get(tenth, 0.0), entry["duration_ms"])
    worst = sorted(slow, key=lambda tenth: -slow[tenth])[:shown]
    return [(tenth, total[tenth], slow[tenth], longest[tenth]) for tenth in sorted(worst)]


async def main(wrk_rounds: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="meridian-tail-"))
    target = bench_run.start_meridian(workdir)
    try:
        await bench_run.wait_ready(target.url)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as http:
            await bench_run.put_manifest(http, target.url, "bench/manifests", "latest")
            data = [os.urandom(64 * bench_run.MiB) for _ in range(8)]
            digests = [headline.sha(d) for d in data]
            for kind, chunk, streamed in (("mono", None, True), ("whole", None, False), ("chunked", 8 * bench_run.MiB, True)):
                rate, _ = await headline._timed_push(target, http, data, digests, f"tail/{kind}", chunk, streamed=streamed)
                print(f"push {kind}: {rate:.0f} MiB/s", flush=True)
        url = f"{target.url}/v2/bench/manifests/manifests/latest"
        bench_run.wrk(url, 1, 16, workdir)
        with MachineSampler() as machine:
            for number in range(wrk_rounds):
                rate, p50, p99 = bench_run.wrk(url, 6, 16, workdir)
                print(f"wrk round {number}: {rate:.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)
        target.stop()
        print(f"steal while wrk ran: {machine.total_steal()} ticks of 10 ms over {len(machine.samples) / 10:.0f} s")
        print("tenths of a second with the most GETs over 10 ms (gateway's clock): tenth, GETs, slow, longest ms,"
              " steal ticks and most tasks runnable in the second around it")
        for row in slowest_tenths(workdir / "meridian.log"):
            print("  ", *row, *machine.around(row[0]))
    finally:
        target.stop()
        await bench_run._drop_bench_database()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 6))
