"""S3 storage side by side: Meridian's S3 driver and Distribution's s3 driver on the same SeaweedFS
(`weed mini`), each with its own bucket (issue 17.7).

Both answer blob GETs with a redirect to a presigned URL of the store (their defaults for S3), so the
pull figures measure the store serving the bytes plus each registry's redirect; pushes stream through
the registry into the store. Workload: 32 MiB blobs pushed one after another (monolithic, then in
8 MiB PATCHes), pulled 8 at a time following the redirect; 2 alternating rounds, best of them.

    ./meridian bench --s3
"""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import aiohttp
from aiobotocore.session import get_session

from bench.run import (
    MiB,
    Target,
    _drop_bench_database,
    digest,
    gather_limited,
    pull,
    push_chunked,
    push_monolithic,
    start_distribution,
    start_meridian,
    wait_ready,
)
from shared.embedded import start_seaweedfs

KEY, SECRET = "meridian-bench", "meridian-bench-secret"
BLOBS, SIZE, CHUNK = 6, 32 * MiB, 8 * MiB


async def _make_buckets(url: str, names: list[str]) -> None:
    async with get_session().create_client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
                                           aws_secret_access_key=SECRET) as client:
        for name in names:
            await client.create_bucket(Bucket=name)


def _targets(workdir: Path, url: str) -> list[Target]:
    host, port = url.removeprefix("http://").split(":")
    distribution = {"s3": {"accesskey": KEY, "secretkey": SECRET, "region": "us-east-1", "regionendpoint": url,
                           "bucket": "distribution", "secure": False, "v4auth": True, "rootdirectory": "/registry"}}
    meridian = ["S3Storage", {"host": host, "port": int(port), "is_secure": False, "s3_bucket": "meridian",
                              "s3_access_key": KEY, "s3_secret_key": SECRET, "storage_path": "/registry"}]
    return [start_distribution(workdir, storage=distribution), start_meridian(workdir, storage=meridian)]


async def run(rounds: int = 2) -> dict[str, dict[str, float]]:
    workdir = Path(tempfile.mkdtemp(prefix="meridian-bench-s3-"))
    weed = start_seaweedfs(workdir / "seaweedfs")
    targets: list[Target] = []
    best: dict[str, dict[str, float]] = {}
    try:
        await _make_buckets(weed.url, ["distribution", "meridian"])
        targets = _targets(workdir, weed.url)
        for target in targets:
            await wait_ready(target.url)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for round_number in range(rounds):
                for target in targets if round_number % 2 == 0 else targets[::-1]:
                    seen = best.setdefault(target.name, {})
                    blobs = [os.urandom(SIZE) for _ in range(BLOBS)]
                    repo = f"bench/s3-{round_number}"
                    start = time.perf_counter()
                    for blob in blobs:
                        await push_monolithic(http, target.url, repo, blob)
                    _keep(seen, "push monolithic 32 MiB, MiB/s", BLOBS * SIZE / MiB / (time.perf_counter() - start))
                    chunked = [os.urandom(SIZE) for _ in range(BLOBS)]
                    start = time.perf_counter()
                    for blob in chunked:
                        await push_chunked(http, target.url, repo, blob, CHUNK)
                    _keep(seen, "push chunked 32 MiB (8 MiB PATCHes), MiB/s", BLOBS * SIZE / MiB / (time.perf_counter() - start))
                    start = time.perf_counter()
                    sizes = await gather_limited(8, [lambda b=b, t=target, r=repo: pull(http, t.url, r, digest(b))
                                                      for b in blobs + chunked])
                    assert sizes == [SIZE] * (2 * BLOBS)
                    _keep(seen, "pull 32 MiB through the redirect, 8 at a time, MiB/s",
                          2 * BLOBS * SIZE / MiB / (time.perf_counter() - start))
    finally:
        for target in targets:
            target.stop()
        weed.stop()
        await _drop_bench_database()
        shutil.rmtree(workdir, ignore_errors=True)
    return best


def _keep(seen: dict[str, float], key: str, value: float) -> None:
    seen[key] = max(seen.get(key, 0.0), value)


def report(figures: dict[str, dict[str, float]]) -> None:
    print("\nS3 storage (SeaweedFS), best of the rounds; ratio = Meridian / Distribution")
    print("| figure | Distribution (s3) | Meridian (S3Storage) | ratio |")
    print("|---|---|---|---|")
    for key, value in figures["meridian"].items():
        other = figures["distribution"][key]
        print(f"| {key} | {other:.1f} | {value:.1f} | {value / other:.2f}× |")


if __name__ == "__main__":
    report(asyncio.run(run()))
