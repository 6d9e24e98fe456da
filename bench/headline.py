"""The headline workload (issue 17's table), Meridian and Distribution side by side in one run.

Per round, alternating which registry goes first, medians of the rounds:
- push 8 blobs of 64 MiB one after another, monolithic (POST, then PUT with the body streamed in
  1 MiB pieces; again with the body handed to aiohttp whole, the client of earlier runs), and chunked
  (POST, 8 MiB PATCHes, PUT), the digests computed before the clock starts;
- pull them 16 at a time, the client reading without hashing, then verifying sha256 as it reads;
  then wrk (C) reading the first of them over 16 connections: the server's side without the Python
  client's cost per byte;
- manifest GET with wrk, 16 connections (wrk cannot time HEAD: it waits for the body);
- the registry processes' CPU seconds (user + system) during each push phase, and their peak RSS.
Distribution is one process; Meridian is `meridian up --workers N` (the parent and its gateway
workers). PostgreSQL and NATS are not counted (they are shared services).
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

MiB = 1 << 20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(pid: int) -> list[int]:
    """The process and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pid: int) -> float:
    total = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """The largest resident set among the registry's processes (one gateway worker, not their sum)."""
    largest = 0
    for member in _tree(pid):
        try:
            largest = max(largest, int(Path(f"/proc/{member}/statm").read_text().split()[1]) * PAGE)
        except OSError:
            continue
    return largest


@dataclass
class RssWatch:
    pid: int
    peak: int = 0
    _task: asyncio.Task | None = field(default=None, repr=False)

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes(self.pid))
            await asyncio.sleep(0.1)

    def __enter__(self) -> RssWatch:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc) -> None:
        assert self._task is not None
        self._task.cancel()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _push_monolithic(http, url: str, repo: str, data: bytes, digest: str, streamed: bool) -> None:
    """POST, then PUT with the body: `streamed` hands it to aiohttp 1 MiB at a time, as registry
    clients stream a layer from its file; else as one 64 MiB object, which aiohttp's transport copies
    into a fresh buffer (on this VM ~1.5 s of the client's system time per 512 MiB, enough to make the
    client the bottleneck: bench/README.md)."""
    async with http.post(f"{url}/v2/{repo}/blobs/uploads/") as r:
        location = r.headers["Location"]
    location = location if location.startswith("http") else url + location
    sep = "&" if "?" in location else "?"
    headers = {"Content-Type": "application/octet-stream"}
    body: object = data
    if streamed:
        headers["Content-Length"] = str(len(data))
        body = slices(data, MiB)
    async with http.put(f"{location}{sep}digest={digest}", data=body, headers=headers) as r:
        assert r.status == 201, await r.text()


async def slices(data: bytes, block: int):
    """The data in pieces of `block` bytes, none of them copied."""
    view = memoryview(data)
    for offset in range(0, len(data), block):
        yield view[offset:offset + block]


async def _push_chunked(http, url: str, repo: str, data: bytes, digest: str, chunk: int) -> None:
    async with http.post(f"{url}/v2/{repo}/blobs/uploads/") as r:
        location = r.headers["Location"]
    for offset in range(0, len(data), chunk):
        piece = data[offset:offset + chunk]
        location = location if location.startswith("http") else url + location
        async with http.patch(location, data=piece, headers={
                "Content-Range": f"{offset}-{offset + len(piece) - 1}", "Content-Type": "application/octet-stream"}) as r:
            assert r.status == 202, await r.text()
            location = r.headers["Location"]
    location = location if location.startswith("http") else url + location
    sep = "&" if "?" in location else "?"
    async with http.put(f"{location}{sep}digest={digest}") as r:
        assert r.status == 201, await r.text()


async def _pull(http, url: str, repo: str, digest: str, verify: bool) -> int:
    running = hashlib.sha256() if verify else None
    total = 0
    async with http.get(f"{url}/v2/{repo}/blobs/{digest}") as r:
        assert r.status == 200, r.status
        async for block in r.content.iter_chunked(1 << 20):
            total += len(block)
            if running is not None:
                running.update(block)
    if running is not None:
        assert "sha256:" + running.hexdigest() == digest
    return total


async def _timed_push(target, http, blobs: list[bytes], digests: list[str], repo: str, chunk: int | None,
                      streamed: bool = True) -> tuple[float, float]:
    """(MiB/s, server CPU seconds) for pushing the blobs one after another. The digests are known
    beforehand, as a client knows them from the build."""
    cpu = cpu_seconds(target.process.pid)
    started = time.perf_counter()
    for data, digest in zip(blobs, digests, strict=True):
        if chunk:
            await _push_chunked(http, target.url, repo, data, digest, chunk)
        else:
            await _push_monolithic(http, target.url, repo, data, digest, streamed)
    elapsed = time.perf_counter() - started
    return sum(map(len, blobs)) / MiB / elapsed, cpu_seconds(target.process.pid) - cpu


async def _timed_pull(target, http, digests: list[str], repo: str, verify: bool, concurrency: int = 16) -> float:
    semaphore = asyncio.Semaphore(concurrency)
    jobs = digests * max(1, concurrency // len(digests))

    async def one(digest: str) -> int:
        async with semaphore:
            return await _pull(http, target.url, repo, digest, verify)

    started = time.perf_counter()
    total = sum(await asyncio.gather(*(one(d) for d in jobs)))
    return total / MiB / (time.perf_counter() - started)


async def run(targets, workdir: Path, *, rounds: int, blobs: int = 8, size: int = 64 * MiB, chunk: int = 8 * MiB,
              wrk=None, wrk_seconds: int = 6, wrk_pull=None) -> dict[str, dict[str, list[float]]]:
    """{registry: {figure: [value of each round]}} for the headline table."""
    samples: dict[str, dict[str, list[float]]] = {t.name: {} for t in targets}

    def note(name: str, key: str, value: float) -> None:
        samples[name].setdefault(key, []).append(value)

    timeout = aiohttp.ClientTimeout(total=900)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64), timeout=timeout) as http:
        for round_number in range(rounds):
            data = [os.urandom(size) for _ in range(blobs)]
            digests = [sha(d) for d in data]
            for target in (targets if round_number % 2 == 0 else targets[::-1]):
                os.sync()  # each registry starts from clean page cache write-back
                with RssWatch(target.process.pid) as watch:
                    rate, cpu = await _timed_push(target, http, data, digests, f"headline/mono{round_number}", None)
                    note(target.name, "push monolithic MiB/s", rate)
                    note(target.name, "server CPU s, monolithic push", cpu)
                    os.sync()
                    rate, cpu = await _timed_push(target, http, data, digests, f"headline/whole{round_number}", None,
                                                  streamed=False)
                    note(target.name, "push monolithic MiB/s, 64 MiB handed over", rate)
                    os.sync()
                    rate, cpu = await _timed_push(target, http, data, digests, f"headline/chunked{round_number}", chunk)
                    note(target.name, "push chunked MiB/s", rate)
                    note(target.name, "server CPU s, chunked push", cpu)
                    note(target.name, "pull MiB/s, client reads without hashing",
                         await _timed_pull(target, http, digests, f"headline/mono{round_number}", False))
                    note(target.name, "pull MiB/s, client verifies sha256",
                         await _timed_pull(target, http, digests, f"headline/mono{round_number}", True))
                    if wrk_pull is not None:
                        blob = f"{target.url}/v2/headline/mono{round_number}/blobs/{digests[0]}"
                        note(target.name, "pull MiB/s, wrk as the client (C)", wrk_pull(blob, wrk_seconds, 16))
                note(target.name, "peak RSS MiB of one server process", watch.peak / MiB)
        if wrk is not None:
            for round_number in range(rounds):
                for target in (targets if round_number % 2 == 0 else targets[::-1]):
                    url = f"{target.url}/v2/bench/manifests/manifests/latest"
                    wrk(url, 1, 16, workdir)
                    rate, p50, p99 = wrk(url, wrk_seconds, 16, workdir)
                    note(target.name, "manifest GET req/s", rate)
                    note(target.name, "manifest GET p99 ms", p99)
                    # (wrk cannot measure HEAD: it waits for a body after a HEAD's Content-Length.)
    return samples


LOWER_IS_BETTER = ("CPU", "RSS", "p99")


def report(samples: dict[str, dict[str, list[float]]], rounds: int) -> None:
    """Medians and their ratio, then each round's figures (a slowdown from round to round shows there)."""
    print(f"headline workload, medians of {rounds} alternating rounds; ratio = Meridian / Distribution")
    print(f"{'figure':46} {'Distribution':>13} {'Meridian':>10} {'ratio':>7}   rounds: Distribution | Meridian")
    for key, dist_rounds in samples["distribution"].items():
        mer_rounds = samples["meridian"].get(key, [])
        dist = statistics.median(dist_rounds)
        mer = statistics.median(mer_rounds) if mer_rounds else float("nan")
        ratio = mer / dist if dist else float("nan")
        each = f"{' '.join(f'{v:.1f}' for v in dist_rounds)} | {' '.join(f'{v:.1f}' for v in mer_rounds)}"
        print(f"{key:46} {dist:13.1f} {mer:10.1f} {ratio:6.2f}x   {each}" + ("  (lower is better)" if any(
            w in key for w in LOWER_IS_BETTER) else ""))
