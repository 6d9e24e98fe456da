"""Replication that heals itself (in-process regions; the production-shape fault suite is tests/faults/):
anti-entropy converges without `backfill-replication`, a copy that cannot be made is recorded and healed
later, copies wait while the target's own storage is down instead of spending their deliveries, pushes
fail over to the next location when the region's own is down, a database outage answers 503 with
Retry-After and an upload survives it, and abandoned upload sessions go."""
from __future__ import annotations

import asyncio
import os

from shared.embedded import start_seaweedfs
from shared.storage.paths import blob as blob_path
from tests.conftest import local_spec, s3_location
from tests.helpers import eventually, sha256
from tests.integration.test_geo import placements, pull, push

FAST = {"MERIDIAN_RECONCILE_INTERVAL_SEC": 0.5, "MERIDIAN_RECONCILE_GRACE_SEC": 0}


async def _restart_replicator(region, **overrides):
    from services.replicator.app import Replicator
    from shared.config import parse_config

    if region.replicator is not None:
        await region.replicator.stop()
    region.replicator = Replicator(parse_config({**region.doc, **overrides}))
    await region.replicator.start()
    return region.replicator


async def test_anti_entropy_converges_after_a_location_is_added(make_regions, tmp_path, db):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")},
                                 DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS=["us"], **FAST)
    us, eu = regions["us"], regions["eu"]
    digests = [await push(us, "acme/app", os.urandom(4000 + i)) for i in range(5)]
    assert all([await placements(db, d) == ["us"] for d in digests])
    # The operator adds eu to the default locations and restarts eu's replicator: no backfill is run.
    replicator = await _restart_replicator(eu, DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS=["us", "eu"])

    async def converged():
        return all([await placements(db, d) == ["eu", "us"] for d in digests])

    await eventually(converged, timeout=30, what="every blob to reach eu by anti-entropy")
    for digest in digests:
        assert (tmp_path / "eu" / blob_path(digest)).is_file()
    from shared.metrics import REPLICATION_MISSING_BLOBS

    async def counted_nothing_missing():
        await replicator.reconcile_once()
        return REPLICATION_MISSING_BLOBS.labels("eu")._value.get() == 0

    await eventually(counted_nothing_missing, timeout=10, what="the missing-blob gauge to reach 0")


async def test_a_copy_that_cannot_be_made_is_recorded_then_healed(make_regions, tmp_path, db):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")},
                                 replicate={"eu": False}, MERIDIAN_REPLICATION_MAX_DELIVER=2,
                                 MERIDIAN_REPLICATION_MAX_BACKOFF_SEC=0.2, MERIDIAN_RECONCILE_INTERVAL_SEC=0.5,
                                 MERIDIAN_RECONCILE_GRACE_SEC=3600)  # no repair while the bytes are gone
    us, eu = regions["us"], regions["eu"]
    data = os.urandom(20_000)
    digest = await push(us, "acme/app", data)
    stored = tmp_path / "us" / blob_path(digest)
    stored.rename(stored.with_suffix(".away"))  # the only copy's bytes vanish behind the registry's back
    await _restart_replicator(eu)

    async def recorded():
        return await db.fetchrow("SELECT location, deliveries, error FROM replication_failures WHERE digest = $1", digest)

    failure = await eventually(recorded, timeout=30, what="the failed copy to be recorded")
    assert failure["location"] == "eu" and failure["deliveries"] == 2 and "us" in failure["error"]
    assert await placements(db, digest) == ["us"]

    stored.with_suffix(".away").rename(stored)  # the bytes are back: anti-entropy heals with no command
    await _restart_replicator(eu, MERIDIAN_RECONCILE_GRACE_SEC=0)

    async def healed():
        return await placements(db, digest) == ["eu", "us"]

    await eventually(healed, timeout=30, what="anti-entropy to place the copy once it can be made")
    assert (tmp_path / "eu" / blob_path(digest)).read_bytes() == data


async def test_copies_wait_while_the_targets_storage_is_down(make_regions, own_seaweedfs, tmp_path, db):
    weed = own_seaweedfs["server"]
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": s3_location(weed.url, own_seaweedfs["bucket"])},
                                 MERIDIAN_REPLICATION_MAX_DELIVER=2, MERIDIAN_REPLICATION_MAX_BACKOFF_SEC=0.2, **FAST)
    us, eu = regions["us"], regions["eu"]
    weed.stop()

    async def holding():
        return not eu.replicator.locations.own_is_up()

    await eventually(holding, timeout=30, what="eu's replicator to see its storage down")
    digests = [await push(us, "acme/app", os.urandom(30_000 + i)) for i in range(6)]
    # Longer than the whole back-off of 2 deliveries many times over: nothing may be given up.
    await asyncio.sleep(0)
    deadline = asyncio.get_running_loop().time() + 8
    while asyncio.get_running_loop().time() < deadline:
        assert await db.fetchval("SELECT count(*) FROM replication_failures") == 0
        await asyncio.sleep(0.5)
    assert all([await placements(db, d) == ["us"] for d in digests])

    own_seaweedfs["server"] = start_seaweedfs(tmp_path / "weed", ports=weed.extra["ports"])

    async def converged():
        return all([await placements(db, d) == ["eu", "us"] for d in digests])

    await eventually(converged, timeout=60, what="every held copy to be made once eu's storage returned")
    assert await db.fetchval("SELECT count(*) FROM replication_failures") == 0


async def test_pushes_fail_over_when_the_regions_own_storage_is_down(make_regions, own_seaweedfs, tmp_path, db):
    weed = own_seaweedfs["server"]
    regions = await make_regions({"us": s3_location(weed.url, own_seaweedfs["bucket"]), "eu": local_spec(tmp_path / "eu")},
                                 MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC=1, **FAST)
    us = regions["us"]
    weed.stop()
    from services.gateway.state import GATEWAY

    gateway_locations = us.runners[-1].app[GATEWAY].locations

    async def us_down():
        return gateway_locations.write_target() == "eu"

    await eventually(us_down, timeout=30, what="us's gateway to see its own storage down")
    monolithic = os.urandom(70_000)
    digest = await push(us, "acme/app", monolithic)
    chunked = os.urandom(3 * 100_000)
    async with us.http.post(us.v2("acme/app/blobs/uploads/")) as r:
        assert r.status == 202
        location = r.headers["Location"]
    for start in range(0, len(chunked), 100_000):
        part = chunked[start:start + 100_000]
        async with us.http.patch(f"{us.gateway_url}{location}", data=part, headers={
                "Content-Range": f"{start}-{start + len(part) - 1}", "Content-Type": "application/octet-stream"}) as r:
            assert r.status == 202, await r.text()
            location = r.headers["Location"]
    async with us.http.put(f"{us.gateway_url}{location}", params={"digest": sha256(chunked)}) as r:
        assert r.status == 201, await r.text()
    chunked_digest = sha256(chunked)
    for d, data in ((digest, monolithic), (chunked_digest, chunked)):
        assert await placements(db, d) == ["eu"]  # written through eu's blobstore
        status, body, served_by = await pull(us, "acme/app", d)
        assert (status, served_by, body == data) == (200, "eu", True)
    assert not list((tmp_path / "eu" / "uploads").glob("*/*"))  # no chunk left behind

    own_seaweedfs["server"] = start_seaweedfs(tmp_path / "weed", ports=weed.extra["ports"])

    async def back_in_us():
        return all([await placements(db, d) == ["eu", "us"] for d in (digest, chunked_digest)])

    await eventually(back_in_us, timeout=60, what="the blobs to replicate back to us")

    async def us_up():
        return gateway_locations.write_target() == "us"

    # The replicator has its own view of us's storage; the gateway's breaker closes at its own probe
    # (held up to two probe rounds after the last failure), which on a slow machine can come after
    # the copies. Until then the gateway rightly serves eu's copy.
    await eventually(us_up, timeout=30, what="us's gateway to see its own storage again")
    status, body, served_by = await pull(us, "acme/app", chunked_digest)
    assert (status, served_by, body == chunked) == (200, "us", True)


async def test_database_down_answers_503_with_retry_after_and_an_upload_survives(make_registry, tmp_path):
    import asyncpg

    from shared.db import migrate
    from shared.embedded import EmbeddedPostgres

    postgres = EmbeddedPostgres(tmp_path / "pg")
    try:
        admin = await asyncpg.connect(postgres.dsn("postgres"))
        await admin.execute('CREATE DATABASE "blip"')
        await admin.close()
        await migrate(postgres.dsn("blip"))
        reg = await make_registry(DB_URI=postgres.dsn("blip"))
        first = os.urandom(5000)
        async with reg.http.post(reg.v2("acme/app/blobs/uploads/")) as r:
            location = r.headers["Location"]
        async with reg.http.patch(f"{reg.url}{location}", data=first, headers={"Content-Type": "application/octet-stream"}) as r:
            assert r.status == 202
            location = r.headers["Location"]
        postgres.stop()
        for method, path in (("GET", reg.v2("acme/app/tags/list")), ("GET", reg.v2(f"acme/app/blobs/{sha256(first)}")),
                             ("GET", f"{reg.url}/api/v1/repository?namespace=acme")):
            async with reg.http.request(method, path) as r:
                assert r.status == 503, (path, await r.text())
                assert r.headers["Retry-After"].isdigit()
                body = await r.json()
                if "/api/" in path:
                    assert body["error_type"] == "unavailable" and "database" in body["error_message"]
                else:
                    assert body["errors"][0]["code"] == "UNAVAILABLE" and "database" in body["errors"][0]["message"]
        second = os.urandom(7000)
        async with reg.http.patch(f"{reg.url}{location}", data=second, headers={"Content-Type": "application/octet-stream"}) as r:
            assert r.status == 503 and r.headers["Retry-After"]
        postgres = EmbeddedPostgres(tmp_path / "pg")

        async def patched():  # the client retries the same chunk until the database is back
            async with reg.http.patch(f"{reg.url}{location}", data=second,
                                      headers={"Content-Type": "application/octet-stream"}) as r:
                return r.headers["Location"] if r.status == 202 else None

        location = await eventually(patched, timeout=30, interval=0.5, what="the upload to continue")
        async with reg.http.put(f"{reg.url}{location}", params={"digest": sha256(first + second)}) as r:
            assert r.status == 201, await r.text()
        async with reg.http.get(reg.v2(f"acme/app/blobs/{sha256(first + second)}")) as r:
            assert r.status == 200 and await r.read() == first + second
    finally:
        postgres.stop()


async def test_empty_upload_sessions_are_cleaned(registry, db):
    from services.gc.collector import Collector
    from shared.bus import Bus
    from shared.config import parse_config
    from shared.db import close_pool, create_pool
    from shared.locations import Locations

    async with registry.http.post(registry.v2("acme/app/blobs/uploads/")) as r:
        abandoned = r.headers["Location"]
    async with registry.http.post(registry.v2("acme/app/blobs/uploads/")) as r:
        started = r.headers["Location"]
    async with registry.http.patch(f"{registry.url}{started}", data=b"x" * 100,
                                   headers={"Content-Type": "application/octet-stream"}) as r:
        assert r.status == 202
    config = parse_config({**registry.doc, "MERIDIAN_EMPTY_UPLOAD_SESSION_MAX_AGE_SEC": 0})
    pool = await create_pool(config.db_uri, 2)
    bus = Bus(config.nats_url, config.meridian_bus_prefix)
    await bus.connect()
    locations = Locations(config)
    try:
        collector = Collector(config, pool, bus, locations)
        await collector.open()
        assert (await collector.run_once()).uploads == 1
        remaining = await db.fetch("SELECT id::text AS id, size FROM upload_sessions")
        assert [(r["id"], r["size"]) for r in remaining] == [(started.rsplit("/", 1)[1], 100)]
        async with registry.http.get(f"{registry.url}{abandoned}") as r:
            assert r.status == 404
    finally:
        await collector.relay.stop()
        await locations.close()
        await bus.close()
        await close_pool(pool)
