"""ONE driver suite: every storage driver Meridian serves passes the same tests against a real
server: LocalStorage on a folder; Quay's S3 family (S3Storage, RadosGWStorage, RHOCSStorage,
IBMCloudStorage, GoogleCloudStorage through its S3-interoperable API, CloudFrontedS3Storage,
CloudFlareStorage, AkamaiS3Storage) on SeaweedFS, each written with its own Quay parameter names;
STSS3Storage on a SeaweedFS that checks credentials and hands out STS AssumeRole sessions; AzureStorage
on Azurite."""
from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
import pytest_asyncio
from azure.core.exceptions import HttpResponseError
from botocore.exceptions import ClientError

from shared.config import parse_config
from shared.storage import StorageDriver, open_driver
from shared.storage.azure import AzureDriver
from shared.storage.base import NotFound, StorageError
from shared.storage.s3 import S3Driver
from tests.conftest import S3_KEY, S3_SECRET, s3_client, s3_location
from tests.storage_servers import AZURITE_ACCOUNT, AZURITE_KEY, STS_ADMIN_KEY, STS_ADMIN_SECRET, STS_ROLE_ARN

DRIVERS = ["LocalStorage", "S3Storage", "RadosGWStorage", "RHOCSStorage", "IBMCloudStorage", "GoogleCloudStorage",
           "CloudFrontedS3Storage", "CloudFlareStorage", "AkamaiS3Storage", "STSS3Storage", "AzureStorage"]


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def driver_spec_for(driver: str, request, tmp_path) -> list:
    """A location of `driver` as an operator would write it, pointed at the test's server."""
    if driver == "LocalStorage":
        return ["LocalStorage", {"storage_path": str(tmp_path / "store")}]
    if driver == "AzureStorage":
        url, container = request.getfixturevalue("azure_container")
        return ["AzureStorage", {"azure_account_name": AZURITE_ACCOUNT, "azure_account_key": AZURITE_KEY,
                                 "azure_container": container, "endpoint_url": url, "storage_path": "/azure"}]
    if driver == "STSS3Storage":
        url, bucket = request.getfixturevalue("sts_bucket")
        return ["STSS3Storage", {"sts_role_arn": STS_ROLE_ARN, "sts_user_access_key": STS_ADMIN_KEY,
                                 "sts_user_secret_key": STS_ADMIN_SECRET, "s3_bucket": bucket, "storage_path": "/sts",
                                 "s3_region": "us-east-1", "endpoint_url": url, "sts_endpoint_url": url}]
    url, bucket = request.getfixturevalue("bucket")
    host, port = _host_port(url)
    if driver == "S3Storage":
        return s3_location(url, bucket)
    if driver in ("RadosGWStorage", "RHOCSStorage", "IBMCloudStorage"):
        # Quay's documented shape: hostname, port as a string, is_secure as a string.
        return [driver, {"hostname": host, "port": str(port), "is_secure": "false", "bucket_name": bucket,
                         "access_key": S3_KEY, "secret_key": S3_SECRET, "storage_path": "/datastorage/registry"}]
    if driver == "GoogleCloudStorage":
        # GCS's XML API with HMAC keys; only the endpoint differs from what an operator writes.
        return [driver, {"access_key": S3_KEY, "secret_key": S3_SECRET, "bucket_name": bucket, "boto_timeout": "60",
                         "storage_path": "/quaygcp", "endpoint_url": url}]
    cdn = {
        "CloudFrontedS3Storage": {"cloudfront_distribution_domain": "d1234.cloudfront.example.com",
                                  "cloudfront_key_id": "K2JCJMDEHXQW5F", "cloudfront_privatekey_filename": "cf.pem"},
        "CloudFlareStorage": {"cloudflare_domain": "cdn.cloudflare.example.com",
                              "cloudflare_privatekey_filename": "cloudflare.pem"},
        "AkamaiS3Storage": {"akamai_domain": "cdn.akamai.example.com", "akamai_shared_secret": "akamai-shared-secret"},
    }[driver]
    return [driver, {**cdn, "host": f"http://{host}", "port": str(port), "s3_region": "us-east-1", "s3_bucket": bucket,
                     "s3_access_key": S3_KEY, "s3_secret_key": S3_SECRET, "storage_path": "/cdn"}]


@pytest.fixture(params=DRIVERS)
def driver_spec(request, tmp_path):
    return driver_spec_for(request.param, request, tmp_path)


@pytest_asyncio.fixture
async def driver(driver_spec):
    location = parse_config({"DISTRIBUTED_STORAGE_CONFIG": {"loc": driver_spec}}).storage_locations()["loc"]
    store = open_driver(location)
    yield store
    await store.close()


async def stream(data: bytes, piece: int = 100_000):
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


async def read_all(store: StorageDriver, path: str, offset: int = 0, length: int | None = None) -> bytes:
    out = bytearray()
    async for block in store.read(path, offset, length):
        out += block
    return bytes(out)


async def test_driver_satisfies_protocol(driver):
    assert isinstance(driver, StorageDriver)


async def test_put_get_stat(driver):
    await driver.put_bytes("a/b/c", b"hello")
    assert await driver.get_bytes("a/b/c") == b"hello"
    assert await driver.stat("a/b/c") == 5
    await driver.put_bytes("a/b/c", b"replaced")
    assert await driver.get_bytes("a/b/c") == b"replaced"


async def test_missing_objects(driver):
    assert await driver.stat("nope") is None
    with pytest.raises(NotFound):
        await driver.get_bytes("nope")
    with pytest.raises(NotFound):
        await read_all(driver, "nope")


async def test_large_stream_round_trip(driver):
    # Larger than one S3 multipart part, so the multipart path runs too.
    data = os.urandom(17 * 1024 * 1024 + 123)
    size = await driver.write("big/blob", stream(data, 1 << 20))
    assert size == len(data)
    assert await driver.stat("big/blob") == len(data)
    got = await read_all(driver, "big/blob")
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


async def test_empty_object(driver):
    assert await driver.write("empty", stream(b"")) == 0
    assert await driver.stat("empty") == 0
    assert await driver.get_bytes("empty") == b""


async def test_ranged_reads(driver):
    data = bytes(range(256)) * 40
    await driver.put_bytes("ranged", data)
    assert await read_all(driver, "ranged", 10, 20) == data[10:30]
    assert await read_all(driver, "ranged", 9000) == data[9000:]
    assert await read_all(driver, "ranged", 0, 1) == data[:1]


async def test_failed_write_leaves_nothing(driver):
    async def broken():
        yield b"x" * 1000
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await driver.write("half", broken())
    assert await driver.stat("half") is None
    await driver.put_bytes("kept", b"old")
    with pytest.raises(RuntimeError):
        await driver.write("kept", broken())
    assert await driver.get_bytes("kept") == b"old"


async def test_move(driver):
    await driver.put_bytes("src/x", b"payload")
    await driver.move("src/x", "dst/y")
    assert await driver.stat("src/x") is None
    assert await driver.get_bytes("dst/y") == b"payload"
    with pytest.raises(NotFound):
        await driver.move("src/x", "dst/z")


async def test_concat(driver):
    parts = [os.urandom(n) for n in (1000, 1, 250_000)]
    for i, part in enumerate(parts):
        await driver.put_bytes(f"parts/{i}", part)
    size = await driver.concat("joined", [f"parts/{i}" for i in range(3)])
    assert size == sum(map(len, parts))
    assert await driver.get_bytes("joined") == b"".join(parts)
    assert await driver.stat("parts/0") == 1000  # parts stay
    with pytest.raises(NotFound):
        await driver.concat("joined2", ["parts/0", "parts/missing"])
    assert await driver.stat("joined2") is None


async def test_delete_and_list(driver):
    for key in ("d/1", "d/2/x", "d/2/y", "e/1"):
        await driver.put_bytes(key, b"k")
    assert await driver.list("d/") == ["d/1", "d/2/x", "d/2/y"]
    await driver.delete("d/1")
    await driver.delete("d/1")  # missing is fine
    assert await driver.list("d/") == ["d/2/x", "d/2/y"]
    await driver.delete_prefix("d/")
    assert await driver.list("d/") == []
    assert await driver.list("e/") == ["e/1"]


async def test_list_older_lists_only_objects_past_the_age(driver):
    await driver.put_bytes("o/young", b"just written")
    await driver.put_bytes("o/sub/also-young", b"x")
    assert await driver.list_older("o/", 3600) == []
    await asyncio.sleep(1.1)  # S3 and Azure stamp whole seconds
    assert await driver.list_older("o/", 0) == ["o/sub/also-young", "o/young"]
    assert await driver.list_older("p/", 0) == []


async def test_rejects_escaping_paths(driver):
    with pytest.raises(StorageError):
        await driver.put_bytes("../outside", b"x")


async def test_local_file_is_the_bytes_or_none(driver):
    await driver.put_bytes("f/x", b"bytes")
    path = driver.local_file("f/x")
    if path is None:
        assert type(driver).__name__ in ("S3Driver", "AzureDriver")
    else:
        assert path.read_bytes() == b"bytes"


async def test_prepare_is_idempotent(driver):
    await driver.prepare()  # the bucket or container exists (the fixture made it); a folder may be new
    await driver.put_bytes("kept/x", b"still here")
    assert await driver.prepare() is False  # found: nothing made, nothing lost
    assert await driver.get_bytes("kept/x") == b"still here"


async def test_clean_partial_removes_interrupted_writes(driver):
    async def broken():
        yield b"x" * (9 * 1024 * 1024)  # past one S3 part: a multipart upload is under way
        raise RuntimeError("killed")

    task = asyncio.ensure_future(driver.write("interrupted", broken()))
    with pytest.raises(RuntimeError):
        await task
    await driver.put_bytes("kept", b"complete objects stay")
    # A write that died without cleaning up (process killed) leaves a temporary behind; simulate one.
    if driver.local_file("x") is not None:
        (driver.root / ".tmp" / "left-by-a-killed-process").write_bytes(b"partial")
    elif type(driver).__name__ == "AzureDriver":
        blob = driver._client().get_blob_client(driver._key("left-by-a-killed-process"))
        await blob.stage_block("YmxvY2stbGVmdC1iZWhpbmQ=", b"partial")
    else:
        s3 = await driver._s3()
        await s3.create_multipart_upload(Bucket=driver.bucket, Key=driver._key("left-by-a-killed-process"))
    assert await driver.clean_partial(older_than=3600) == 0  # too young to be abandoned
    assert await driver.clean_partial(older_than=0) >= 1
    assert await driver.clean_partial(older_than=0) == 0
    assert await driver.get_bytes("kept") == b"complete objects stay"
    assert await driver.stat("interrupted") is None


def _location(spec: list):
    return parse_config({"DISTRIBUTED_STORAGE_CONFIG": {"loc": spec}}).storage_locations()["loc"]


async def test_sts_driver_signs_with_assumed_role_credentials(request, tmp_path):
    store = open_driver(_location(driver_spec_for("STSS3Storage", request, tmp_path)))
    assert isinstance(store, S3Driver)
    try:
        await store.put_bytes("sts/x", b"through an assumed role")
        # No public API tells which credentials a client signs with: botocore's signer (absent from the stubs) does.
        signer = (await store._s3())._request_signer  # type: ignore[attr-defined]
        credentials = await signer._credentials.get_frozen_credentials()
        # The server checks signatures: the object was written with a session STS handed out, not with
        # the account's own keys.
        assert credentials.token
        assert credentials.access_key not in (STS_ADMIN_KEY, None)
        assert await store.get_bytes("sts/x") == b"through an assumed role"
    finally:
        await store.close()


async def test_sts_driver_with_wrong_user_secret_is_refused(request, tmp_path):
    spec = driver_spec_for("STSS3Storage", request, tmp_path)
    spec[1]["sts_user_secret_key"] = "not-the-secret"
    store = open_driver(_location(spec))
    try:
        with pytest.raises(Exception) as caught:
            await store.put_bytes("sts/y", b"x")
        assert "AssumeRole" in str(caught.value) or "AccessDenied" in str(caught.value)
        assert "not-the-secret" not in str(caught.value)
    finally:
        await store.close()


@pytest.mark.parametrize("driver_name, host", [("CloudFrontedS3Storage", "d1234.cloudfront.example.com"),
                                              ("CloudFlareStorage", "cdn.cloudflare.example.com"),
                                              ("AkamaiS3Storage", "cdn.akamai.example.com")])
async def test_cdn_drivers_record_their_cdn_host(driver_name, host, request, tmp_path):
    store = open_driver(_location(driver_spec_for(driver_name, request, tmp_path)))
    try:
        assert store.cdn_host == host
        await store.put_bytes("cdn/x", b"bytes stay in S3")  # the CDN fronts the bucket; writes go to S3
        assert await store.get_bytes("cdn/x") == b"bytes stay in S3"
    finally:
        await store.close()


async def test_prepare_creates_a_missing_bucket_and_container(request, tmp_path, servers):
    import uuid

    url, _ = request.getfixturevalue("bucket")
    fresh = f"meridian-{uuid.uuid4().hex[:12]}"
    s3_store = open_driver(_location(s3_location(url, fresh)))
    assert isinstance(s3_store, S3Driver)
    azure_url, _ = request.getfixturevalue("azure_container")
    container = f"meridian-{uuid.uuid4().hex[:12]}"
    azure_store = open_driver(_location(["AzureStorage", {
        "azure_account_name": AZURITE_ACCOUNT, "azure_account_key": AZURITE_KEY, "azure_container": container,
        "endpoint_url": azure_url, "storage_path": "/azure"}]))
    assert isinstance(azure_store, AzureDriver)
    try:
        for store in (s3_store, azure_store):
            with pytest.raises((ClientError, HttpResponseError)):  # S3's NoSuchBucket, Azure's ContainerNotFound
                await store.put_bytes("x", b"no bucket yet")
            assert await store.prepare() is True
            assert await store.prepare() is False
            await store.put_bytes("x", b"now there is")
            assert await store.get_bytes("x") == b"now there is"
            await store.delete("x")
    finally:
        s3 = await s3_store._s3()
        await s3.delete_bucket(Bucket=fresh)
        await azure_store._client().delete_container()
        await s3_store.close()
        await azure_store.close()


async def test_concat_of_multipart_sized_parts(driver):
    """Parts of 5 MiB and more (a chunked push's PATCHes) are joined by the store itself on S3 (UploadPartCopy);
    an empty part (a final PUT without a body) adds nothing; every driver gives the same bytes."""
    parts = [os.urandom(5 << 20), b"", os.urandom((5 << 20) + 17), os.urandom(3)]
    for i, part in enumerate(parts):
        await driver.put_bytes(f"big/{i}", part)
    size = await driver.concat("joined-big", [f"big/{i}" for i in range(len(parts))])
    assert size == sum(map(len, parts))
    assert await driver.stat("joined-big") == size
    assert await driver.get_bytes("joined-big") == b"".join(parts)
    assert await driver.stat("big/2") == len(parts[2])  # parts stay


async def test_s3_joins_multipart_sized_parts_in_the_store(request, tmp_path):
    """The S3 object is assembled from exactly the three non-empty parts (a multipart ETag ends in -3); streamed
    through the gateway it would have been cut into 8 MiB parts (-2)."""
    url, bucket = request.getfixturevalue("bucket")
    location = parse_config({"DISTRIBUTED_STORAGE_CONFIG": {"loc": s3_location(url, bucket)}}).storage_locations()["loc"]
    store = open_driver(location)
    assert isinstance(store, S3Driver)
    try:
        parts = [os.urandom(5 << 20), os.urandom(5 << 20), b"", os.urandom(1 << 20)]
        for i, part in enumerate(parts):
            await store.put_bytes(f"copy/{i}", part)
        assert await store.concat("copied", [f"copy/{i}" for i in range(len(parts))]) == 11 << 20
        async with s3_client(url) as s3:
            head = await s3.head_object(Bucket=bucket, Key=store._key("copied"))
        assert head["ETag"].strip('"').endswith("-3")
        assert await store.get_bytes("copied") == b"".join(parts)
    finally:
        await store.close()


async def test_s3_moves_an_object_larger_than_one_copy_in_ranges(request, tmp_path):
    """CopyObject stops at 5 GiB; past that a move copies byte ranges into one multipart upload. The limit is
    lowered to 5 MiB here so the path runs with 12 MiB instead of 5 GiB."""
    url, bucket = request.getfixturevalue("bucket")
    location = parse_config({"DISTRIBUTED_STORAGE_CONFIG": {"loc": s3_location(url, bucket)}}).storage_locations()["loc"]
    store = open_driver(location)
    assert isinstance(store, S3Driver)
    store.max_copied_part = 5 << 20
    try:
        data = os.urandom((12 << 20) + 5)
        await store.put_bytes("huge/src", data)
        await store.move("huge/src", "huge/dst")
        async with s3_client(url) as s3:
            head = await s3.head_object(Bucket=bucket, Key=store._key("huge/dst"))
        assert head["ETag"].strip('"').endswith("-3")  # 5 + 5 + 2 MiB ranges
        assert await store.get_bytes("huge/dst") == data
        assert await store.stat("huge/src") is None
        with pytest.raises(NotFound):
            await store.move("huge/src", "huge/again")
    finally:
        await store.close()


async def test_s3_move_of_a_known_size_asks_the_store_nothing_first(request, monkeypatch):
    """A monolithic push knows its blob's size: the move is one CopyObject (and the delete), no HEAD. A
    move past one copy still asks, so its ranges match the object exactly."""
    url, bucket = request.getfixturevalue("bucket")
    location = parse_config({"DISTRIBUTED_STORAGE_CONFIG": {"loc": s3_location(url, bucket)}}).storage_locations()["loc"]
    store = open_driver(location)
    assert isinstance(store, S3Driver)
    client = await store._s3()
    heads = []
    real_head = client.head_object

    async def counted_head(**kwargs):
        heads.append(kwargs["Key"])
        return await real_head(**kwargs)

    monkeypatch.setattr(client, "head_object", counted_head)
    try:
        data = os.urandom(3000)
        await store.put_bytes("known/src", data)
        await store.move("known/src", "known/dst", size=len(data))
        assert heads == []
        assert await store.get_bytes("known/dst") == data
        with pytest.raises(NotFound):  # the source is gone: the copy says so
            await store.move("known/src", "known/again", size=len(data))
        store.max_copied_part = 5 << 20
        big = os.urandom((6 << 20) + 1)
        await store.put_bytes("known/big", big)
        heads.clear()
        await store.move("known/big", "known/big-dst", size=len(big))
        assert heads == [store._key("known/big")]
        assert await store.get_bytes("known/big-dst") == big
    finally:
        await store.close()


async def test_s3_store_without_upload_part_copy_gets_the_bytes_streamed(request, tmp_path, monkeypatch):
    """Some S3-compatible stores answer UploadPartCopy with 501 Not Implemented: the join and the ranged move
    then stream the bytes through the gateway (as before UploadPartCopy was used), and the driver remembers it.
    The real SeaweedFS serves every other call; only its UploadPartCopy answer is replaced by a 501."""
    url, bucket = request.getfixturevalue("bucket")
    location = parse_config({"DISTRIBUTED_STORAGE_CONFIG": {"loc": s3_location(url, bucket)}}).storage_locations()["loc"]
    store = open_driver(location)
    assert isinstance(store, S3Driver)
    client = await store._s3()
    refused = []

    async def not_implemented(**kwargs):
        refused.append(kwargs["PartNumber"])
        raise ClientError({"Error": {"Code": "NotImplemented", "Message": "A header you provided implies functionality "
                                     "that is not implemented"}}, "UploadPartCopy")

    monkeypatch.setattr(client, "upload_part_copy", not_implemented)
    try:
        parts = [os.urandom(5 << 20), os.urandom((5 << 20) + 1)]
        for i, part in enumerate(parts):
            await store.put_bytes(f"nocopy/{i}", part)
        assert await store.concat("nocopy-joined", ["nocopy/0", "nocopy/1"]) == len(b"".join(parts))
        assert await store.get_bytes("nocopy-joined") == b"".join(parts)
        assert refused == [1] and store.copies_parts is False
        store.max_copied_part = 5 << 20
        big = os.urandom((6 << 20) + 3)
        await store.put_bytes("nocopy/big", big)
        await store.move("nocopy/big", "nocopy/moved")  # past the (lowered) copy limit: ranges, refused → streamed
        assert await store.get_bytes("nocopy/moved") == big and await store.stat("nocopy/big") is None
        assert refused == [1]  # remembered: not asked again
        async with s3_client(url) as s3:
            pending = await s3.list_multipart_uploads(Bucket=bucket)
        assert not [u for u in pending.get("Uploads", []) if "nocopy" in u["Key"]]  # the refused upload was aborted
    finally:
        await store.close()
