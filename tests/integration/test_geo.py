"""Two regions on real PostgreSQL, NATS and SeaweedFS: push in one, pull in the other, replication."""
from __future__ import annotations

import os

import pytest

from shared.storage.paths import blob as blob_path
from tests.conftest import local_spec, s3_location
from tests.helpers import eventually, sha256


async def push(region, name: str, data: bytes) -> str:
    digest = sha256(data)
    async with region.http.post(region.v2(f"{name}/blobs/uploads/"), params={"digest": digest}, data=data) as r:
        assert r.status == 201, await r.text()
    return digest


async def pull(region, name: str, digest: str, **headers) -> tuple[int, bytes, str | None]:
    """(status, bytes, the location that served them): the gateway's header, on its own answer or on the
    redirect it gave to a signed URL of the store."""
    async with region.http.get(region.v2(f"{name}/blobs/{digest}"), headers=headers) as r:
        first = r.history[0] if r.history else r
        return r.status, await r.read(), first.headers.get("Meridian-Storage-Location")


async def placements(db, digest: str) -> list[str]:
    rows = await db.fetch(
        "SELECT l.name FROM blob_placements p JOIN blobs b ON b.id = p.blob_id JOIN storage_locations l ON l.id = p.location_id "
        "WHERE b.digest = $1 ORDER BY l.name", digest)
    return [r["name"] for r in rows]


async def until_placed(db, digest: str, locations: list[str]) -> None:
    """Until the blob is placed in exactly these locations (sorted): replication has run."""
    async def placed():
        return await placements(db, digest) == locations

    await eventually(placed, what=f"the blob to be placed in {', '.join(locations)}")


async def test_pull_in_other_region_before_and_after_replication(make_regions, make_bucket, db):
    regions = await make_regions({"us": s3_location(*make_bucket()), "eu": s3_location(*make_bucket())}, replicate={"eu": False})
    us, eu = regions["us"], regions["eu"]
    data = os.urandom(3 * 1024 * 1024 + 5)
    digest = await push(us, "acme/app", data)
    assert await placements(db, digest) == ["us"]
    status, body, served_by = await pull(eu, "acme/app", digest)
    assert (status, served_by) == (200, "us") and body == data
    status, body, _ = await pull(eu, "acme/app", digest, Range="bytes=10-19")
    assert status == 206 and body == data[10:20]

    from services.replicator.app import Replicator

    eu.replicator = Replicator(eu.config)
    await eu.replicator.start()

    async def replicated():
        return await placements(db, digest) == ["eu", "us"]

    await eventually(replicated, what="the blob to be placed in eu")
    status, body, served_by = await pull(eu, "acme/app", digest)
    assert (status, served_by) == (200, "eu") and body == data
    status, body, served_by = await pull(us, "acme/app", digest)
    assert (status, served_by) == (200, "us") and body == data


def _replicator(region, *, reads_folders_directly: bool):
    """A replicator for `region`, reading the other regions' folders directly (a location with no
    blobstore URL: its driver reads the files) or through their blobstores."""
    from services.replicator.app import Replicator
    from shared.config import parse_config

    if not reads_folders_directly:
        return Replicator(region.config)
    own = {region.name: region.doc["MERIDIAN_BLOBSTORE_URLS"][region.name]}
    return Replicator(parse_config(dict(region.doc, MERIDIAN_BLOBSTORE_URLS=own)))


async def test_a_folder_the_replicator_reaches_is_copied_directly(make_regions, tmp_path, db):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")},
                                 replicate={"eu": False})
    us, eu = regions["us"], regions["eu"]
    data = os.urandom(5 * 1024 * 1024 + 3)
    digest = await push(us, "acme/app", data)
    eu.replicator = _replicator(eu, reads_folders_directly=True)
    await eu.replicator.start()
    assert "us" in eu.replicator.locations.drivers  # the direct path, not the blobstore's

    async def replicated():
        return await placements(db, digest) == ["eu", "us"]

    await eventually(replicated, what="the blob to be placed in eu")
    assert (tmp_path / "eu" / blob_path(digest)).read_bytes() == data
    assert not [p for p in (tmp_path / "eu" / ".tmp").iterdir()]


@pytest.mark.parametrize("reads_folders_directly", [False, True], ids=["through-blobstore", "direct"])
async def test_corrupt_source_is_never_placed(make_regions, tmp_path, db, reads_folders_directly):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")},
                                 replicate={"eu": False}, MERIDIAN_REPLICATION_MAX_DELIVER=2)
    us, eu = regions["us"], regions["eu"]
    data = os.urandom(100_000)
    digest = await push(us, "acme/app", data)
    (tmp_path / "us" / blob_path(digest)).write_bytes(b"bit rot" + data[7:])

    from shared.metrics import REPLICATION_FAILURES

    before = REPLICATION_FAILURES.labels("eu", "corrupt")._value.get()
    eu.replicator = _replicator(eu, reads_folders_directly=reads_folders_directly)
    await eu.replicator.start()

    async def gave_up():
        return await db.fetchval("SELECT count(*) FROM replication_failures WHERE digest = $1 AND location = 'eu'", digest)

    await eventually(gave_up, timeout=30, what="the replicator to give up on the corrupt blob")
    assert REPLICATION_FAILURES.labels("eu", "corrupt")._value.get() >= before + 2
    assert REPLICATION_FAILURES.labels("eu", "gave_up")._value.get() >= 1
    assert await placements(db, digest) == ["us"]
    assert not (tmp_path / "eu" / blob_path(digest)).exists()
    assert not [p for p in (tmp_path / "eu" / ".tmp").iterdir()]


async def drained(region) -> bool:
    replicator = region.replicator
    info = await replicator.bus.js.consumer_info(replicator.bus.subjects.events_stream, replicator.consumer)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_default_locations_and_namespace_setting_decide_where_blobs_go(make_regions, tmp_path, db):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")},
                                 DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS=["us"])
    us, eu = regions["us"], regions["eu"]
    from tests.helpers import push_image

    us.url = us.gateway_url  # push_image speaks to a registry-like object
    other = await push(us, "other/app", os.urandom(1000))
    await eventually(lambda: drained(eu), what="eu's replicator to see the event")
    assert await placements(db, other) == ["us"]

    manifest_digest, _ = await push_image(us, "acme/app", "v1")
    async with us.http.get(f"{us.gateway_url}/api/v1/repository/acme/app/manifest/{manifest_digest}/replication") as r:
        status = await r.json()
    assert status["target_locations"] == ["us"] and status["complete"] is True
    assert {tuple(b["locations"]) for b in status["blobs"]} == {("us",)}

    async with us.http.put(f"{us.gateway_url}/api/v1/organization/acme/replication", json={"locations": ["eu"]}) as r:
        assert r.status == 200
        assert (await r.json())["effective_locations"] == ["eu", "us"]
    async with us.http.get(f"{eu.gateway_url}/api/v1/organization/acme/replication") as r:
        assert (await r.json())["locations"] == ["eu"]
    async with us.http.get(f"{us.gateway_url}/api/v1/repository/acme/app/manifest/{manifest_digest}/replication") as r:
        status = await r.json()
    assert status["complete"] is False and all(b["missing"] == ["eu"] for b in status["blobs"])

    acme = await push(us, "acme/app", os.urandom(1000))

    async def in_eu():
        return await placements(db, acme) == ["eu", "us"]

    await eventually(in_eu, what="the acme blob to reach eu")
    other2 = await push(us, "other/app", os.urandom(1000))
    await eventually(lambda: drained(eu), what="eu's replicator to see the event")
    assert await placements(db, other2) == ["us"]


async def test_namespace_replication_api_errors(make_regions, tmp_path):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")})
    us = regions["us"]
    api = f"{us.gateway_url}/api/v1"
    async with us.http.get(f"{api}/organization/nobody/replication") as r:
        assert r.status == 404 and (await r.json())["error_type"] == "not_found"
    await push(us, "acme/app", b"x")
    async with us.http.put(f"{api}/organization/acme/replication", json={"locations": ["mars"]}) as r:
        body = await r.json()
        assert r.status == 400 and "mars" in body["error_message"]
    async with us.http.put(f"{api}/organization/acme/replication", data=b"not json") as r:
        assert r.status == 400 and "JSON" in (await r.json())["error_message"]
    async with us.http.get(f"{api}/organization/acme/replication") as r:
        assert (await r.json())["locations"] == []  # nothing changed
    async with us.http.get(f"{api}/repository/acme/app/manifest/{sha256(b'none')}/replication") as r:
        assert r.status == 404
    async with us.http.get(f"{api}/no/such/endpoint") as r:
        assert r.status == 404 and "error_message" in await r.json()


async def test_replication_api_requires_authentication_when_closed(make_regions, tmp_path):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")},
                                 MERIDIAN_INSECURE_OPEN_ACCESS=False)
    us = regions["us"]
    async with us.http.put(f"{us.gateway_url}/api/v1/organization/acme/replication", json={"locations": ["eu"]}) as r:
        assert r.status == 401
        body = await r.json()
        assert body["status"] == 401 and "error_message" in body


async def test_replication_metrics_move(make_regions, tmp_path, db):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")})
    us, eu = regions["us"], regions["eu"]

    async def scrape() -> dict[str, float]:
        async with eu.http.get(f"{eu.gateway_url}/metrics") as r:
            text = await r.text()
        found = {}
        for line in text.splitlines():
            if line.startswith(("meridian_replication_copies_total{", "meridian_replication_bytes_total{",
                                "meridian_replication_lag_seconds_count{")) and 'location="eu"' in line:
                found[line.split("{")[0]] = float(line.rsplit(" ", 1)[1])
        return found

    before = await scrape()
    digest = await push(us, "acme/app", os.urandom(12_345))

    async def placed():
        return await placements(db, digest) == ["eu", "us"]

    await eventually(placed, what="replication")
    after = await scrape()
    assert after["meridian_replication_copies_total"] == before.get("meridian_replication_copies_total", 0) + 1
    assert after["meridian_replication_bytes_total"] == before.get("meridian_replication_bytes_total", 0) + 12_345
    assert after["meridian_replication_lag_seconds_count"] == before.get("meridian_replication_lag_seconds_count", 0) + 1
