"""Blob and upload endpoints against real PostgreSQL, NATS and storage (local and SeaweedFS)."""
from __future__ import annotations

import asyncio
import os

import pytest

from shared.storage.paths import blob as blob_path
from tests.helpers import error_codes, push_blob, sha256


async def test_api_version_check(registry):
    async with registry.http.get(registry.v2("")) as r:
        assert r.status == 200
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


@pytest.mark.parametrize("storage", ["local", "s3"])
async def test_monolithic_push_then_head_get_and_range(make_registry, storage, request):
    reg = await make_registry(request.getfixturevalue("bucket") if storage == "s3" else "local")
    data = os.urandom(300_000)
    digest = await push_blob(reg, "acme/app", data)
    async with reg.http.head(reg.v2(f"acme/app/blobs/{digest}")) as r:
        assert r.status == 200
        assert int(r.headers["Content-Length"]) == len(data)
        assert r.headers["Docker-Content-Digest"] == digest
    async with reg.http.get(reg.v2(f"acme/app/blobs/{digest}")) as r:
        assert r.status == 200
        assert await r.read() == data
        # Local storage is streamed by the gateway; S3 answers a redirect to a presigned URL of the store.
        first = r.history[0] if r.history else r
        assert (first.status, first.headers["Meridian-Storage-Location"]) == ((307, "s3") if storage == "s3" else (200, "local"))
    async with reg.http.get(reg.v2(f"acme/app/blobs/{digest}"), headers={"Range": "bytes=100-199"}) as r:
        assert r.status == 206
        assert await r.read() == data[100:200]
        assert r.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    async with reg.http.get(reg.v2(f"acme/app/blobs/{digest}"), headers={"Range": "bytes=-10"}) as r:
        assert r.status == 206
        assert await r.read() == data[-10:]


async def test_post_then_put(registry):
    data = b"post then put"
    async with registry.http.post(registry.v2("acme/app/blobs/uploads/")) as r:
        assert r.status == 202
        location = r.headers["Location"]
        assert r.headers["Docker-Upload-UUID"]
    async with registry.http.put(registry.url + location, params={"digest": sha256(data)}, data=data) as r:
        assert r.status == 201, await r.text()
        assert r.headers["Location"] == f"/v2/acme/app/blobs/{sha256(data)}"
    async with registry.http.get(registry.v2(f"acme/app/blobs/{sha256(data)}")) as r:
        assert await r.read() == data


@pytest.mark.parametrize("storage", ["local", "s3"])
async def test_chunked_upload_with_out_of_order_chunk(make_registry, storage, request):
    reg = await make_registry(request.getfixturevalue("bucket") if storage == "s3" else "local")
    data = os.urandom(250_000)
    chunks = [data[:100_000], data[100_000:200_000], data[200_000:]]
    async with reg.http.post(reg.v2("acme/chunky/blobs/uploads/")) as r:
        location = r.headers["Location"]
    offset = 0
    for index, chunk in enumerate(chunks[:2]):
        headers = {"Content-Range": f"{offset}-{offset + len(chunk) - 1}", "Content-Type": "application/octet-stream"}
        async with reg.http.patch(reg.url + location, data=chunk, headers=headers) as r:
            assert r.status == 202, await r.text()
            offset += len(chunk)
            assert r.headers["Range"] == f"0-{offset - 1}"
            location = r.headers["Location"]
        if index == 0:
            # Re-sending the first chunk is out of order now.
            async with reg.http.patch(reg.url + location, data=chunk, headers={"Content-Range": f"0-{len(chunk) - 1}"}) as r:
                assert r.status == 416
                assert r.headers["Range"] == f"0-{offset - 1}"
    async with reg.http.get(reg.url + location) as r:
        assert r.status == 204
        assert r.headers["Range"] == f"0-{offset - 1}"
    async with reg.http.put(reg.url + location, params={"digest": sha256(data)}, data=chunks[2],
                            headers={"Content-Range": f"{offset}-{len(data) - 1}"}) as r:
        assert r.status == 201, await r.text()
    async with reg.http.get(reg.v2(f"acme/chunky/blobs/{sha256(data)}")) as r:
        assert await r.read() == data


async def test_streamed_patch_without_content_range(registry):
    data = os.urandom(3 * 1024 * 1024 + 7)

    async def body():
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    async with registry.http.post(registry.v2("acme/stream/blobs/uploads/")) as r:
        location = r.headers["Location"]
    async with registry.http.patch(registry.url + location, data=body()) as r:
        assert r.status == 202
        assert r.headers["Range"] == f"0-{len(data) - 1}"
        location = r.headers["Location"]
    async with registry.http.put(registry.url + location, params={"digest": sha256(data)}) as r:
        assert r.status == 201, await r.text()
    async with registry.http.get(registry.v2(f"acme/stream/blobs/{sha256(data)}")) as r:
        assert await r.read() == data


async def test_sha512_blob(registry):
    import hashlib

    data = os.urandom(5000)
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    async with registry.http.post(registry.v2("acme/app/blobs/uploads/"), params={"digest": digest}, data=data) as r:
        assert r.status == 201, await r.text()
    async with registry.http.post(registry.v2("acme/app/blobs/uploads/")) as r:
        location = r.headers["Location"]
    other = os.urandom(5000)
    async with registry.http.patch(registry.url + location, data=other) as r:
        location = r.headers["Location"]
    async with registry.http.put(registry.url + location, params={"digest": "sha512:" + hashlib.sha512(other).hexdigest()}) as r:
        assert r.status == 201, await r.text()
    async with registry.http.get(registry.v2(f"acme/app/blobs/{digest}")) as r:
        assert await r.read() == data


async def test_cancel_upload(registry, db):
    async with registry.http.post(registry.v2("acme/app/blobs/uploads/")) as r:
        location = r.headers["Location"]
    async with registry.http.patch(registry.url + location, data=b"abc") as r:
        assert r.status == 202
    async with registry.http.delete(registry.url + location) as r:
        assert r.status == 204
    async with registry.http.get(registry.url + location) as r:
        assert r.status == 404
        assert error_codes(await r.json()) == ["BLOB_UPLOAD_UNKNOWN"]
    assert await db.fetchval("SELECT count(*) FROM upload_sessions") == 0
    storage = registry.config.storage_locations()["local"].params.storage_path
    assert not [p for p in __import__("pathlib").Path(storage, "uploads").rglob("*") if p.is_file()]


async def test_mount_from_repository_and_anonymous_mount(registry):
    digest = await push_blob(registry, "acme/source", b"shared layer")
    async with registry.http.post(registry.v2("acme/target/blobs/uploads/"), params={"mount": digest, "from": "acme/source"}) as r:
        assert r.status == 201
        assert r.headers["Location"] == f"/v2/acme/target/blobs/{digest}"
    async with registry.http.post(registry.v2("other/target2/blobs/uploads/"), params={"mount": digest}) as r:
        assert r.status == 201
    async with registry.http.head(registry.v2(f"other/target2/blobs/{digest}")) as r:
        assert r.status == 200


async def test_mount_of_missing_blob_opens_an_upload(registry):
    missing = sha256(b"never pushed")
    async with registry.http.post(registry.v2("acme/target/blobs/uploads/"), params={"mount": missing, "from": "acme/source"}) as r:
        assert r.status == 202
        assert "/blobs/uploads/" in r.headers["Location"]
    async with registry.http.head(registry.v2(f"acme/target/blobs/{missing}")) as r:
        assert r.status == 404


async def test_one_stored_copy_and_repository_scoping(registry, db):
    data = os.urandom(10_000)
    digest = await push_blob(registry, "acme/one", data)
    await push_blob(registry, "acme/two", data)
    assert await db.fetchval("SELECT count(*) FROM blobs WHERE digest = $1", digest) == 1
    storage = registry.config.storage_locations()["local"].params.storage_path
    assert __import__("pathlib").Path(storage, blob_path(digest)).read_bytes() == data
    async with registry.http.head(registry.v2(f"acme/three/blobs/{digest}")) as r:
        assert r.status == 404
    await push_blob(registry, "acme/three", b"something else")
    async with registry.http.get(registry.v2(f"acme/three/blobs/{digest}")) as r:
        assert r.status == 404
        assert error_codes(await r.json()) == ["BLOB_UNKNOWN"]


async def test_blob_delete(registry):
    digest = await push_blob(registry, "acme/app", b"to delete")
    async with registry.http.delete(registry.v2(f"acme/app/blobs/{digest}")) as r:
        assert r.status == 202
    async with registry.http.head(registry.v2(f"acme/app/blobs/{digest}")) as r:
        assert r.status == 404
    async with registry.http.delete(registry.v2(f"acme/app/blobs/{digest}")) as r:
        assert r.status == 404
        assert error_codes(await r.json()) == ["BLOB_UNKNOWN"]


async def test_same_blob_pushed_in_parallel_to_two_repositories(registry, db):
    data = os.urandom(2 * 1024 * 1024)
    results = await asyncio.gather(*(push_blob(registry, f"acme/par{i % 2}", data) for i in range(8)))
    assert set(results) == {sha256(data)}
    assert await db.fetchval("SELECT count(*) FROM blobs") == 1
    assert await db.fetchval("SELECT count(*) FROM blob_placements") == 1
    assert await db.fetchval("SELECT count(*) FROM repository_blobs") == 2
    for repo in ("acme/par0", "acme/par1"):
        async with registry.http.get(registry.v2(f"{repo}/blobs/{sha256(data)}")) as r:
            assert await r.read() == data


async def test_first_pushes_racing_into_a_new_namespace_all_succeed(registry, db):
    """Pushes that create a namespace and its repositories at the same moment: some see the namespace
    missing and create it, others see it made and only add the repository; none may fail (the namespace
    upsert once deadlocked against a concurrent repository insert, and two inserts of one repository
    could meet in the unique index ON CONFLICT did not name: about one run in three failed then)."""
    data = os.urandom(64 * 1024)
    for round_ in range(30):
        names = [f"race{round_}/r{i % 3}" for i in range(9)]
        await asyncio.gather(*(push_blob(registry, name, data) for name in names))
        assert await db.fetchval("SELECT count(*) FROM repositories WHERE full_name LIKE $1", f"race{round_}/%") == 3


async def test_a_push_creating_its_namespace_does_not_block_other_repositories_of_that_namespace(database):
    """The ingredient of that deadlock, made deterministic: while one push's transaction has created (or
    found) the namespace and its repository, another transaction's repository insert in the same
    namespace goes ahead instead of waiting for it to commit."""
    import asyncpg

    from shared.contract import Subjects
    from shared.registry import Registry, repositories

    pool = await asyncpg.create_pool(database, min_size=2, max_size=3)
    try:
        registry = Registry(pool, Subjects("t"), "us")
        async with registry.change() as made:  # the namespace exists, as after an earlier first push
            await repositories.create_with_namespace(made, "shared-ns/first")
        namespace_id = await pool.fetchval("SELECT id FROM namespaces WHERE name = 'shared-ns'")
        async with registry.change(publish=False) as open_change:
            await repositories.create_with_namespace(open_change, "shared-ns/second")
            # Still uncommitted: another repository of the namespace is inserted meanwhile.
            other = await asyncio.wait_for(pool.fetchval(
                "INSERT INTO repositories (namespace_id, name, full_name) VALUES ($1, 'third', 'shared-ns/third') RETURNING id",
                namespace_id), timeout=5)
            assert other is not None
        names = await pool.fetch("SELECT full_name FROM repositories WHERE namespace_id = $1 ORDER BY 1", namespace_id)
        assert [r["full_name"] for r in names] == ["shared-ns/first", "shared-ns/second", "shared-ns/third"]
    finally:
        await pool.close()


# --- every error path changes nothing --------------------------------------------------------


async def test_wrong_digest_is_refused_and_stores_nothing(registry, db):
    data = b"actual content"
    wrong = sha256(b"other content")
    async with registry.http.post(registry.v2("acme/app/blobs/uploads/"), params={"digest": wrong}, data=data) as r:
        assert r.status == 400
        assert error_codes(await r.json()) == ["DIGEST_INVALID"]
    assert await db.fetchval("SELECT count(*) FROM blobs") == 0
    assert await db.fetchval("SELECT count(*) FROM upload_sessions") == 0


async def test_malformed_digest(registry):
    for bad in ("sha256:xyz", "md5:" + "0" * 32, "nodigest"):
        async with registry.http.post(registry.v2("acme/app/blobs/uploads/"), params={"digest": bad}, data=b"x") as r:
            assert r.status == 400
            assert error_codes(await r.json()) == ["DIGEST_INVALID"]
    async with registry.http.get(registry.v2("acme/app/blobs/sha256:short")) as r:
        assert r.status == 400
        assert error_codes(await r.json()) == ["DIGEST_INVALID"]


async def send_truncated(registry, method: str, target: str, promised: int, sent: bytes) -> None:
    """Promise `promised` bytes in Content-Length, send fewer, hang up."""
    host, port = registry.host.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: {registry.host}\r\nContent-Length: {promised}\r\n\r\n".encode() + sent)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_truncated_upload_is_refused(registry, db):
    """The client promises 1000 bytes and hangs up after 10: nothing is recorded."""
    digest = sha256(b"x" * 1000)
    await send_truncated(registry, "POST", f"/v2/acme/app/blobs/uploads/?digest={digest}", 1000, b"x" * 10)

    storage = __import__("pathlib").Path(registry.config.storage_locations()["local"].params.storage_path)

    async def settled():
        return not [p for p in (storage / "uploads").rglob("*")] if (storage / "uploads").exists() else True

    from tests.helpers import eventually

    await eventually(settled, what="the truncated upload's bytes to be discarded")
    assert await db.fetchval("SELECT count(*) FROM blobs") == 0
    assert await db.fetchval("SELECT count(*) FROM upload_sessions") == 0
    assert not (storage / "sha256").exists()


async def test_truncated_final_chunk_keeps_the_session(registry, db):
    """A PUT whose body breaks off leaves the session as it was, so the client can retry."""
    async with registry.http.post(registry.v2("acme/app/blobs/uploads/")) as r:
        location = r.headers["Location"]
    async with registry.http.patch(registry.url + location, data=b"first") as r:
        location = r.headers["Location"]
    await send_truncated(registry, "PUT", f"{location}?digest={sha256(b'first' + b'y' * 100)}", 100, b"y" * 10)
    async with registry.http.get(registry.url + location) as r:
        assert r.status == 204 and r.headers["Range"] == "0-4"
    async with registry.http.put(registry.url + location, params={"digest": sha256(b"first" + b"y" * 100)}, data=b"y" * 100) as r:
        assert r.status == 201, await r.text()
    assert await db.fetchval("SELECT count(*) FROM blobs") == 1


async def test_chunk_size_not_matching_content_range(registry):
    async with registry.http.post(registry.v2("acme/app/blobs/uploads/")) as r:
        location = r.headers["Location"]
    async with registry.http.patch(registry.url + location, data=b"12345", headers={"Content-Range": "0-9"}) as r:
        assert r.status == 400
        assert error_codes(await r.json()) == ["SIZE_INVALID"]
    async with registry.http.get(registry.url + location) as r:
        assert r.headers["Range"] == "0-0"


async def test_unknown_blob_and_unknown_repository(registry):
    missing = sha256(b"missing")
    async with registry.http.get(registry.v2(f"acme/nothing/blobs/{missing}")) as r:
        assert r.status == 404
        assert error_codes(await r.json()) == ["NAME_UNKNOWN"]
    await push_blob(registry, "acme/app", b"present")
    async with registry.http.get(registry.v2(f"acme/app/blobs/{missing}")) as r:
        assert r.status == 404
        assert error_codes(await r.json()) == ["BLOB_UNKNOWN"]
    async with registry.http.head(registry.v2(f"acme/app/blobs/{missing}")) as r:
        assert r.status == 404


@pytest.mark.parametrize("name", ["UPPER/case", "single", "a//b", "ns/-lead", "ns/trail-", "x/" + "a" * 300])
async def test_invalid_names(registry, name, db):
    async with registry.http.post(registry.v2(f"{name}/blobs/uploads/")) as r:
        assert r.status == 400
        assert error_codes(await r.json()) == ["NAME_INVALID"]
    assert await db.fetchval("SELECT count(*) FROM repositories") == 0


async def test_unknown_upload_id(registry):
    async with registry.http.patch(registry.v2("acme/app/blobs/uploads/not-a-uuid"), data=b"x") as r:
        assert r.status == 404
        assert error_codes(await r.json()) == ["BLOB_UPLOAD_UNKNOWN"]


async def test_unsupported_method_gets_oci_error(registry):
    async with registry.http.post(registry.v2("acme/app/tags/list")) as r:
        assert r.status == 405
        assert error_codes(await r.json()) == ["UNSUPPORTED"]


async def test_closed_registry_requires_authentication(make_registry):
    reg = await make_registry(MERIDIAN_INSECURE_OPEN_ACCESS=False)
    async with reg.http.get(reg.v2("")) as r:
        assert r.status == 401
        assert "WWW-Authenticate" in r.headers
        assert error_codes(await r.json()) == ["UNAUTHORIZED"]
    async with reg.http.post(reg.v2("acme/app/blobs/uploads/")) as r:
        assert r.status == 401


async def test_read_only_mode_refuses_writes_and_serves_reads(make_registry, service_key):
    writable = await make_registry()
    digest = await push_blob(writable, "acme/app", b"before read-only")
    reg = await make_registry(REGISTRY_STATE="readonly", DISTRIBUTED_STORAGE_CONFIG=writable.doc["DISTRIBUTED_STORAGE_CONFIG"],
                              **service_key)
    async with reg.http.post(reg.v2("acme/app/blobs/uploads/")) as r:
        assert r.status == 405
        body = await r.json()
        assert body["errors"][0]["code"] == "DENIED"
        assert body["errors"][0]["message"].startswith("System is currently read-only.")
    async with reg.http.get(reg.v2(f"acme/app/blobs/{digest}")) as r:
        assert await r.read() == b"before read-only"


async def test_disable_pushes_refuses_pushes_but_not_deletes_or_pulls(make_registry):
    writable = await make_registry()
    digest = await push_blob(writable, "acme/app", b"before pushes were disabled")
    reg = await make_registry(DISABLE_PUSHES=True, DISTRIBUTED_STORAGE_CONFIG=writable.doc["DISTRIBUTED_STORAGE_CONFIG"])
    async with reg.http.post(reg.v2("acme/app/blobs/uploads/")) as r:
        assert r.status == 405
        assert (await r.json())["errors"][0]["message"].startswith("Pushes to the registry are currently disabled.")
    async with reg.http.put(reg.v2("acme/app/manifests/v1"), data=b"{}") as r:
        assert r.status == 405
    async with reg.http.get(reg.v2(f"acme/app/blobs/{digest}")) as r:
        assert r.status == 200
    async with reg.http.delete(reg.v2(f"acme/app/blobs/{digest}")) as r:
        assert r.status == 202
