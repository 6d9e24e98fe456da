"""Exact storage quotas on real PostgreSQL, NATS and storage: shared layers count once, usage follows
tag deletions, moves, restores, expiry, repository deletion and gc at once, pushes over the reject
limit fail with Quay's exact error and leave nothing behind, concurrent pushes near the limit cannot
both pass, warnings fire once per crossing, and `meridian quota check` recomputes it all from scratch."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import nats
import pytest_asyncio
import yaml

from services.gc.collector import Collector
from shared.bus import Bus
from shared.config import parse_config
from shared.db import close_pool, create_pool
from shared.locations import Locations
from shared.messages import QuotaCrossed
from shared.registry import quota
from shared.storage.paths import blob as blob_path
from tests.helpers import LAYER_GZIP, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, descriptor, eventually, push_blob, sha256

DENIED = {"errors": [{"code": "DENIED", "message": "Quota has been exceeded on namespace", "detail": {}}]}
KIB = 1024


@pytest_asyncio.fixture
async def make_collector():
    opened = []

    async def make(doc: dict, **overrides) -> Collector:
        config = parse_config({**doc, **overrides})
        pool = await create_pool(config.db_uri, 4)
        bus = Bus(config.nats_url, config.meridian_bus_prefix, name="gc-test")
        await bus.connect()
        locations = Locations(config)
        collector = Collector(config, pool, bus, locations)
        await collector.open()
        opened.append((pool, bus, locations))
        return collector

    yield make
    for pool, bus, locations in opened:
        await locations.close()
        await bus.close()
        await close_pool(pool)


async def quota_registry(make_registry, **overrides):
    return await make_registry(FEATURE_QUOTA_MANAGEMENT=True, **overrides)


async def usage(db, namespace: str) -> int:
    return await db.fetchval("SELECT coalesce((SELECT u.size_bytes FROM namespace_usage u JOIN namespaces n ON n.id = u.namespace_id "
                             "WHERE n.name = $1), 0)", namespace)


async def repo_usage(db, repository: str) -> int:
    return await db.fetchval("SELECT coalesce((SELECT u.size_bytes FROM repository_usage u JOIN repositories r ON r.id = u.repository_id "
                             "WHERE r.full_name = $1), 0)", repository)


async def exact(db) -> None:
    """What the changes kept equals what a from-scratch recount gives."""
    report = await quota.check(db)
    assert report.ok, report.problems


def config_blob(label: str) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "label": label}).encode()


async def push_with(reg, name: str, tag: str | None, config: bytes, layers: list[bytes]) -> tuple[str, int]:
    """Push an image of exactly these blobs; (manifest digest, its blob bytes)."""
    await push_blob(reg, name, config)
    for layer in layers:
        await push_blob(reg, name, layer)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                           "layers": [descriptor(LAYER_GZIP, layer) for layer in layers]}).encode()
    digest = sha256(manifest)
    async with reg.http.put(reg.v2(f"{name}/manifests/{tag or digest}"), data=manifest,
                            headers={"Content-Type": OCI_MANIFEST}) as r:
        assert r.status == 201, await r.text()
    return digest, len(config) + sum(len(layer) for layer in layers)


async def set_quota(reg, namespace: str, limit_bytes: int, *, reject: int | None = 100, warning: int | None = None) -> int:
    async with reg.http.post(f"{reg.url}/api/v1/organization/{namespace}/quota", json={"limit_bytes": limit_bytes}) as r:
        assert r.status == 201, await r.text()
        assert await r.json() == "Created"
    async with reg.http.get(f"{reg.url}/api/v1/organization/{namespace}/quota") as r:
        quota_id = (await r.json())[0]["id"]
    for kind, percent in (("Reject", reject), ("Warning", warning)):
        if percent is not None:
            async with reg.http.post(f"{reg.url}/api/v1/organization/{namespace}/quota/{quota_id}/limit",
                                     json={"type": kind, "threshold_percent": percent}) as r:
                assert r.status == 201, await r.text()
    return quota_id


async def test_shared_layers_count_once_in_the_namespace_and_per_repository(make_registry, db):
    reg = await quota_registry(make_registry)
    shared_layer, only_a, only_b = os.urandom(40 * KIB), os.urandom(10 * KIB), os.urandom(20 * KIB)
    config_a, config_b = config_blob("a"), config_blob("b")
    await push_with(reg, "acme/one", "v1", config_a, [shared_layer, only_a])
    await push_with(reg, "acme/two", "v1", config_b, [shared_layer, only_b])
    # The same image again under another tag and in a third repository: nothing new in the namespace.
    await push_with(reg, "acme/one", "v2", config_a, [shared_layer, only_a])
    await push_with(reg, "acme/three", "v1", config_a, [shared_layer, only_a])
    distinct = len(shared_layer) + len(only_a) + len(only_b) + len(config_a) + len(config_b)
    assert await usage(db, "acme") == distinct
    assert await repo_usage(db, "acme/one") == len(config_a) + len(shared_layer) + len(only_a)
    assert await repo_usage(db, "acme/two") == len(config_b) + len(shared_layer) + len(only_b)
    assert await repo_usage(db, "acme/three") == await repo_usage(db, "acme/one")
    # Another organisation pushing the same layer counts it in its own usage.
    await push_with(reg, "globex/app", "v1", config_b, [shared_layer])
    assert await usage(db, "globex") == len(config_b) + len(shared_layer)
    assert await usage(db, "acme") == distinct
    # The organisation's view reports it (Quay's quota_report).
    async with reg.http.get(f"{reg.url}/api/v1/organization/acme") as r:
        report = (await r.json())["quota_report"]
    assert report["quota_bytes"] == distinct and report["configured_quota"] is None
    await exact(db)


async def test_deleting_a_tag_lowers_usage_at_once_and_moves_and_restores_follow(make_registry, db):
    reg = await quota_registry(make_registry)
    old_layer, new_layer = os.urandom(30 * KIB), os.urandom(50 * KIB)
    first, first_size = await push_with(reg, "acme/app", "latest", config_blob("1"), [old_layer])
    assert await usage(db, "acme") == first_size
    # Moving the tag to a new image: the old one no longer counts (it is only in the time machine).
    _, second_size = await push_with(reg, "acme/app", "latest", config_blob("2"), [new_layer])
    assert await usage(db, "acme") == second_size
    await exact(db)
    # Restoring the old image from the time machine counts it again.
    async with reg.http.post(f"{reg.url}/api/v1/repository/acme/app/tag/latest/restore", json={"manifest_digest": first}) as r:
        assert r.status == 200, await r.text()
    assert await usage(db, "acme") == first_size
    # Deleting the tag: usage drops in the same request, no gc needed.
    async with reg.http.delete(f"{reg.url}/api/v1/repository/acme/app/tag/latest") as r:
        assert r.status == 204
    assert await usage(db, "acme") == 0 and await repo_usage(db, "acme/app") == 0
    await exact(db)
    # Through /v2 as well, and deleting a manifest by digest.
    digest, size = await push_with(reg, "acme/app", "v3", config_blob("3"), [old_layer])
    assert await usage(db, "acme") == size
    async with reg.http.delete(reg.v2(f"acme/app/manifests/{digest}")) as r:
        assert r.status == 202
    assert await usage(db, "acme") == 0
    # A deleted repository leaves its namespace's usage at once.
    _, size = await push_with(reg, "acme/gone", "v1", config_blob("4"), [new_layer])
    _, kept = await push_with(reg, "acme/kept", "v1", config_blob("5"), [os.urandom(KIB)])
    assert await usage(db, "acme") == size + kept
    async with reg.http.delete(f"{reg.url}/api/v1/repository/acme/gone") as r:
        assert r.status == 204
    assert await usage(db, "acme") == kept
    await exact(db)


async def test_an_index_counts_its_children_and_leaves_with_them(make_registry, db):
    reg = await quota_registry(make_registry)
    children = []
    total = 0
    for arch in ("amd64", "arm64"):
        layer = os.urandom(8 * KIB)
        config = json.dumps({"architecture": arch, "os": "linux"}).encode()
        digest, size = await push_with(reg, "acme/multi", None, config, [layer])  # by digest, as clients do
        manifest = await (await reg.http.get(reg.v2(f"acme/multi/manifests/{digest}"),
                                             headers={"Accept": OCI_MANIFEST})).read()
        children.append({**descriptor(OCI_MANIFEST, manifest), "platform": {"architecture": arch, "os": "linux"}})
        total += size
    # Children pushed by digest count while they wait for their index.
    assert await usage(db, "acme") == total
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
    async with reg.http.put(reg.v2("acme/multi/manifests/v1"), data=index, headers={"Content-Type": OCI_INDEX}) as r:
        assert r.status == 201
    assert await usage(db, "acme") == total
    await exact(db)
    async with reg.http.delete(reg.v2("acme/multi/manifests/v1")) as r:
        assert r.status == 202
    assert await usage(db, "acme") == 0  # the index and, through it, its children
    await exact(db)


async def test_gc_and_expiry_take_usage_with_them(make_registry, make_collector, db):
    reg = await quota_registry(make_registry)
    # Pushed by digest and never tagged: counts until gc collects it.
    _, size = await push_with(reg, "acme/app", None, config_blob("untagged"), [os.urandom(4 * KIB)])
    assert await usage(db, "acme") == size
    collector = await make_collector(reg.doc, PUSH_TEMP_TAG_EXPIRATION_SEC=0)
    report = await collector.run_once()
    assert len(report.manifests) == 1
    assert await usage(db, "acme") == 0
    await exact(db)
    # An expiring tag: once its expiry passed, gc's next pass ends it and its usage.
    _, size = await push_with(reg, "acme/app", "short", config_blob("short"), [os.urandom(4 * KIB)])
    await db.execute("UPDATE tags SET expires_at = now() - interval '1 second' WHERE name = 'short' AND lifetime_end IS NULL")
    assert await usage(db, "acme") == size
    report = await collector.run_once()
    assert report.tags_expired == 1
    assert await usage(db, "acme") == 0
    await exact(db)


async def test_pushes_over_the_reject_limit_fail_with_quays_error_and_leave_nothing(make_registry, make_collector, db, tmp_path):
    reg = await quota_registry(make_registry)
    _, used = await push_with(reg, "acme/app", "base", config_blob("base"), [os.urandom(20 * KIB)])
    await set_quota(reg, "acme", used + 30 * KIB)

    # 1. A layer larger than the room left: refused on its chunk; the upload session is gone.
    async with reg.http.post(reg.v2("acme/app/blobs/uploads/")) as r:
        assert r.status == 202
        location = r.headers["Location"]
    big = os.urandom(40 * KIB)
    async with reg.http.patch(f"{reg.url}{location}", data=big, headers={"Content-Type": "application/octet-stream"}) as r:
        assert r.status == 403
        assert await r.json() == DENIED
    async with reg.http.get(f"{reg.url}{location}") as r:
        assert r.status == 404  # cancelled with its chunks
    assert await db.fetchval("SELECT count(*) FROM upload_sessions") == 0
    assert not list((Path(reg.doc["DISTRIBUTED_STORAGE_CONFIG"]["local"][1]["storage_path"])).glob("uploads/*/*"))
    # A monolithic upload that says its size is refused before a byte is stored.
    async with reg.http.post(reg.v2("acme/app/blobs/uploads/"), params={"digest": sha256(big)}, data=big) as r:
        assert r.status == 403 and await r.json() == DENIED
    assert await db.fetchval("SELECT count(*) FROM blobs WHERE digest = $1", sha256(big)) == 0

    # 2. Blobs that fit one by one, an image that does not: the manifest is refused, nothing is kept.
    layers = [os.urandom(20 * KIB), os.urandom(20 * KIB)]
    config = config_blob("too-much")
    for blob in [config, *layers]:
        await push_blob(reg, "acme/app", blob)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                           "layers": [descriptor(LAYER_GZIP, layer) for layer in layers]}).encode()
    async with reg.http.put(reg.v2("acme/app/manifests/big"), data=manifest, headers={"Content-Type": OCI_MANIFEST}) as r:
        assert r.status == 403
        assert await r.json() == DENIED
    assert await db.fetchval("SELECT count(*) FROM manifests WHERE digest = $1", sha256(manifest)) == 0
    assert await db.fetchval("SELECT count(*) FROM tags WHERE name = 'big'") == 0
    assert await usage(db, "acme") == used
    await exact(db)
    # The refused image's blobs are unreferenced: gc takes them (the push window aside), bytes and rows.
    collector = await make_collector(reg.doc, PUSH_TEMP_TAG_EXPIRATION_SEC=0)
    await collector.run_once()
    root = Path(reg.doc["DISTRIBUTED_STORAGE_CONFIG"]["local"][1]["storage_path"])
    for blob in [config, *layers]:
        assert await db.fetchval("SELECT count(*) FROM blobs WHERE digest = $1", sha256(blob)) == 0
        assert not (root / blob_path(sha256(blob))).exists()
    assert await usage(db, "acme") == used

    # 3. What fits is accepted; then the namespace is full and an upload does not even start.
    _, fits = await push_with(reg, "acme/app", "fits", config_blob("fits"), [os.urandom(30 * KIB - len(config_blob("fits")))])
    assert await usage(db, "acme") == used + 30 * KIB
    async with reg.http.post(reg.v2("acme/new/blobs/uploads/")) as r:
        assert r.status == 403 and await r.json() == DENIED
    assert await db.fetchval("SELECT count(*) FROM repositories WHERE full_name = 'acme/new'") == 0
    # Retagging costs nothing and is allowed at the limit; deleting makes room again.
    async with reg.http.put(f"{reg.url}/api/v1/repository/acme/app/tag/again",
                            json={"manifest_digest": (await db.fetchval(
                                "SELECT m.digest FROM tags t JOIN manifests m ON m.id = t.manifest_id WHERE t.name = 'fits'"))}) as r:
        assert r.status == 201, await r.text()
    async with reg.http.delete(f"{reg.url}/api/v1/repository/acme/app/tag/base") as r:
        assert r.status == 204
    await push_with(reg, "acme/app", "room", config_blob("room"), [os.urandom(10 * KIB)])
    await exact(db)


async def test_two_concurrent_pushes_near_the_limit_cannot_both_pass(make_registry, db):
    reg = await quota_registry(make_registry)
    await push_with(reg, "acme/app", "base", config_blob("base"), [os.urandom(50 * KIB)])
    await set_quota(reg, "acme", 100 * KIB)
    used = await usage(db, "acme")
    room = 100 * KIB - used
    # Six images, each alone fitting in the room, any two together too big (different repositories
    # too: the namespace's limit is shared).
    bodies = []
    for index in range(6):
        name = f"acme/racer{index % 3}"
        config = config_blob(f"racer{index}")
        layer = os.urandom(room - len(config) - 10)
        await push_blob(reg, name, config)
        await push_blob(reg, name, layer)
        bodies.append((f"{name}/manifests/v{index}", json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                         "config": descriptor(OCI_CONFIG, config),
                                         "layers": [descriptor(LAYER_GZIP, layer)]}).encode()))

    async def put(path: str, body: bytes) -> int:
        async with reg.http.put(reg.v2(path), data=body, headers={"Content-Type": OCI_MANIFEST}) as r:
            if r.status == 403:
                assert await r.json() == DENIED
            return r.status

    statuses = await asyncio.gather(*(put(path, body) for path, body in bodies))
    assert sorted(statuses) == [201] + [403] * 5, statuses
    assert used < await usage(db, "acme") <= 100 * KIB
    await exact(db)


async def test_warning_and_rejection_events_fire_once_per_crossing(make_registry, servers, db):
    reg = await quota_registry(make_registry)
    await push_with(reg, "acme/app", "seed", config_blob("seed"), [os.urandom(KIB)])
    seen: list[QuotaCrossed] = []
    nc = await nats.connect(servers.nats_url)
    try:
        async def collect(message):
            seen.append(msgspec.json.decode(message.data, type=QuotaCrossed))

        await nc.subscribe(f"{reg.config.meridian_bus_prefix}.events.quota.>", cb=collect)
        await set_quota(reg, "acme", 100 * KIB, warning=50)
        _, first = await push_with(reg, "acme/app", "a", config_blob("a"), [os.urandom(60 * KIB)])  # crosses 50 %
        await eventually(lambda: asyncio.sleep(0, [e for e in seen if e.kind == "warning"]), what="the warning")
        await push_with(reg, "acme/app", "b", config_blob("b"), [os.urandom(5 * KIB)])  # still above: no new warning
        halves = [os.urandom(20 * KIB), os.urandom(20 * KIB)]  # each fits; the image does not
        for blob in [config_blob("x"), *halves]:
            await push_blob(reg, "acme/app", blob)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config_blob("x")),
                               "layers": [descriptor(LAYER_GZIP, half) for half in halves]}).encode()
        for _ in range(2):  # refused twice: announced once
            async with reg.http.put(reg.v2("acme/app/manifests/x"), data=manifest, headers={"Content-Type": OCI_MANIFEST}) as r:
                assert r.status == 403
        await eventually(lambda: asyncio.sleep(0, [e for e in seen if e.kind == "error"]), what="the rejection")
        # Falling below the threshold and crossing it again warns again.
        async with reg.http.delete(f"{reg.url}/api/v1/repository/acme/app/tag/a") as r:
            assert r.status == 204
        await push_with(reg, "acme/app", "c", config_blob("c"), [os.urandom(60 * KIB)])
        await eventually(lambda: asyncio.sleep(0, len([e for e in seen if e.kind == "warning"]) == 2), what="the second warning")
        await asyncio.sleep(0.5)  # let anything else that was (wrongly) published arrive
    finally:
        await nc.close()
    warnings = [e for e in seen if e.kind == "warning"]
    errors = [e for e in seen if e.kind == "error"]
    assert len(warnings) == 2 and len(errors) == 1, seen
    assert warnings[0].namespace == "acme" and warnings[0].threshold_percent == 50 and warnings[0].limit_bytes == 100 * KIB
    assert warnings[0].repository == "acme/app" and warnings[0].usage_bytes >= 50 * KIB
    assert errors[0].threshold_percent == 100 and errors[0].adding_bytes > 0


async def test_quota_api_in_quays_shape(make_registry):
    reg = await quota_registry(make_registry)
    await push_with(reg, "acme/app", "v1", config_blob("v1"), [os.urandom(KIB)])
    api = f"{reg.url}/api/v1/organization/acme/quota"
    async with reg.http.post(api, json={"limit": "10 GiB"}) as r:
        assert r.status == 201
    async with reg.http.post(api, json={"limit_bytes": 5}) as r:
        assert r.status == 400 and (await r.json())["error_message"] == "Organization quota for 'acme' already exists"
    async with reg.http.get(api) as r:
        [found] = await r.json()
    assert found["limit_bytes"] == 10 * 1024 ** 3 and found["limit"] == "10.0 GiB" and found["limits"] == []
    limits = f"{api}/{found['id']}/limit"
    async with reg.http.post(limits, json={"type": "Reject", "threshold_percent": 100}) as r:
        assert r.status == 201
    async with reg.http.post(limits, json={"type": "Reject", "threshold_percent": 100}) as r:
        assert r.status == 400 and (await r.json())["error_message"] == "Quota limit already exists"
    async with reg.http.post(limits, json={"type": "Reject", "threshold_percent": 90}) as r:
        assert r.status == 400 and (await r.json())["error_message"] == "Only one quota limit of type 'Reject' allowed."
    for bad in ({"type": "Warning", "threshold_percent": 0}, {"type": "Warning", "threshold_percent": 101},
                {"type": "Soft", "threshold_percent": 50}, {"type": "Warning", "threshold_percent": "50"}):
        async with reg.http.post(limits, json=bad) as r:
            assert r.status == 400, bad
    async with reg.http.put(f"{api}/{found['id']}", json={"limit": "1 GB"}) as r:
        assert r.status == 200 and (await r.json())["limit_bytes"] == 10 ** 9
    bad_limits: list[dict] = [{"limit": "lots"}, {"limit": "10 XB"}, {"limit_bytes": -1}, {"limit_bytes": "1"}, {"limit_bytes": True}]
    for bad in bad_limits:
        async with reg.http.put(f"{api}/{found['id']}", json=bad) as r:
            assert r.status == 400, bad
            if "limit" in bad:
                assert (await r.json())["error_message"] == "Invalid limit format, use a number followed by a unit (e.g. 1GiB)"
    async with reg.http.get(f"{reg.url}/api/v1/organization/acme") as r:
        report = (await r.json())["quota_report"]
    assert report["configured_quota"] == 10 ** 9 and report["reject_bytes"] == 10 ** 9 and report["quota_bytes"] > 0
    for path in (f"{api}/999999", f"{api}/nope", f"{limits}/999999", f"{api}/{found['id']}/limit/x"):
        async with reg.http.get(path) as r:
            assert r.status == 404, path
    async with reg.http.delete(f"{api}/{found['id']}") as r:
        assert r.status == 204
    async with reg.http.get(api) as r:
        assert await r.json() == []
    # Off: the API answers as if it did not exist (Quay's show_if).
    off = await make_registry()
    async with off.http.get(f"{off.url}/api/v1/organization/acme/quota") as r:
        assert r.status == 404


async def test_system_default_applies_without_a_quota_and_only_superusers_lift_it(make_world):
    world = await make_world(FEATURE_QUOTA_MANAGEMENT=True, DEFAULT_SYSTEM_REJECT_QUOTA_BYTES=16 * KIB)
    root = await world.as_actor("root", "repository:acme/private:pull,push")
    big = os.urandom(20 * KIB)
    async with root.http.post(root.v2("acme/private/blobs/uploads/"), params={"digest": sha256(big)}, data=big) as r:
        assert r.status == 403 and await r.json() == DENIED
    async with world.reg.http.post(world.api("organization/acme/quota"), json={"limit_bytes": 10 ** 9},
                                   headers=world.api_headers("alice")) as r:
        assert r.status == 403, await r.text()  # an admin cannot lift the operator's default
    async with world.reg.http.post(world.api("organization/acme/quota"), json={"limit_bytes": 10 ** 9},
                                   headers=world.api_headers("root")) as r:
        assert r.status == 201
    await push_blob(root, "acme/private", big)  # the organisation's quota (no Reject limit) replaces the default
    # A user namespace's quota is set by superusers and read by its user.
    async with world.reg.http.post(world.api("superuser/users/rita/quota"), json={"limit": "1 MiB"},
                                   headers=world.api_headers("root")) as r:
        assert r.status == 201, await r.text()
    async with world.reg.http.get(world.api("user/quota"), headers=world.api_headers("rita")) as r:
        assert (await r.json())[0]["limit_bytes"] == 1024 ** 2
    async with world.reg.http.get(world.api("user/quota/report"), headers=world.api_headers("rita")) as r:
        assert (await r.json())["configured_quota"] == 1024 ** 2


async def test_quota_check_command_finds_drift(make_registry, db, tmp_path):
    reg = await quota_registry(make_registry)
    await push_with(reg, "acme/app", "v1", config_blob("v1"), [os.urandom(KIB)])
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(reg.doc))
    command = [sys.executable, "-m", "services.cli", "quota", "check", "--config", str(config)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage is exact" in done.stdout
    await db.execute("UPDATE namespace_usage SET size_bytes = size_bytes + 7")
    await db.execute("UPDATE manifests SET quota_refs = quota_refs + 1")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "namespace acme: usage" in done.stderr and "references kept" in done.stderr


async def test_usage_metrics_per_namespace_and_the_registry_size(make_registry, db):
    from prometheus_client import REGISTRY

    from services.gc.app import GcService

    reg = await quota_registry(make_registry, DEFAULT_SYSTEM_REJECT_QUOTA_BYTES=10 ** 9)
    _, acme = await push_with(reg, "acme/app", "v1", config_blob("m1"), [os.urandom(3 * KIB)])
    _, globex = await push_with(reg, "globex/app", "v1", config_blob("m2"), [os.urandom(5 * KIB)])
    await set_quota(reg, "acme", 64 * KIB, reject=90)
    service = GcService(parse_config({**reg.doc, "MERIDIAN_METRICS_PER_NAMESPACE": True}))
    try:
        await service.open()
        await service.observe_usage()
    finally:
        await service.stop()

    def sample(name: str, namespace: str | None = None) -> float | None:
        return REGISTRY.get_sample_value(name, {"namespace": namespace} if namespace else {})

    assert sample("meridian_quota_usage_bytes", "acme") == acme
    assert sample("meridian_quota_usage_bytes", "globex") == globex
    assert sample("meridian_quota_limit_bytes", "acme") == 64 * KIB
    assert sample("meridian_quota_reject_bytes", "acme") == 64 * KIB * 90 // 100
    assert sample("meridian_quota_limit_bytes", "globex") == 10 ** 9  # the system default applies there
    assert sample("meridian_registry_size_bytes") == await db.fetchval("SELECT sum(size) FROM blobs")


async def test_namespace_names_and_usage_stay_out_of_metrics_by_default(make_registry, db):
    """/metrics may be public (`meridian up` serves it on the registry's port): by default it names no
    namespace, and the registry's total size is all it tells."""
    from prometheus_client import REGISTRY

    from services.gc.app import GcService

    reg = await quota_registry(make_registry)
    await push_with(reg, "initech/app", "v1", config_blob("m3"), [os.urandom(2 * KIB)])
    service = GcService(parse_config(reg.doc))
    try:
        await service.open()
        await service.observe_usage()
    finally:
        await service.stop()
    for name in ("meridian_quota_usage_bytes", "meridian_quota_limit_bytes", "meridian_quota_reject_bytes"):
        assert REGISTRY.get_sample_value(name, {"namespace": "initech"}) is None
    assert REGISTRY.get_sample_value("meridian_registry_size_bytes") == await db.fetchval("SELECT sum(size) FROM blobs")
    async with reg.http.get(f"{reg.url}/metrics") as r:
        assert 'namespace="initech"' not in await r.text()


async def test_the_migrations_backfill_gives_what_the_changes_keep(make_registry, db):
    """A registry that existed before quotas: the migration's backfill must arrive at exactly the
    state the changes keep (here: wiped and recomputed by the migration's own statements)."""
    reg = await quota_registry(make_registry)
    shared = os.urandom(6 * KIB)
    await push_with(reg, "acme/one", "v1", config_blob("b1"), [shared, os.urandom(KIB)])
    await push_with(reg, "acme/two", "v1", config_blob("b2"), [shared])
    await push_with(reg, "acme/two", None, config_blob("b3"), [os.urandom(2 * KIB)])  # by digest
    gone, _ = await push_with(reg, "acme/one", "old", config_blob("b4"), [os.urandom(KIB)])
    async with reg.http.delete(f"{reg.url}/api/v1/repository/acme/one/tag/old") as r:
        assert r.status == 204
    kept = {row["name"]: row["size_bytes"] for row in await db.fetch(
        "SELECT n.name, u.size_bytes FROM namespace_usage u JOIN namespaces n ON n.id = u.namespace_id")}
    sql = (Path(__file__).parents[2] / "shared" / "migrations" / "0008_notifications_quotas.sql").read_text()
    backfill = sql[sql.index("-- Backfill"):sql.index("-- Notifications:")]
    async with db.transaction():
        await db.execute("UPDATE manifests SET quota_refs = 0, quota_pinned = false, quota_counted = false")
        await db.execute("DELETE FROM quota_namespace_blobs; DELETE FROM quota_repository_blobs; "
                         "DELETE FROM namespace_usage; DELETE FROM repository_usage")
        await db.execute(backfill)
    assert {row["name"]: row["size_bytes"] for row in await db.fetch(
        "SELECT n.name, u.size_bytes FROM namespace_usage u JOIN namespaces n ON n.id = u.namespace_id")} == kept
    await exact(db)
    # The untagged old image (tag history only) does not count; the one pushed by digest does.
    assert not await db.fetchval("SELECT quota_counted FROM manifests WHERE digest = $1", gone)
