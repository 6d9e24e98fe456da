"""Gateway memory while one 2 GiB blob is pushed and pulled (issue 17: RSS ≤ 150 MiB while pushing).

The blob is generated while it is sent (a 4 MiB random block, each copy made unique by a counter), so
the client never holds it either: pushed once monolithically (POST, then PUT with a streamed chunked
body) and once in 64 MiB PATCHes, then pulled back. The figure is the largest resident set of any one
registry process (a gateway worker), sampled every 100 ms, against Distribution on the same run.

    ./meridian bench --memory
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from bench.headline import RssWatch
from bench.run import _drop_bench_database, start_distribution, start_meridian, wait_ready

MiB = 1024 * 1024
SIZE = 2048 * MiB
BLOCK = 4 * MiB


def _blocks(total: int, seed: bytes) -> AsyncIterator[bytes]:
    async def generate() -> AsyncIterator[bytes]:
        sent = 0
        counter = 0
        while sent < total:
            block = (counter.to_bytes(8, "big") + seed)[: min(BLOCK, total - sent)]
            counter += 1
            sent += len(block)
            yield block
    return generate()


def _digest(total: int, seed: bytes) -> str:
    running = hashlib.sha256()
    sent, counter = 0, 0
    while sent < total:
        block = (counter.to_bytes(8, "big") + seed)[: min(BLOCK, total - sent)]
        running.update(block)
        counter += 1
        sent += len(block)
    return "sha256:" + running.hexdigest()


def _absolute(url: str, location: str) -> str:
    return location if location.startswith("http") else url + location


async def _push_streamed(http: aiohttp.ClientSession, url: str, repo: str, seed: bytes, digest: str) -> None:
    async with http.post(f"{url}/v2/{repo}/blobs/uploads/") as r:
        assert r.status == 202, await r.text()
        location = _absolute(url, r.headers["Location"])
    sep = "&" if "?" in location else "?"
    async with http.put(f"{location}{sep}digest={digest}", data=_blocks(SIZE, seed),
                        headers={"Content-Type": "application/octet-stream"}) as r:
        assert r.status == 201, await r.text()


async def _push_patches(http: aiohttp.ClientSession, url: str, repo: str, seed: bytes, digest: str,
                        patch: int = 64 * MiB) -> None:
    async with http.post(f"{url}/v2/{repo}/blobs/uploads/") as r:
        assert r.status == 202, await r.text()
        location = _absolute(url, r.headers["Location"])
    offset = 0
    stream = _blocks(SIZE, seed)
    pending = b""
    async for block in stream:
        pending += block
        if len(pending) >= patch:
            piece, pending = pending[:patch], pending[patch:]
            async with http.patch(location, data=piece, headers={
                    "Content-Range": f"{offset}-{offset + len(piece) - 1}", "Content-Type": "application/octet-stream"}) as r:
                assert r.status == 202, await r.text()
                location = _absolute(url, r.headers["Location"])
            offset += len(piece)
    sep = "&" if "?" in location else "?"
    async with http.put(f"{location}{sep}digest={digest}", data=pending or None,
                        headers={"Content-Type": "application/octet-stream"}) as r:
        assert r.status == 201, await r.text()


async def _pull(http: aiohttp.ClientSession, url: str, repo: str, digest: str) -> int:
    total = 0
    async with http.get(f"{url}/v2/{repo}/blobs/{digest}") as r:
        assert r.status == 200, r.status
        async for block in r.content.iter_chunked(1 << 20):
            total += len(block)
    return total


async def run() -> dict[str, dict[str, float]]:
    workdir = Path(tempfile.mkdtemp(prefix="meridian-bench-memory-"))
    targets = [start_distribution(workdir), start_meridian(workdir)]
    figures: dict[str, dict[str, float]] = {}
    try:
        for target in targets:
            await wait_ready(target.url)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for target in targets:
                seen = figures.setdefault(target.name, {})
                seeds = [os.urandom(BLOCK - 8) for _ in range(2)]
                digests = [_digest(SIZE, seed) for seed in seeds]
                for label, push, seed, digest in (("push streamed", _push_streamed, seeds[0], digests[0]),
                                                  ("push 64 MiB patches", _push_patches, seeds[1], digests[1])):
                    with RssWatch(target.process.pid) as watch:
                        start = time.perf_counter()
                        await push(http, target.url, "bench/memory", seed, digest)
                        seen[f"{label} MiB/s"] = SIZE / MiB / (time.perf_counter() - start)
                    seen[f"{label} peak RSS MiB"] = watch.peak / MiB
                with RssWatch(target.process.pid) as watch:
                    assert await _pull(http, target.url, "bench/memory", digests[0]) == SIZE
                seen["pull peak RSS MiB"] = watch.peak / MiB
    finally:
        for target in targets:
            target.stop()
        await _drop_bench_database()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def report(figures: dict[str, dict[str, float]]) -> None:
    print("\n| 2 GiB blob | Distribution | Meridian |")
    print("|---|---|---|")
    for key in figures["meridian"]:
        print(f"| {key} | {figures['distribution'][key]:.0f} | {figures['meridian'][key]:.0f} |")
