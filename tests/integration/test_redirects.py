"""Pulls that leave the gateway: blob GETs from S3 locations answer 307 to a presigned URL of the store
(as Distribution and Quay do), which real clients follow; an expired URL is refused by the store and a
new GET gets a fresh one; another region's copy is signed by that region's blobstore;
FEATURE_PROXY_STORAGE streams instead. And a moved tag is never served stale after its PUT returns,
from any gateway process."""
from __future__ import annotations

import json
import os

import aiohttp

from tests.conftest import s3_location
from tests.e2e.clients import ok
from tests.helpers import eventually, push_blob, push_image
from tests.images import single_image
from tests.integration.test_geo import placements, push


def checked_location(sts_bucket) -> dict:
    """A location on the SeaweedFS that checks credentials and signatures (the plain test one lets anyone in)."""
    from tests.storage_servers import STS_ADMIN_KEY, STS_ADMIN_SECRET

    url, name = sts_bucket
    location = s3_location(url, name)
    location[1].update(s3_access_key=STS_ADMIN_KEY, s3_secret_key=STS_ADMIN_SECRET)
    return {"s3": location}


async def test_blob_get_redirects_to_a_presigned_url_the_store_serves(make_registry, sts_bucket):
    reg = await make_registry(DISTRIBUTED_STORAGE_CONFIG=checked_location(sts_bucket))
    bucket = sts_bucket
    data = os.urandom(200_000)
    digest = await push_blob(reg, "acme/app", data)
    async with reg.http.get(reg.v2(f"acme/app/blobs/{digest}"), allow_redirects=False) as r:
        assert r.status == 307
        assert r.headers["Docker-Content-Digest"] == digest and r.headers["Meridian-Storage-Location"] == "s3"
        url = r.headers["Location"]
    url_host, bucket_name = bucket[0].removeprefix("http://"), bucket[1]
    assert url.startswith(f"http://{url_host}/{bucket_name}/") and "X-Amz-Signature=" in url
    async with aiohttp.ClientSession() as anonymous:  # the store itself checks the signature
        async with anonymous.get(url) as r:
            assert r.status == 200 and await r.read() == data
        async with anonymous.get(url, headers={"Range": "bytes=5-14"}) as r:
            assert r.status == 206 and await r.read() == data[5:15]
        async with anonymous.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0")) as r:
            assert r.status == 403  # tampered: refused by the store
        async with anonymous.get(url.split("?")[0]) as r:
            assert r.status == 403  # and unsigned: the bucket is not public
    async with reg.http.head(reg.v2(f"acme/app/blobs/{digest}")) as r:  # HEAD is answered by the registry
        assert r.status == 200 and int(r.headers["Content-Length"]) == len(data)


async def test_an_expired_url_is_refused_and_a_new_get_signs_a_fresh_one(make_registry, sts_bucket):
    reg = await make_registry(DISTRIBUTED_STORAGE_CONFIG=checked_location(sts_bucket), MERIDIAN_REDIRECT_EXPIRY_SEC=1)
    data = os.urandom(10_000)
    digest = await push_blob(reg, "acme/app", data)
    async with reg.http.get(reg.v2(f"acme/app/blobs/{digest}"), allow_redirects=False) as r:
        stale = r.headers["Location"]
    async with aiohttp.ClientSession() as anonymous:

        async def expired():
            async with anonymous.get(stale) as r:
                return r.status == 403

        await eventually(expired, timeout=15, interval=0.5, what="the presigned URL to expire")
        async with reg.http.get(reg.v2(f"acme/app/blobs/{digest}"), allow_redirects=False) as r:
            fresh = r.headers["Location"]
        assert fresh != stale
        async with anonymous.get(fresh) as r:
            assert r.status == 200 and await r.read() == data


async def test_another_regions_copy_is_signed_by_its_blobstore(make_regions, make_bucket, db):
    us_bucket, eu_bucket = make_bucket(), make_bucket()
    regions = await make_regions({"us": s3_location(*us_bucket), "eu": s3_location(*eu_bucket)}, replicate={"eu": False})
    us, eu = regions["us"], regions["eu"]
    data = os.urandom(50_000)
    digest = await push(us, "acme/app", data)
    assert await placements(db, digest) == ["us"]
    async with eu.http.get(eu.v2(f"acme/app/blobs/{digest}"), allow_redirects=False) as r:
        assert r.status == 307 and r.headers["Meridian-Storage-Location"] == "us"
        assert f"/{us_bucket[1]}/" in r.headers["Location"]  # us's store, signed in us (eu holds no us credentials)
    async with eu.http.get(eu.v2(f"acme/app/blobs/{digest}")) as r:
        assert r.status == 200 and await r.read() == data


async def test_proxy_storage_streams_through_the_gateway(make_registry, bucket):
    reg = await make_registry(bucket, FEATURE_PROXY_STORAGE=True)
    data = os.urandom(30_000)
    digest = await push_blob(reg, "acme/app", data)
    async with reg.http.get(reg.v2(f"acme/app/blobs/{digest}"), allow_redirects=False) as r:
        assert r.status == 200 and await r.read() == data and r.headers["Meridian-Storage-Location"] == "s3"


async def test_skopeo_follows_the_redirects(make_registry, bucket, tmp_path):
    reg = await make_registry(bucket)
    _, descriptor = single_image(tmp_path / "src")
    target = f"docker://{reg.host}/acme/single:v1"
    await ok("skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:latest", target)
    await ok("skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", target, f"oci:{tmp_path / 'back'}:latest")
    index = json.loads((tmp_path / "back" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == descriptor["digest"]
    for blob in (tmp_path / "src" / "blobs" / "sha256").iterdir():  # every layer and the config came back intact
        assert (tmp_path / "back" / "blobs" / "sha256" / blob.name).read_bytes() == blob.read_bytes()


async def test_a_moved_tag_is_never_served_stale_by_any_gateway(make_registry):
    first = await make_registry()
    second = await make_registry()  # another gateway process's worth of state on the same database and bus
    old, _ = await push_image(first, "acme/app", "v1")
    async with second.http.get(second.v2("acme/app/manifests/v1")) as r:  # both have served (and may cache) v1
        assert r.headers["Docker-Content-Digest"] == old
    for round_number in range(20):
        new, _ = await push_image(first, "acme/app", "v1")  # returns once the PUT has answered 201
        for reg in (second, first):
            async with reg.http.get(reg.v2("acme/app/manifests/v1")) as r:
                assert r.headers["Docker-Content-Digest"] == new, round_number
            async with reg.http.head(reg.v2("acme/app/manifests/v1")) as r:
                assert r.headers["Docker-Content-Digest"] == new, round_number
        async with first.http.delete(first.v2(f"acme/app/manifests/{old}")) as r:
            assert r.status == 202
        async with second.http.get(second.v2(f"acme/app/manifests/{old}")) as r:
            assert r.status == 404  # a deleted manifest is gone at once, everywhere
        old = new
