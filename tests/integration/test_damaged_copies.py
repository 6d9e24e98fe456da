"""A stored copy that holds fewer bytes than its blob (a damaged disk, an object overwritten behind the
registry's back) is never served as the blob: a pull is served from a whole copy elsewhere, or answered
503 when there is none; a body cut short on the way closes the connection, so a client on a kept-alive
connection learns it at once instead of waiting for bytes that never come."""
from __future__ import annotations

import os

import aiohttp
import pytest

from services.gateway.state import GATEWAY
from shared.storage import paths
from tests.conftest import local_spec, s3_location
from tests.helpers import push_blob
from tests.integration.test_geo import pull, push, until_placed


async def test_a_damaged_copy_is_passed_over_for_a_whole_one_and_none_whole_is_a_503(make_regions, tmp_path, db):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")})
    us, eu = regions["us"], regions["eu"]
    data = os.urandom(300_000)
    digest = await push(us, "acme/app", data)
    await until_placed(db, digest, ["eu", "us"])
    (tmp_path / "eu" / paths.blob(digest)).write_bytes(data[:1000])
    status, body, served_by = await pull(eu, "acme/app", digest)
    assert (status, served_by) == (200, "us") and body == data  # eu's own copy passed over
    status, body, served_by = await pull(eu, "acme/app", digest, Range="bytes=200000-200009")
    assert (status, served_by) == (206, "us") and body == data[200000:200010]

    (tmp_path / "us" / paths.blob(digest)).write_bytes(data[:1000])
    for region in (us, eu):  # us serves its own folder; eu reaches us's copy through us's blobstore
        async with region.http.get(region.v2(f"acme/app/blobs/{digest}"),
                                   timeout=aiohttp.ClientTimeout(total=10)) as r:
            assert r.status == 503 and "Retry-After" in r.headers
            assert (await r.json())["errors"][0]["code"] == "UNAVAILABLE"


@pytest.mark.parametrize("proxy_storage", [True, False], ids=["streamed", "redirect-checked"])
async def test_an_object_shorter_than_its_blob_is_never_served_whole(make_registry, bucket, proxy_storage):
    reg = await make_registry(bucket, FEATURE_PROXY_STORAGE=proxy_storage)
    data = os.urandom(300_000)
    digest = await push_blob(reg, "acme/app", data)
    await reg.runner.app[GATEWAY].locations.own_driver.put_bytes(paths.blob(digest), data[:1000])
    quick = aiohttp.ClientTimeout(total=10)
    async with reg.http.get(reg.v2(f"acme/app/blobs/{digest}"), allow_redirects=False, timeout=quick) as r:
        if proxy_storage:
            # Nothing asked the store the object's size before streaming it (a round trip on every
            # pull): the body is cut short and the connection closed.
            assert r.status == 200 and r.headers["Content-Length"] == str(len(data))
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()
        else:
            # Before a redirect the store is asked anyway: the short object is neither signed nor streamed.
            assert r.status == 503 and "Location" not in r.headers
    async with reg.http.head(reg.v2(f"acme/app/blobs/{digest}"), timeout=quick) as r:  # the client still works
        assert r.status == 200


def _gateway(region):
    """The running gateway state of a region started by make_regions."""
    return next(runner.app[GATEWAY] for runner in region.runners if GATEWAY in runner.app)


async def test_another_regions_short_copy_is_neither_signed_nor_streamed(make_regions, make_bucket, db):
    """Another region's blobstore signs a redirect only for the blob's whole size; its short copy then
    fails the Content-Length check too, and with no whole copy anywhere the pull is a 503."""
    regions = await make_regions({"us": s3_location(*make_bucket()), "eu": s3_location(*make_bucket())},
                                 replicate={"eu": False})
    us, eu = regions["us"], regions["eu"]
    data = os.urandom(200_000)
    digest = await push(us, "acme/app", data)
    async with eu.http.get(eu.v2(f"acme/app/blobs/{digest}"), allow_redirects=False) as r:
        assert r.status == 307 and r.headers["Meridian-Storage-Location"] == "us"  # whole: signed by us
    await _gateway(us).locations.own_driver.put_bytes(paths.blob(digest), data[:1000])
    async with eu.http.get(eu.v2(f"acme/app/blobs/{digest}"), allow_redirects=False,
                           timeout=aiohttp.ClientTimeout(total=10)) as r:
        assert r.status == 503 and "Location" not in r.headers


async def test_a_range_past_the_end_of_another_regions_short_copy_is_damage_not_an_outage(make_regions, tmp_path, db):
    """The gateway checked the range against the blob's size, so a 416 from the blobstore means its copy
    is short: that location is passed over for this blob, not marked as down for every blob."""
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")},
                                 replicate={"eu": False})
    us, eu = regions["us"], regions["eu"]
    data = os.urandom(300_000)
    digest = await push(us, "acme/app", data)
    (tmp_path / "us" / paths.blob(digest)).write_bytes(data[:1000])
    async with eu.http.get(eu.v2(f"acme/app/blobs/{digest}"), headers={"Range": "bytes=200000-200009"},
                           timeout=aiohttp.ClientTimeout(total=10)) as r:
        assert r.status == 503
    assert not _gateway(eu).locations.breaker.is_open("us")
    other = os.urandom(5000)  # us still serves eu its other blobs
    other_digest = await push(us, "acme/app", other)
    status, body, served_by = await pull(eu, "acme/app", other_digest)
    assert (status, served_by, body == other) == (200, "us", True)
