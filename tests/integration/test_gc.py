"""Garbage collection on real PostgreSQL, NATS (KV locks) and storage: what goes, what must stay,
every location, concurrent actors, a killed lock holder, metrics, dry runs, read-only mode."""
from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from pathlib import Path

import pytest_asyncio
from prometheus_client import REGISTRY

from services.gc.collector import Collector
from shared.bus import Bus
from shared.config import parse_config
from shared.db import close_pool, create_pool
from shared.locations import Locations
from shared.locks import Lock
from shared.storage.paths import blob as blob_path
from tests.conftest import local_spec
from tests.helpers import eventually, push_blob, push_image, sha256


@pytest_asyncio.fixture
async def make_collector():
    opened = []

    async def make(doc: dict, *, observer=None, **overrides) -> Collector:
        config = parse_config({**doc, **overrides})
        pool = await create_pool(config.db_uri, 4)
        bus = Bus(config.nats_url, config.meridian_bus_prefix, name="gc-test")
        await bus.connect()
        locations = Locations(config)
        collector = Collector(config, pool, bus, locations, observer=observer)
        await collector.open()
        opened.append((pool, bus, locations))
        return collector

    yield make
    for pool, bus, locations in opened:
        await locations.close()
        await bus.close()
        await close_pool(pool)


async def age(db, seconds: int = 7200) -> None:
    """Make everything look older than the push grace window (PUSH_TEMP_TAG_EXPIRATION_SEC)."""
    for table in ("blobs", "repository_blobs", "manifests"):
        await db.execute(f"UPDATE {table} SET created_at = created_at - make_interval(secs => $1)", seconds)
    await db.execute("UPDATE tags SET lifetime_start = lifetime_start - make_interval(secs => $1), "
                     "lifetime_end = lifetime_end - make_interval(secs => $1)", seconds)


def stored(reg, digest: str) -> bool:
    root = Path(reg.doc["DISTRIBUTED_STORAGE_CONFIG"]["local"][1]["storage_path"])
    return (root / blob_path(digest)).exists()


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def delete_tag(reg, name: str, tag: str) -> None:
    async with reg.http.delete(reg.v2(f"{name}/manifests/{tag}")) as r:
        assert r.status == 202


async def test_a_push_in_progress_survives_gc_inside_the_grace_window(registry, make_collector, db):
    collector = await make_collector(registry.doc)
    layer = os.urandom(4096)
    layer_digest = await push_blob(registry, "acme/app", layer)  # a push whose manifest has not come yet
    for _ in range(3):
        report = await collector.run_once()
        assert report.blobs == [] and report.blob_links == 0
    assert stored(registry, layer_digest)
    manifest_digest, _ = await push_image(registry, "acme/app", "v1")  # the rest of another push completes fine
    async with registry.http.head(registry.v2(f"acme/app/blobs/{layer_digest}")) as r:
        assert r.status == 200
    # Once the window has passed, the blob nothing uses is collected; the tagged image stays.
    await age(db)
    report = await collector.run_once()
    assert report.blobs == [layer_digest]
    assert not stored(registry, layer_digest)
    async with registry.http.get(registry.v2("acme/app/manifests/v1")) as r:
        assert r.status == 200 and r.headers["Docker-Content-Digest"] == manifest_digest


async def test_shared_blob_survives_one_repository_and_goes_with_the_second(registry, make_collector, db):
    collector = await make_collector(registry.doc)
    shared_layer = os.urandom(8192)
    digests = []
    for name in ("acme/one", "acme/two"):
        digests.append((await push_image(registry, name, "v1", layer_bytes=[shared_layer]))[0])
    layer_digest = sha256(shared_layer)
    await age(db)
    await db.execute("UPDATE repositories SET state = 'deleted', full_name = full_name || '+deleted+' || id WHERE full_name = 'acme/one'")
    report = await collector.run_once()
    assert report.repositories == ["acme/one"]
    assert layer_digest not in report.blobs
    assert stored(registry, layer_digest)
    async with registry.http.get(registry.v2(f"acme/two/blobs/{layer_digest}")) as r:
        assert r.status == 200 and await r.read() == shared_layer
    # The second repository goes: now nothing references the shared layer.
    await delete_tag(registry, "acme/two", "v1")
    await db.execute("UPDATE namespaces SET tag_expiration_s = 0 WHERE name = 'acme'")
    report = await collector.run_once()
    assert layer_digest in report.blobs and digests[1] in [m.split("@")[1] for m in report.manifests]
    assert not stored(registry, layer_digest)
    assert await db.fetchval("SELECT count(*) FROM blobs WHERE digest = $1", layer_digest) == 0


async def test_collected_blob_goes_from_every_location_with_its_placements(make_regions, make_collector, tmp_path, db):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")})
    us = regions["us"]
    us.url = us.gateway_url
    manifest_digest, _ = await push_image(us, "acme/geo", "v1", layers=2)
    blob_ids = [r["id"] for r in await db.fetch("SELECT id FROM blobs")]

    async def everywhere():
        return await db.fetchval("SELECT count(*) FROM blob_placements") == 2 * len(blob_ids)

    await eventually(everywhere, what="every blob to reach eu")
    digests = [r["digest"] for r in await db.fetch("SELECT digest FROM blobs")]
    total = await db.fetchval("SELECT sum(size) FROM blobs")
    for region in ("us", "eu"):
        assert all((tmp_path / region / blob_path(d)).exists() for d in digests)
    await delete_tag(us, "acme/geo", "v1")
    await db.execute("UPDATE namespaces SET tag_expiration_s = 0 WHERE name = 'acme'")
    await age(db)
    collector = await make_collector(us.doc)  # us's view: eu is reached through its blobstore over NATS
    assert "eu" not in collector.locations.drivers
    report = await collector.run_once()
    assert sorted(report.blobs) == sorted(digests) and report.errors == []
    for region in ("us", "eu"):
        assert not any((tmp_path / region / blob_path(d)).exists() for d in digests), region
    assert await db.fetchval("SELECT count(*) FROM blob_placements") == 0
    assert await db.fetchval("SELECT count(*) FROM blobs") == 0
    assert report.bytes_reclaimed == 2 * total  # once per location that held the bytes


async def test_two_actors_never_collect_one_repository_together(registry, make_collector, db, monkeypatch):
    names = [f"acme/r{i}" for i in range(12)]
    for name in names:
        await push_image(registry, name, "v1")
        await delete_tag(registry, name, "v1")
    await db.execute("UPDATE namespaces SET tag_expiration_s = 0 WHERE name = 'acme'")
    await age(db)
    lock_names = {r["full_name"]: f"repo-{r['id']}" for r in await db.fetch("SELECT id, full_name FROM repositories")}
    spans: dict[str, list[tuple[str, float, float]]] = {}
    open_spans: dict[tuple[str, str], float] = {}
    refused: dict[str, set[str]] = {"first": set(), "second": set()}  # locks each actor found taken
    finished: set[str] = set()
    other = {"first": "second", "second": "first"}

    def observer_for(actor: str):
        async def observe(kind: str, repository: str) -> None:
            now = asyncio.get_running_loop().time()
            if kind == "start":
                open_spans[(actor, repository)] = now

                async def other_met_the_lock():
                    return lock_names[repository] in refused[other[actor]] or other[actor] in finished

                # Hold the repository until the other actor has tried it and been refused, so they meet.
                await eventually(other_met_the_lock, what=f"{other[actor]} to find {repository} locked")
            else:
                spans.setdefault(repository, []).append((actor, open_spans.pop((actor, repository)), now))
        return observe

    def count_refusals(collector: Collector, actor: str) -> None:
        acquire = collector.locks.acquire

        async def acquire_and_count(name, owner=None):
            lock = await acquire(name, owner)
            if lock is None:
                refused[actor].add(name)
            return lock

        monkeypatch.setattr(collector.locks, "acquire", acquire_and_count)

    async def run(actor: str, collector: Collector):
        try:
            return await collector.run_once()
        finally:
            finished.add(actor)

    first = await make_collector(registry.doc, observer=observer_for("first"))
    second = await make_collector(registry.doc, observer=observer_for("second"))
    count_refusals(first, "first")
    count_refusals(second, "second")
    reports = await asyncio.gather(run("first", first), run("second", second))
    for repository, intervals in spans.items():
        intervals.sort(key=lambda span: span[1])
        for (a, _, end), (b, start, _) in itertools.pairwise(intervals):
            assert start >= end, f"{repository} collected by {a} and {b} at once"
    assert set(spans) == set(names)
    assert sum(len(r.skipped_locked) for r in reports) > 0  # they did meet, and one stood back
    assert await db.fetchval("SELECT count(*) FROM manifests") == 0


LOCK_HOLDER = """
import asyncio, sys
import nats
from shared.locks import KVLocks

async def main():
    nc = await nats.connect(sys.argv[1])
    locks = KVLocks(nc.jetstream(), sys.argv[2], float(sys.argv[3]))
    await locks.open()
    lock = await locks.acquire(sys.argv[4], owner="doomed")
    print("held" if lock else "busy", flush=True)
    await asyncio.Event().wait()  # hold the lock (renewing it) until the test kills this process

asyncio.run(main())
"""


async def test_a_killed_lock_holder_is_taken_over_after_the_ttl(registry, make_collector, db):
    ttl = 2.0
    await push_image(registry, "acme/held", "v1")
    await delete_tag(registry, "acme/held", "v1")
    await db.execute("UPDATE namespaces SET tag_expiration_s = 0 WHERE name = 'acme'")
    await age(db)
    repo_id = await db.fetchval("SELECT id FROM repositories WHERE full_name = 'acme/held'")
    collector = await make_collector(registry.doc, MERIDIAN_GC_LOCK_TTL_SEC=ttl)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCK_HOLDER, registry.config.nats_url, collector.locks.bucket, str(ttl), f"repo-{repo_id}",
        stdout=asyncio.subprocess.PIPE, cwd=str(Path(__file__).resolve().parents[2]))
    try:
        assert holder.stdout is not None
        assert (await asyncio.wait_for(holder.stdout.readline(), 30)).strip() == b"held"
        report = await collector.run_once()
        assert "acme/held" in report.skipped_locked and report.manifests == []
        assert await collector.locks.holder(f"repo-{repo_id}") == "doomed"
        os.kill(holder.pid, signal.SIGKILL)
    finally:
        if holder.returncode is None:
            holder.kill()
        await holder.wait()

    async def free():
        return await collector.locks.holder(f"repo-{repo_id}") is None

    await eventually(free, timeout=20, what="the dead holder's lock to expire")
    report = await collector.run_once()
    assert "acme/held" not in report.skipped_locked and len(report.manifests) == 1


async def test_a_lost_lock_aborts_the_collection(registry, make_collector, db, monkeypatch):
    await push_image(registry, "acme/lost", "v1")
    await delete_tag(registry, "acme/lost", "v1")
    await db.execute("UPDATE namespaces SET tag_expiration_s = 0 WHERE name = 'acme'")
    await age(db)
    repo_id = await db.fetchval("SELECT id FROM repositories WHERE full_name = 'acme/lost'")
    collector: Collector | None = None

    async def steal(kind: str, repository: str) -> None:
        if kind == "start" and repository == "acme/lost":
            assert collector is not None and collector.locks.kv is not None
            # Someone else takes the lock over (as after a TTL expiry): the holder's renewal fails.
            await collector.locks.kv.put(f"repo-{repo_id}", b"thief")
            await collector.locks.kv.put(f"repo-{repo_id}", b"thief")

    collector = await make_collector(registry.doc, observer=steal)
    original = collector.locks.acquire

    held: dict[str, Lock] = {}

    async def acquire_and_renew_soon(name, owner=None):
        lock = await original(name, owner)
        if lock is not None and name == f"repo-{repo_id}":
            lock.ttl = 0.03  # renew almost at once, so the theft is noticed inside the collection
            held["lock"] = lock
        return lock

    monkeypatch.setattr(collector.locks, "acquire", acquire_and_renew_soon)
    before = metric("meridian_gc_locks_lost_total")

    async def slow(kind, repository):
        await steal(kind, repository)
        if kind == "start":
            async def renewal_failed():
                return held["lock"].lost

            await eventually(renewal_failed, what="the holder's renewal to notice the theft")

    collector.observer = slow
    report = await collector.run_once()
    assert any("lock lost" in e for e in report.errors)
    assert metric("meridian_gc_locks_lost_total") == before + 1
    assert await db.fetchval("SELECT count(*) FROM manifests m JOIN repositories r ON r.id = m.repository_id "
                             "WHERE r.full_name = 'acme/lost'") == 1  # rolled back


async def test_metrics_move_by_the_right_amounts(registry, make_collector, db):
    collector = await make_collector(registry.doc)
    await push_image(registry, "gone/app", "v1", layers=2)
    await push_image(registry, "acme/app", "v1", layers=1)
    await delete_tag(registry, "acme/app", "v1")
    sizes = {r["digest"]: r["size"] for r in await db.fetch("SELECT digest, size FROM blobs")}
    await db.execute("UPDATE namespaces SET tag_expiration_s = 0")
    await age(db)
    await db.execute("UPDATE repositories SET state = 'deleted', full_name = full_name || '+deleted+' || id "
                     "WHERE namespace_id = (SELECT id FROM namespaces WHERE name = 'gone')")
    await db.execute("UPDATE namespaces SET deleted_at = now(), name = name || '+deleted+' || id WHERE name = 'gone'")
    names = ("quay_gc_iterations_total", "quay_gc_namespaces_purged_total", "quay_gc_repos_purged_total",
             "quay_gc_storage_blobs_deleted_total", "quay_gc_storage_bytes_reclaimed_total", "meridian_gc_tags_collected_total",
             "meridian_gc_manifests_collected_total")
    before = {name: metric(name) for name in names}
    report = await collector.run_once()
    moved = {name: metric(name) - before[name] for name in names}
    assert moved == {
        "quay_gc_iterations_total": 1, "quay_gc_namespaces_purged_total": 1, "quay_gc_repos_purged_total": 1,
        "quay_gc_storage_blobs_deleted_total": len(sizes), "quay_gc_storage_bytes_reclaimed_total": sum(sizes.values()),
        "meridian_gc_tags_collected_total": 1, "meridian_gc_manifests_collected_total": 1,
    }, report.summary()
    assert report.namespaces == ["gone"] and report.repositories == ["gone/app"]
    assert await db.fetchval("SELECT count(*) FROM namespaces WHERE name LIKE 'gone%'") == 0


async def test_dry_run_reports_and_changes_nothing(registry, make_collector, db, tmp_path):
    await push_image(registry, "acme/dry", "v1")
    await delete_tag(registry, "acme/dry", "v1")
    await db.execute("UPDATE namespaces SET tag_expiration_s = 0")
    await age(db)
    counts = "SELECT (SELECT count(*) FROM tags), (SELECT count(*) FROM manifests), (SELECT count(*) FROM blobs)"
    before = tuple(await db.fetchrow(counts))
    import json

    import yaml

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(registry.doc))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "gc", "run", "--once", "--dry-run", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(Path(__file__).resolve().parents[2]))
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    dry = json.loads(out)
    assert dry["dry_run"] is True and dry["tags"] == 1 and dry["manifests"] == 1 and dry["blobs"] == 2
    assert tuple(await db.fetchrow(counts)) == before
    assert all(stored(registry, d) for d in dry["blob_list"])
    real = await (await make_collector(registry.doc)).run_once()
    assert sorted(real.blobs) == sorted(dry["blob_list"]) and real.bytes_reclaimed == dry["bytes_reclaimed"]


async def test_read_only_mode_pauses_gc(registry, make_collector, db):
    await push_image(registry, "acme/ro", "v1")
    await delete_tag(registry, "acme/ro", "v1")
    await db.execute("UPDATE namespaces SET tag_expiration_s = 0")
    await age(db)
    collector = await make_collector(registry.doc, REGISTRY_STATE="readonly")
    report = await collector.run_once()
    assert report.paused and "read-only" in report.paused
    assert await db.fetchval("SELECT count(*) FROM manifests") == 1
    off = await make_collector(registry.doc, FEATURE_GARBAGE_COLLECTION=False)
    assert (await off.run_once()).paused == "FEATURE_GARBAGE_COLLECTION is false"
    assert await db.fetchval("SELECT count(*) FROM manifests") == 1


async def test_stale_upload_sessions_and_orphaned_multipart_uploads_are_cleaned(make_registry, make_collector, bucket, db):
    from tests.conftest import s3_client

    reg = await make_registry(bucket)
    async with reg.http.post(reg.v2("acme/app/blobs/uploads/")) as r:
        location = r.headers["Location"]
    async with reg.http.patch(f"{reg.url}{location}", data=b"x" * 1000, headers={"Content-Type": "application/octet-stream"}) as r:
        assert r.status == 202
    upload_id = await db.fetchval("SELECT id::text FROM upload_sessions")
    url, name = bucket
    async with s3_client(url) as s3:
        orphan = await s3.create_multipart_upload(Bucket=name, Key="registry/orphan")
        listed = await s3.list_objects_v2(Bucket=name, Prefix=f"registry/uploads/{upload_id}/")
        assert listed.get("KeyCount", 0) >= 1
    collector = await make_collector(reg.doc, MERIDIAN_UPLOAD_SESSION_MAX_AGE_SEC=600)
    assert (await collector.run_once()).uploads == 0  # fresh: kept
    await db.execute("UPDATE upload_sessions SET updated_at = updated_at - interval '1 hour'")
    collector = await make_collector(reg.doc, MERIDIAN_UPLOAD_SESSION_MAX_AGE_SEC=60)
    assert (await collector.run_once()).uploads == 1
    assert await db.fetchval("SELECT count(*) FROM upload_sessions") == 0
    async with s3_client(url) as s3:
        listed = await s3.list_objects_v2(Bucket=name, Prefix=f"registry/uploads/{upload_id}/")
        assert listed.get("KeyCount", 0) == 0
        # The multipart upload made progress less than MERIDIAN_PARTIAL_OBJECT_MAX_AGE_SEC (default
        # 10 minutes) ago: kept; once it has stalled that long it goes, whatever the sessions' age.
        uploads = await s3.list_multipart_uploads(Bucket=name)
        assert orphan["UploadId"] in [u["UploadId"] for u in uploads.get("Uploads", [])]
    collector = await make_collector(reg.doc, MERIDIAN_PARTIAL_OBJECT_MAX_AGE_SEC=0)
    await collector.run_once()
    async with s3_client(url) as s3:
        uploads = await s3.list_multipart_uploads(Bucket=name)
        assert orphan["UploadId"] not in [u["UploadId"] for u in uploads.get("Uploads", [])]


async def test_purge_switches_are_honoured(registry, make_collector, db):
    await push_image(registry, "gone/app", "v1")
    await db.execute("UPDATE repositories SET state = 'deleted', full_name = full_name || '+deleted+' || id")
    await db.execute("UPDATE namespaces SET deleted_at = now(), name = name || '+deleted+' || id")
    off = await make_collector(registry.doc, FEATURE_REPOSITORY_GARBAGE_COLLECTION=False, FEATURE_NAMESPACE_GARBAGE_COLLECTION=False)
    report = await off.run_once()
    assert report.repositories == [] and report.namespaces == []
    assert await db.fetchval("SELECT count(*) FROM repositories") == 1
    repos_only = await make_collector(registry.doc, FEATURE_NAMESPACE_GARBAGE_COLLECTION=False)
    report = await repos_only.run_once()
    assert report.repositories == ["gone/app"] and report.namespaces == []
    assert await db.fetchval("SELECT count(*) FROM namespaces") == 1
    report = await (await make_collector(registry.doc)).run_once()
    assert report.namespaces == ["gone"] and await db.fetchval("SELECT count(*) FROM namespaces") == 0
