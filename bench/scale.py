"""Scale check for tag history and gc: a repository with 100,000 tag rows lists its first page (the
API's tag history, newest first) and one pass of gc collects 10,000 expired tags.

    ./meridian bench --scale      (also part of every `./meridian bench` run)

Uses PostgreSQL on 127.0.0.1:5432 and NATS on 127.0.0.1:4222 when they run, else embedded ones.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

from shared.config import parse_config
from shared.db import close_pool, create_pool, migrate, with_database
from shared.embedded import free_port, local_or_embedded

TAG_ROWS = 100_000
EXPIRED = 10_000


async def _seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            namespace_id = await conn.fetchval("INSERT INTO namespaces (name, tag_expiration_s) VALUES ('bench', 7 * 86400) RETURNING id")
            repo_id = await conn.fetchval(
                "INSERT INTO repositories (namespace_id, name, full_name, visibility) VALUES ($1, 'scale', 'bench/scale', 'public') "
                "RETURNING id", namespace_id)
            manifest_id = await conn.fetchval(
                "INSERT INTO manifests (repository_id, digest, media_type, size, body) "
                "VALUES ($1, 'sha256:' || repeat('a', 64), 'application/vnd.oci.image.manifest.v1+json', 2, '{}') RETURNING id",
                repo_id)
            # 100,000 rows: 45,000 ended history inside the one-week window, 45,000 live, and 10,000 whose
            # expiry passed 8 days ago, so gc ends them and collects them in the same pass.
            await conn.execute(
                """
                INSERT INTO tags (repository_id, name, manifest_id, lifetime_start, lifetime_end, expires_at)
                SELECT $1, 't' || n, $2, now() - make_interval(secs => n),
                       CASE WHEN n % 2 = 0 AND n > $4 THEN now() - make_interval(secs => n / 2) END,
                       CASE WHEN n <= $4 THEN now() - interval '8 days' END
                FROM generate_series(1, $3) AS n
                """,
                repo_id, manifest_id, TAG_ROWS, EXPIRED)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def run_scale() -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="meridian-scale-"))
    database = f"meridian_bench_scale_{os.getpid()}"
    admin_dsn, nats_url, started = local_or_embedded(workdir)
    try:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'CREATE DATABASE "{database}"')
        await admin.close()
        dsn = with_database(admin_dsn, database)
        await migrate(dsn)
        seeded = time.perf_counter()
        await _seed(dsn)
        seed_seconds = time.perf_counter() - seeded
        port = free_port()
        config = parse_config({
            "DB_URI": dsn, "NATS_URL": nats_url, "MERIDIAN_BUS_PREFIX": f"benchscale{os.getpid()}",
            "SERVER_HOSTNAME": f"127.0.0.1:{port}", "MERIDIAN_INSECURE_OPEN_ACCESS": True,
            "DISTRIBUTED_STORAGE_CONFIG": {"local": ["LocalStorage", {"storage_path": str(workdir / "storage")}]},
            "PUSH_TEMP_TAG_EXPIRATION_SEC": 0,
        })
        from services.gateway.app import create_app

        runner = web.AppRunner(create_app(config), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        timings = []
        try:
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{port}/api/v1/repository/bench/scale/tag/?limit=50"
                for index in range(60):
                    started_at = time.perf_counter()
                    async with http.get(url) as r:
                        body = await r.json()
                        assert r.status == 200 and len(body["tags"]) == 50, body
                    if index >= 10:  # after warm-up
                        timings.append(time.perf_counter() - started_at)
                filtered = time.perf_counter()
                async with http.get(f"http://127.0.0.1:{port}/api/v1/repository/bench/scale/tag/?specificTag=t99999") as r:
                    assert r.status == 200 and len((await r.json())["tags"]) == 1
                by_name = time.perf_counter() - filtered
        finally:
            await runner.cleanup()

        from services.gc.collector import Collector
        from shared.bus import Bus
        from shared.locations import Locations

        pool = await create_pool(dsn, 4)
        bus = Bus(nats_url, config.meridian_bus_prefix, name="bench-gc")
        await bus.connect()
        await bus.ensure_streams()  # gc publishes tag.expired events; without the stream each waits and is deferred
        locations = Locations(config)
        try:
            collector = Collector(config, pool, bus, locations)
            await collector.open()
            gc_started = time.perf_counter()
            report = await collector.run_once()
            gc_seconds = time.perf_counter() - gc_started
            left = await pool.fetchval("SELECT count(*) FROM tags")
            await collector.relay.stop()  # its events go out before the stream is deleted below
        finally:
            await locations.close()
            try:
                await bus.js.delete_key_value(f"{config.meridian_bus_prefix}_locks")
                await bus.js.delete_stream(bus.subjects.events_stream)
            except Exception:
                pass
            await bus.close()
            await close_pool(pool)
        timings.sort()
        return {
            "rows": TAG_ROWS, "seed_s": seed_seconds,
            "first_page_p50_ms": statistics.median(timings) * 1000, "first_page_p99_ms": timings[int(0.99 * (len(timings) - 1))] * 1000,
            "by_name_ms": by_name * 1000,
            "expired": report.tags_expired, "collected": report.tags, "gc_s": gc_seconds, "rows_left": left,
        }
    finally:
        try:
            admin = await asyncpg.connect(admin_dsn)
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
        except Exception:
            pass
        for server in reversed(started):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def report(figures: dict) -> None:
    print(f"tag history scale ({figures['rows']:,} tag rows in one repository, seeded in {figures['seed_s']:.1f} s):")
    print(f"  first page (50 rows, newest first) p50 {figures['first_page_p50_ms']:.1f} ms, p99 {figures['first_page_p99_ms']:.1f} ms "
          f"(goal <= 50 ms); one tag's history by name {figures['by_name_ms']:.1f} ms")
    print(f"  gc: {figures['expired']:,} expired tags ended and {figures['collected']:,} rows collected in one pass, "
          f"{figures['gc_s']:.2f} s; {figures['rows_left']:,} rows left")


if __name__ == "__main__":
    report(asyncio.run(run_scale()))
