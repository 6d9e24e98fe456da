"""Meridian and CNCF Distribution side by side, in one run, on this machine.

Both registries get the same client (aiohttp, same concurrency) and the same data. Distribution is the
Debian package `docker-registry` (2.8) on the filesystem driver with its in-memory blob-descriptor
cache; Meridian is `meridian up` on local storage with PostgreSQL and NATS. Prints each figure for
both and the ratio (Meridian / Distribution; higher is better for throughput, lower for latency).

    ./meridian bench [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.headline import RssWatch, slices
from shared.embedded import free_port, port_open

MiB = 1024 * 1024
# Distribution uses every core; Meridian runs one gateway process per core, as deployed.
MERIDIAN_WORKERS = os.cpu_count() or 2


@dataclass
class Target:
    name: str
    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{url}/v2/") as r:
                    if r.status in (200, 401):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def start_distribution(workdir: Path, storage: dict | None = None, cores: int | None = None) -> Target:
    """`storage`: Distribution's storage driver section (default: the filesystem under workdir); `cores`:
    GOMAXPROCS (default: every core)."""
    port = free_port()
    config = {
        "version": 0.1,
        # Its defaults, as deployed: info level with the access log on (Meridian writes one line per
        # request too; until 2026-11-30 the bench ran Distribution without it).
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {**(storage or {"filesystem": {"rootdirectory": str(workdir / "distribution")}}),
                    "delete": {"enabled": True}, "cache": {"blobdescriptor": "inmemory"}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    path = workdir / "distribution.yml"
    path.write_text(yaml.safe_dump(config))
    # The AWS SDK in Distribution 2.8 panics on AWS_CA_BUNDLE with a plain-HTTP endpoint (its custom
    # transport cannot take one); the bench's stores are local and plain HTTP.
    env = {key: value for key, value in os.environ.items() if key != "AWS_CA_BUNDLE"}
    if cores is not None:
        env["GOMAXPROCS"] = str(cores)
    with open(workdir / "distribution.log", "wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(path)], stdout=log, stderr=subprocess.STDOUT,
                                   env=env)
    return Target("distribution", f"http://127.0.0.1:{port}", process)


def start_meridian(workdir: Path, storage: list | None = None, workers: int = MERIDIAN_WORKERS) -> Target:
    """`storage`: one DISTRIBUTED_STORAGE_CONFIG location (default: local storage under workdir)."""
    port = free_port()
    doc = {"MERIDIAN_INSECURE_OPEN_ACCESS": True, "MERIDIAN_BUS_PREFIX": f"bench{os.getpid()}"}
    if port_open("127.0.0.1", 5432):
        doc["DB_URI"] = f"postgresql://postgres@127.0.0.1:5432/meridian_bench_{os.getpid()}"
    if port_open("127.0.0.1", 4222):
        doc["NATS_URL"] = "nats://127.0.0.1:4222"
    doc["DISTRIBUTED_STORAGE_CONFIG"] = {"local": storage or ["LocalStorage", {"storage_path": str(workdir / "meridian-storage")}]}
    path = workdir / "meridian.yaml"
    path.write_text(yaml.safe_dump(doc))
    with open(workdir / "meridian.log", "wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--config", str(path), "--data", str(workdir / "meridian"),
             "--port", str(port), "--workers", str(workers)],
            stdout=log, stderr=subprocess.STDOUT,
        )
    return Target("meridian", f"http://127.0.0.1:{port}", process)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def gather_limited(concurrency: int, jobs):
    semaphore = asyncio.Semaphore(concurrency)

    async def one(job):
        async with semaphore:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


async def push_monolithic(http, url, repo, data, streamed: bool = False, blob_digest: str | None = None):
    """`streamed`: the body goes to aiohttp 1 MiB at a time, as registry clients stream a layer (the
    older table hands it over whole, as it always has, so its figures compare across sessions).
    `blob_digest`: known beforehand, as a client knows it from the build (else hashed here)."""
    async with http.post(f"{url}/v2/{repo}/blobs/uploads/") as r:
        assert r.status == 202, await r.text()
        location = r.headers["Location"]
    location = location if location.startswith("http") else url + location
    sep = "&" if "?" in location else "?"
    headers = {"Content-Type": "application/octet-stream"}
    body: object = data
    if streamed:
        headers["Content-Length"] = str(len(data))
        body = slices(data, MiB)
    async with http.put(f"{location}{sep}digest={blob_digest or digest(data)}", data=body, headers=headers) as r:
        assert r.status == 201, await r.text()


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of the intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


async def push_chunked(http, url, repo, data, chunk):
    async with http.post(f"{url}/v2/{repo}/blobs/uploads/") as r:
        location = r.headers["Location"]
    offset = 0
    while offset < len(data):
        piece = data[offset : offset + chunk]
        location = location if location.startswith("http") else url + location
        async with http.patch(location, data=piece, headers={
            "Content-Range": f"{offset}-{offset + len(piece) - 1}", "Content-Type": "application/octet-stream"}) as r:
            assert r.status == 202, await r.text()
            location = r.headers["Location"]
        offset += len(piece)
    location = location if location.startswith("http") else url + location
    sep = "&" if "?" in location else "?"
    async with http.put(f"{location}{sep}digest={digest(data)}") as r:
        assert r.status == 201, await r.text()


async def pull(http, url, repo, blob_digest):
    total = 0
    async with http.get(f"{url}/v2/{repo}/blobs/{blob_digest}") as r:
        assert r.status == 200
        async for block in r.content.iter_chunked(1 << 20):
            total += len(block)
    return total


async def put_manifest(http, url, repo, tag):
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = os.urandom(1024)
    for blob in (config, layer):
        await push_monolithic(http, url, repo, blob)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(layer), "size": len(layer)}],
    }).encode()
    async with http.put(f"{url}/v2/{repo}/manifests/{tag}", data=manifest,
                        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}) as r:
        assert r.status == 201, await r.text()


async def timed(jobs, concurrency):
    latencies = []

    def wrap(job):
        async def run():
            start = time.perf_counter()
            result = await job()
            latencies.append(time.perf_counter() - start)
            return result
        return run

    start = time.perf_counter()
    results = await gather_limited(concurrency, [wrap(j) for j in jobs])
    return time.perf_counter() - start, latencies, results


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


WRK_LUA = 'wrk.headers["Accept"] = "application/vnd.oci.image.manifest.v1+json"\n'


def wrk(url: str, seconds: int, connections: int, workdir: Path) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) from wrk, a C load generator, so the client is not the limit."""
    script = workdir / "accept.lua"
    script.write_text(WRK_LUA)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    rate = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))

    def percentile(label: str) -> float:
        value = next(line.split()[1] for line in out.splitlines() if line.strip().startswith(label))
        number, unit = float(value.rstrip("usm")), value.lstrip("0123456789.")
        return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number

    return rate, percentile("50%"), percentile("99%")


def wrk_transfer(url: str, seconds: int, connections: int) -> float:
    """MiB/s that wrk read from `url` (a blob): a client in C that discards the bytes, so what the
    Python client spends on every byte does not decide the figure."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url],
                         capture_output=True, text=True, check=True).stdout
    value = next(line.split()[1] for line in out.splitlines() if line.startswith("Transfer/sec"))
    number, unit = float(value.rstrip("KMGTB")), value.lstrip("0123456789.")
    return number * {"B": 1 / MiB, "KB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1024 ** 2}[unit]


async def push_phase(http, url, label, blobs, concurrency, chunk=None):
    jobs: list[Callable[[], Awaitable[object]]]
    if chunk:
        jobs = [functools.partial(push_chunked, http, url, f"bench/chunked-{label}", b, chunk) for b in blobs]
    else:
        jobs = [functools.partial(push_monolithic, http, url, f"bench/mono-{label}{i % 4}", b) for i, b in enumerate(blobs)]
    elapsed, lat, _ = await timed(jobs, concurrency)
    return sum(map(len, blobs)) / MiB / elapsed, pct(lat, 0.99) * 1000


async def pull_phase(http, url, label, blobs, concurrency, repeat=4):
    jobs = [lambda b=b: pull(http, url, f"bench/mono-{label}0", digest(b)) for b in blobs[::4]] * repeat
    elapsed, lat, results = await timed(jobs, concurrency)
    return sum(results) / MiB / elapsed, pct(lat, 0.99) * 1000


async def run_rounds(targets: list[Target], scale: dict, workdir: Path) -> dict:
    """Every workload runs on each target in turn, `rounds` times, alternating the order; the best
    round counts (noise on a shared 2-core machine only ever makes a run slower)."""
    figures: dict[str, dict[str, tuple]] = {t.name: {} for t in targets}

    def keep(name, key, unit, value, p99, higher_is_better=True):
        old = figures[name].get(key)
        if old is None or (value > old[1] if higher_is_better else value < old[1]):
            figures[name][key] = (unit, value, p99)

    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as http:
        for label, size, count in scale["push"]:
            data = [os.urandom(size) for _ in range(count)]
            for round_number in range(scale["rounds"]):
                order = targets if round_number % 2 == 0 else targets[::-1]
                for target in order:
                    tag = f"{label.replace(' ', '').lower()}r{round_number}"
                    os.sync()
                    value, p99 = await push_phase(http, target.url, tag, data, scale["concurrency"])
                    keep(target.name, f"monolithic push {label}", "MiB/s", value, p99)
                    value, p99 = await pull_phase(http, target.url, tag, data, scale["concurrency"])
                    keep(target.name, f"pull {label}", "MiB/s", value, p99)
        size, count, chunk = scale["chunked"]
        data = [os.urandom(size) for _ in range(count)]
        for round_number in range(scale["rounds"]):
            for target in (targets if round_number % 2 == 0 else targets[::-1]):
                os.sync()
                value, p99 = await push_phase(http, target.url, f"r{round_number}", data, scale["concurrency"], chunk)
                keep(target.name, f"chunked push {size // MiB} MiB, {chunk // MiB} MiB chunks", "MiB/s", value, p99)
        for target in targets:
            await put_manifest(http, target.url, "bench/manifests", "latest")
    for round_number in range(scale["rounds"]):
        for target in (targets if round_number % 2 == 0 else targets[::-1]):
            url = f"{target.url}/v2/bench/manifests/manifests/latest"
            wrk(url, 1, 16, workdir)  # warm-up
            rate, p50, p99 = wrk(url, scale["wrk_seconds"], 16, workdir)
            keep(target.name, "manifest GET (wrk, 16 connections)", "req/s", rate, p99)
            keep(target.name, "manifest GET p50", "ms", p50, None, higher_is_better=False)
    return figures


async def manifest_one_core(workdir: Path, seconds: int, rounds: int) -> dict[str, list[tuple[float, float, float]]]:
    """Manifest GETs with one core each (Distribution with GOMAXPROCS=1, Meridian with one gateway
    process), so wrk keeps the machine's other core: latency without the client starved of CPU (with a
    process per core, wrk, both gateway processes and PostgreSQL share 2 cores, and the tail is the
    scheduler's). {registry: [(req/s, p50 ms, p99 ms) per round]}."""
    folder = workdir / "one-core"
    folder.mkdir(exist_ok=True)
    targets = [start_distribution(folder, cores=1), start_meridian(folder, workers=1)]
    results: dict[str, list[tuple[float, float, float]]] = {target.name: [] for target in targets}
    try:
        for target in targets:
            await wait_ready(target.url)
        async with aiohttp.ClientSession() as http:
            for target in targets:
                await put_manifest(http, target.url, "bench/manifests", "latest")
        for round_number in range(rounds):
            for target in (targets if round_number % 2 == 0 else targets[::-1]):
                url = f"{target.url}/v2/bench/manifests/manifests/latest"
                wrk(url, 1, 16, folder)  # warm-up
                results[target.name].append(wrk(url, seconds, 16, folder))
    finally:
        for target in targets:
            target.stop()
    return results


def report_one_core(results: dict[str, list[tuple[float, float, float]]]) -> None:
    rounds = len(results["meridian"])
    print(f"manifest GET with one core each (Distribution GOMAXPROCS=1, Meridian --workers 1; wrk keeps the other "
          f"core), medians of {rounds} rounds")
    print(f"{'figure':46} {'Distribution':>13} {'Meridian':>10} {'ratio':>7}")
    for index, label in enumerate(("req/s", "p50 ms", "p99 ms")):
        dist = statistics.median(r[index] for r in results["distribution"])
        mer = statistics.median(r[index] for r in results["meridian"])
        lower = "  (lower is better)" if "ms" in label else ""
        print(f"{'manifest GET ' + label:46} {dist:13.1f} {mer:10.1f} {mer / dist if dist else float('nan'):6.2f}x{lower}")


async def headline_only(quick: bool) -> None:
    from bench import headline

    rounds = 2 if quick else 3
    workdir = Path(tempfile.mkdtemp(prefix="meridian-bench-"))
    targets = [start_distribution(workdir), start_meridian(workdir)]
    try:
        for target in targets:
            await wait_ready(target.url)
        async with aiohttp.ClientSession() as http:
            for target in targets:
                await put_manifest(http, target.url, "bench/manifests", "latest")
        figures = await headline.run(targets, workdir, rounds=rounds, blobs=4 if quick else 8, wrk=wrk, wrk_pull=wrk_transfer,
                                     wrk_seconds=3 if quick else 6)
        for target in targets:
            target.stop()
        one_core = await manifest_one_core(workdir, 3 if quick else 6, rounds)
    finally:
        for target in targets:
            target.stop()
        await _drop_bench_database()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    headline.report(figures, rounds)
    print()
    report_one_core(one_core)


async def main(quick: bool) -> None:
    scale: dict[str, Any] = {
        "concurrency": 4,
        "rounds": 2 if quick else 3,
        "push": [("1 MiB", MiB, 40 if quick else 150), ("32 MiB", 32 * MiB, 4 if quick else 12)],
        "chunked": (16 * MiB, 4 if quick else 10, 4 * MiB),
        "wrk_seconds": 3 if quick else 8,
    }
    workdir = Path(tempfile.mkdtemp(prefix="meridian-bench-"))
    targets = [start_distribution(workdir), start_meridian(workdir)]
    from bench import headline

    try:
        for target in targets:
            await wait_ready(target.url)
        figures = await run_rounds(targets, scale, workdir)
        headline_figures = await headline.run(targets, workdir, rounds=scale["rounds"], blobs=4 if quick else 8, wrk=wrk,
                                                wrk_pull=wrk_transfer,
                                              wrk_seconds=3 if quick else 6)
        for target in targets:
            target.stop()
        one_core = await manifest_one_core(workdir, 3 if quick else 6, scale["rounds"])
    finally:
        for target in targets:
            target.stop()
    try:
        geo = await replication_bench(workdir, quick) if port_open("127.0.0.1", 5432) else None
        if geo is None:
            print("replication bench skipped: it reads placement times from PostgreSQL on 127.0.0.1:5432")
    finally:
        await _drop_bench_database()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    headline.report(headline_figures, scale["rounds"])
    print()
    report_one_core(one_core)
    print()
    print(f"best of {scale['rounds']} alternating rounds; ratio = Meridian / Distribution (for ms, lower is better)")
    print(f"{'workload':44} {'unit':6} {'Distribution':>14} {'Meridian':>14} {'ratio':>7}   p99 ms (D / M)")
    for key, (unit, dist_value, dist_p99) in figures["distribution"].items():
        _, mer_value, mer_p99 = figures["meridian"][key]
        ratio = mer_value / dist_value if dist_value else float("nan")
        p99 = f"{dist_p99:8.1f} / {mer_p99:8.1f}" if dist_p99 is not None else ""
        print(f"{key:44} {unit:6} {dist_value:14.1f} {mer_value:14.1f} {ratio:6.2f}x   {p99}")
    from bench.scale import report as scale_report
    from bench.scale import run_scale

    print()
    scale_report(await run_scale())
    if geo:
        print()
        report_replication(geo)


async def replication_only(quick: bool) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="meridian-bench-"))
    try:
        if not port_open("127.0.0.1", 5432):
            print("replication bench skipped: it reads placement times from PostgreSQL on 127.0.0.1:5432")
            return
        report_replication(await replication_bench(workdir, quick))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report_replication(geo: dict) -> None:
    print("replication us -> eu (Meridian only; Distribution has no replication), `meridian up --regions us,eu`:")
    print(f"  lag, commit in us to placement in eu, {geo['blobs']} x 1 MiB pushed one after another: "
          f"p50 {geo['p50'] * 1000:.0f} ms, p99 {geo['p99'] * 1000:.0f} ms")
    print(f"  large blobs: {geo['large_mib']} MiB in 128 MiB blobs, first commit in us to last placement in eu: "
          f"{geo['copy_mib_s']:.0f} MiB/s; while copies ran: {geo['copying_mib_s']:.0f} MiB/s; slowest blob "
          f"placed {geo['copy_lag_max']:.2f} s after its commit" + ("" if geo["complete"] else "  [INCOMPLETE within 300 s]"))
    print(f"  one 128 MiB blob at a time (nothing else running), size / lag, median: {geo['alone_mib_s']:.0f} MiB/s")
    print(f"  peak RSS of the two-region process (both gateways, blobstores, replicators) while the large blobs "
          f"were pushed and copied: {geo['copy_peak_rss_mib']:.0f} MiB")


async def replication_bench(workdir: Path, quick: bool) -> dict:
    """Two regions in one `meridian up --regions us,eu`: lag from commit in us to placement in eu for
    1 MiB blobs pushed steadily, and copy throughput for large blobs."""
    import asyncpg

    port = free_port()
    while port_open("127.0.0.1", port + 1):
        port = free_port()
    database = f"meridian_bench_geo_{os.getpid()}"
    doc = {"MERIDIAN_INSECURE_OPEN_ACCESS": True, "MERIDIAN_BUS_PREFIX": f"benchgeo{os.getpid()}"}
    if port_open("127.0.0.1", 5432):
        doc["DB_URI"] = f"postgresql://postgres@127.0.0.1:5432/{database}"
    if port_open("127.0.0.1", 4222):
        doc["NATS_URL"] = "nats://127.0.0.1:4222"
    path = workdir / "geo.yaml"
    path.write_text(yaml.safe_dump(doc))
    with open(workdir / "geo.log", "wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--regions", "us,eu", "--config", str(path),
             "--data", str(workdir / "geo"), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    us = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(f"http://127.0.0.1:{port + 1}")
        conn = await asyncpg.connect(str(doc["DB_URI"]))
        async with aiohttp.ClientSession() as http:
            small = [os.urandom(MiB) for _ in range(30 if quick else 150)]
            # Digests are taken before the pushes, as a client knows them from the build, and once: each
            # poll below hashed every 128 MiB blob again, and took a core from the copies it timed.
            small_digests = [digest(x) for x in small]
            for blob, blob_digest in zip(small, small_digests, strict=True):  # a steady stream, one push after another
                await push_monolithic(http, us, "bench/geo", blob, blob_digest=blob_digest)
            large = [os.urandom(128 * MiB) for _ in range(2 if quick else 4)]
            large_digests = [digest(x) for x in large]
            watch = RssWatch(process.pid)
            watch.__enter__()  # left at the end of the copies below
            await gather_limited(2, [lambda b=b, d=d: push_monolithic(http, us, "bench/geobig", b, streamed=True, blob_digest=d)
                                     for b, d in zip(large, large_digests, strict=True)])

            async def lags(digests: list[str]):
                rows = await conn.fetch(
                    "SELECT b.digest, extract(epoch FROM max(p.created_at) FILTER (WHERE l.name = 'eu') - "
                    "max(p.created_at) FILTER (WHERE l.name = 'us')) AS lag, "
                    "extract(epoch FROM max(p.created_at) FILTER (WHERE l.name = 'us')) AS committed, "
                    "extract(epoch FROM max(p.created_at) FILTER (WHERE l.name = 'eu')) AS placed "
                    "FROM blobs b JOIN blob_placements p ON p.blob_id = b.id JOIN storage_locations l ON l.id = p.location_id "
                    "WHERE b.digest = ANY($1::text[]) GROUP BY b.digest", digests)
                return [r for r in rows if r["lag"] is not None]

            deadline = time.time() + 300
            while time.time() < deadline:
                done_small, done_large = await lags(small_digests), await lags(large_digests)
                if len(done_small) == len(small) and len(done_large) == len(large):
                    break
                await asyncio.sleep(0.2)
            watch.__exit__()
            # One blob at a time, nothing else running: the copy's own rate (size / lag).
            alone = []
            for _ in range(2 if quick else 3):
                blob = os.urandom(128 * MiB)
                blob_digest = digest(blob)
                await push_monolithic(http, us, "bench/geoone", blob, streamed=True, blob_digest=blob_digest)
                while time.time() < deadline and not (placed := await lags([blob_digest])):
                    await asyncio.sleep(0.02)
                alone += [float(r["lag"]) for r in placed]
        small_lags = sorted(float(r["lag"]) for r in done_small)
        # From the first large blob committed in us to the last one placed in eu (database clock): this
        # includes waiting for the later blobs' pushes, so it is bounded by the push rate.
        copy_seconds = max(float(r["placed"]) for r in done_large) - min(float(r["committed"]) for r in done_large)
        # Only the time during which at least one copy was under way (committed in us, not yet in eu).
        copying = busy_seconds([(float(r["committed"]), float(r["placed"])) for r in done_large])
        await conn.close()
        return {
            "blobs": len(small_lags), "p50": pct(small_lags, 0.5), "p99": pct(small_lags, 0.99),
            "large_mib": 128 * len(large), "copy_mib_s": 128 * len(large) / max(copy_seconds, 1e-6),
            "copying_mib_s": 128 * len(large) / max(copying, 1e-6),
            "alone_mib_s": 128 / max(statistics.median(alone), 1e-6) if alone else 0.0,
            "copy_peak_rss_mib": watch.peak / MiB,
            "copy_lag_max": max(float(r["lag"]) for r in done_large),
            "complete": len(small_lags) == len(small) and len(done_large) == len(large),
        }
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        if "DB_URI" in doc:
            admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()


async def _drop_bench_database() -> None:
    if not port_open("127.0.0.1", 5432):
        return
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "meridian_bench_{os.getpid()}" WITH (FORCE)')
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller run (about a minute)")
    parser.add_argument("--scale", action="store_true", help="only the tag-history and gc scale check")
    parser.add_argument("--headline", action="store_true", help="only the headline table (64 MiB pushes, pulls, manifests)")
    parser.add_argument("--memory", action="store_true", help="only the 2 GiB push/pull memory check")
    parser.add_argument("--s3", action="store_true", help="only S3 storage: both registries on one SeaweedFS")
    parser.add_argument("--replication", action="store_true", help="only replication between two regions (lag, copy rate)")
    options = parser.parse_args()
    if options.replication:
        asyncio.run(replication_only(options.quick))
    elif options.s3:
        from bench import s3

        s3.report(asyncio.run(s3.run()))
    elif options.memory:
        from bench import memory

        memory.report(asyncio.run(memory.run()))
    elif options.headline:
        asyncio.run(headline_only(options.quick))
    elif options.scale:
        from bench.scale import report, run_scale

        report(asyncio.run(run_scale()))
    else:
        asyncio.run(main(options.quick))
