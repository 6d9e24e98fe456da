"""ONE driver suite: every storage driver (local folder, S3 on SeaweedFS) passes the same tests."""
from __future__ import annotations

import hashlib
import os

import pytest
import pytest_asyncio

from shared.config import parse_config
from shared.storage import StorageDriver, open_driver
from shared.storage.base import NotFound, StorageError
from tests.conftest import s3_location


@pytest.fixture(params=["local", "s3", "rhocs"])
def driver_spec(request, tmp_path):
    if request.param == "local":
        return ["LocalStorage", {"storage_path": str(tmp_path / "store")}]
    url, bucket = request.getfixturevalue("bucket")
    if request.param == "s3":
        return s3_location(url, bucket)
    # RHOCSStorage / RadosGWStorage spell their keys differently (Quay's config); same S3 API.
    host, port = url.removeprefix("http://").split(":")
    return ["RHOCSStorage", {"hostname": host, "port": int(port), "is_secure": False, "bucket_name": bucket,
                             "access_key": "k", "secret_key": "s", "storage_path": "/rhocs"}]


@pytest_asyncio.fixture
async def driver(driver_spec):
    spec = driver_spec
    location = parse_config({"DISTRIBUTED_STORAGE_CONFIG": {"loc": spec}}).storage_locations()["loc"]
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


async def test_rejects_escaping_paths(driver):
    with pytest.raises(StorageError):
        await driver.put_bytes("../outside", b"x")


async def test_local_file_is_the_bytes_or_none(driver):
    await driver.put_bytes("f/x", b"bytes")
    path = driver.local_file("f/x")
    if path is None:
        assert type(driver).__name__ == "S3Driver"
    else:
        assert path.read_bytes() == b"bytes"


async def test_clean_partial_removes_interrupted_writes(driver):
    async def broken():
        yield b"x" * (9 * 1024 * 1024)  # past one S3 part: a multipart upload is under way
        raise RuntimeError("killed")

    import asyncio

    task = asyncio.ensure_future(driver.write("interrupted", broken()))
    with pytest.raises(RuntimeError):
        await task
    await driver.put_bytes("kept", b"complete objects stay")
    # A write that died without cleaning up (process killed) leaves a temporary behind; simulate one.
    if driver.local_file("x") is not None:
        (driver.root / ".tmp" / "left-by-a-killed-process").write_bytes(b"partial")
    else:
        s3 = await driver._s3()
        await s3.create_multipart_upload(Bucket=driver.bucket, Key=driver._key("left-by-a-killed-process"))
    assert await driver.clean_partial(older_than=3600) == 0  # too young to be abandoned
    assert await driver.clean_partial(older_than=0) >= 1
    assert await driver.clean_partial(older_than=0) == 0
    assert await driver.get_bytes("kept") == b"complete objects stay"
    assert await driver.stat("interrupted") is None
