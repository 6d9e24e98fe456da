"""The /v2 findings of issue 11, each reproduced against a real registry (PostgreSQL, NATS, storage):
blob mounts that crossed tenants, 5xx on bad input, racing upload completions, deletes that broke
pullable images, world-readable storage files."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from shared.storage.paths import blob as blob_path
from tests.helpers import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    error_codes,
    eventually,
    push_blob,
    push_image,
    sha256,
)
from tests.integration.test_gc import make_collector  # noqa: F401, F811  (the fixture)

# --- 1. blob mounts only from repositories the caller may read -------------------------------------


async def _layer_of(world, repository: str, *, smallest: bool = False) -> str:
    """The largest blob of a repository of the world (a layer), or its smallest (the image config)."""
    return await world.conn.fetchval(
        "SELECT b.digest FROM blobs b JOIN repository_blobs rb ON rb.blob_id = b.id "
        f"WHERE rb.repository_id = $1 ORDER BY b.size {'ASC' if smallest else 'DESC'} LIMIT 1", world.ids[repository])


async def test_mount_without_from_does_not_reach_an_unreadable_repository(world):
    secret_layer = await _layer_of(world, "globex/secret")
    walt = await world.as_actor("walt", "repository:acme/private:pull,push")
    never_pushed = sha256(os.urandom(32))
    answers = []
    for digest in (secret_layer, never_pushed):
        async with walt.http.post(walt.v2("acme/private/blobs/uploads/"), params={"mount": digest}) as r:
            # An ordinary upload session, exactly as for a digest that exists nowhere: no hint.
            assert r.status == 202, await r.text()
            assert "/blobs/uploads/" in r.headers["Location"]
            answers.append((r.status, sorted(k for k in r.headers if k not in ("Date", "Location", "Docker-Upload-UUID",
                                                                               "X-Request-ID"))))
    assert answers[0] == answers[1]
    async with walt.http.head(walt.v2(f"acme/private/blobs/{secret_layer}")) as r:
        assert r.status == 404
    assert not await world.conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM repository_blobs rb JOIN blobs b ON b.id = rb.blob_id "
        "WHERE rb.repository_id = $1 AND b.digest = $2)", world.ids["acme/private"], secret_layer)


async def test_mount_from_an_unreadable_repository_opens_an_upload(world):
    secret_layer = await _layer_of(world, "globex/secret")
    # walt asks for pull on globex/secret too; /v2/auth down-scopes it to nothing.
    walt = await world.as_actor("walt", "repository:acme/private:pull,push", "repository:globex/secret:pull")
    async with walt.http.post(walt.v2("acme/private/blobs/uploads/"),
                              params={"mount": secret_layer, "from": "globex/secret"}) as r:
        assert r.status == 202, await r.text()
    async with walt.http.head(walt.v2(f"acme/private/blobs/{secret_layer}")) as r:
        assert r.status == 404


async def test_mount_from_a_readable_repository_still_works(world):
    public_layer = await _layer_of(world, "acme/public")
    walt = await world.as_actor("walt", "repository:acme/private:pull,push", "repository:acme/public:pull")
    async with walt.http.post(walt.v2("acme/private/blobs/uploads/"), params={"mount": public_layer}) as r:
        assert r.status == 201, await r.text()  # without `from`: found among the token's readable repositories
    other_layer = await _layer_of(world, "acme/public", smallest=True)
    assert other_layer != public_layer
    async with walt.http.post(walt.v2("acme/private/blobs/uploads/"),
                              params={"mount": other_layer, "from": "acme/public"}) as r:
        assert r.status == 201, await r.text()
    for digest in (public_layer, other_layer):
        async with walt.http.head(walt.v2(f"acme/private/blobs/{digest}")) as r:
            assert r.status == 200


# --- 2. edge validation: bad input is a 400 with an OCI error body, never a 5xx --------------------


async def raw_request(url: str, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (aiohttp would refuse to send a NUL or invalid UTF-8 in a header)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        return status, body
    finally:
        writer.close()


def assert_oci_400(status: int, body: bytes | dict, what: object) -> None:
    assert status == 400, (what, status, body)
    doc = json.loads(body) if isinstance(body, bytes) else body
    assert doc["errors"] and doc["errors"][0]["code"] and doc["errors"][0]["message"], (what, doc)


@pytest.mark.parametrize("path", [
    "acme/app/tags/list?last=%00",
    "_catalog?last=%00",
    "acme/app/tags/list?n=99999999999999999999999999",
    "_catalog?n=" + "9" * 5000,
    "acme/a%00b/manifests/latest",
    "acme/app/manifests/v1%00",
    "acme/app/blobs/sha256:%00",
    "acme/app/referrers/sha256:" + "a" * 64 + "?artifactType=%00",
    "acme/app/tags/list?x%00=1",
], ids=lambda value: value[:60])
async def test_nul_and_huge_numbers_in_path_and_query_are_400(registry, path):
    await push_image(registry, "acme/app", "v1")
    async with registry.http.get(f"{registry.url}/v2/{path}", skip_auto_headers=()) as r:
        assert_oci_400(r.status, await r.read(), path)


@pytest.mark.parametrize("header", [
    b"X-Anything: \xed\xa0\x80",  # a UTF-8-encoded lone surrogate
    b"X-Anything: \xff\xfe",
    b"Authorization: Bearer \xff",
])
async def test_invalid_utf8_in_headers_is_400(registry, header):
    status, body = await raw_request(registry.url, b"GET /v2/acme/app/tags/list HTTP/1.1\r\nHost: x\r\n" + header
                                     + b"\r\nConnection: close\r\n\r\n")
    assert_oci_400(status, body, header)


@pytest.mark.parametrize("header", [b"X-Anything: a\x00b", b"Accept: application/\x00json"])
async def test_nul_in_headers_is_400(registry, header):
    # aiohttp's HTTP parser refuses a NUL in a header itself (plain-text 400) before /v2 sees the request.
    status, _ = await raw_request(registry.url, b"GET /v2/acme/app/tags/list HTTP/1.1\r\nHost: x\r\n" + header
                                  + b"\r\nConnection: close\r\n\r\n")
    assert status == 400


async def test_manifest_annotations_with_nul_or_lone_surrogates_are_400(registry, db):
    config = b'{"architecture":"amd64","os":"linux"}'
    await push_blob(registry, "acme/ann", config)
    for value in ("a\u0000b", "\ud800", "\udfff tail"):
        for annotated in ({"k": value}, {value: "v"}):
            body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                               "layers": [], "annotations": annotated}).encode()
            async with registry.http.put(registry.v2("acme/ann/manifests/v1"), data=body,
                                         headers={"Content-Type": OCI_MANIFEST}) as r:
                assert_oci_400(r.status, await r.read(), annotated)
                assert error_codes(json.loads(await r.read())) == ["MANIFEST_INVALID"]
    assert await db.fetchval("SELECT count(*) FROM manifests") == 0


@pytest.mark.parametrize("depth", [1000, 100_000])
async def test_deeply_nested_manifest_is_400(registry, depth):
    body = b'{"schemaVersion":2,"x":' + b"[" * depth + b"]" * depth + b"}"
    async with registry.http.put(registry.v2("acme/deep/manifests/v1"), data=body,
                                 headers={"Content-Type": OCI_MANIFEST}) as r:
        assert r.status == 400, await r.text()


async def test_image_config_labels_with_nul_surrogates_or_huge_expiry_do_not_reach_the_database(registry, db):
    labels = {"good": "yes", "nul": "a\u0000b", "surrogate": "\ud800", "k\u0000": "v", "quay.expires-after": "99999999999w"}
    config_doc = {"architecture": "amd64", "os": "linux", "config": {"Labels": labels}}
    config = json.dumps(config_doc).encode()  # json.dumps writes \u0000 and \ud800 escapes
    await push_blob(registry, "acme/labels", config)
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                       "layers": []}).encode()
    async with registry.http.put(registry.v2("acme/labels/manifests/v1"), data=body,
                                 headers={"Content-Type": OCI_MANIFEST}) as r:
        assert r.status == 201, await r.text()
    rows = await db.fetch("SELECT key, value FROM labels ORDER BY key")
    assert {r["key"]: r["value"] for r in rows} == {"good": "yes", "quay.expires-after": "99999999999w"}
    assert await db.fetchval("SELECT expires_at FROM tags WHERE name = 'v1'") is None
    async with registry.http.get(registry.v2("acme/labels/manifests/v1")) as r:
        assert r.status == 200


async def _open_upload(reg, name: str) -> str:
    async with reg.http.post(reg.v2(f"{name}/blobs/uploads/")) as r:
        assert r.status == 202
        return reg.url + r.headers["Location"]


@pytest.mark.parametrize("content_range", [
    "bytes 0-" + "9" * 30, "0-" + "9" * 5000, "bytes 9223372036854775807-9223372036854775808", "garbage", "5-1",
    "bytes=0-4", "-1-4",
], ids=lambda value: value[:40])
async def test_bad_content_range_is_a_clean_4xx(registry, content_range):
    location = await _open_upload(registry, "acme/range")
    async with registry.http.patch(location, data=b"hello", headers={"Content-Range": content_range}) as r:
        assert 400 <= r.status < 500, (content_range, r.status, await r.text())
        assert error_codes(await r.json())


@pytest.mark.parametrize("header", ["bytes=0-" + "9" * 5000, "bytes=" + "9" * 30 + "-", "bytes=-" + "9" * 30],
                         ids=lambda value: value[:40])
async def test_huge_range_on_a_blob_is_a_clean_4xx(registry, header):
    digest = await push_blob(registry, "acme/rng", b"some bytes")
    async with registry.http.get(registry.v2(f"acme/rng/blobs/{digest}"), headers={"Range": header}) as r:
        assert 400 <= r.status < 500, (header, r.status)


async def test_huge_content_length_is_a_clean_4xx(registry):
    status, body = await raw_request(registry.url, b"POST /v2/acme/cl/blobs/uploads/?digest=sha256:" + b"a" * 64
                                     + b" HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 25
                                     + b"\r\nConnection: close\r\n\r\nabc")
    assert 400 <= status < 500, (status, body)


@pytest.mark.parametrize("raw", [
    base64.b64encode(b"alice-without-colon"),
    base64.b64encode(b"\xff\xfe:\xff"),
    base64.b64encode(b"al\x00ice:secret"),
    base64.b64encode(b"alice:se\x00cret"),
    base64.b64encode("\ud800:x".encode("utf-8", "surrogatepass")),
    b"not base64 at all!",
])
async def test_malformed_basic_credentials_on_v2_auth_are_401(world, raw):
    async with world.reg.http.get(f"{world.url}/v2/auth", params={"service": world.reg.host},
                                  headers={"Authorization": "Basic " + raw.decode()}) as r:
        assert r.status == 401, (raw, r.status, await r.text())
        assert error_codes(await r.json()) == ["UNAUTHORIZED"]


# --- 4. concurrent completions of one upload; gc reconciles storage with the database ---------------


def _storage_root(reg) -> Path:
    return Path(reg.doc["DISTRIBUTED_STORAGE_CONFIG"]["local"][1]["storage_path"])


async def _content_addressed_without_row(reg, db) -> list[str]:
    root = _storage_root(reg)
    stray = []
    for algorithm in ("sha256", "sha512"):
        for path in (root / algorithm).rglob("*") if (root / algorithm).is_dir() else ():
            if path.is_file():
                digest = f"{algorithm}:{path.name}"
                if not await db.fetchval("SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = $1)", digest):
                    stray.append(digest)
    return stray


@pytest.mark.parametrize("final_body,chunks,algorithm", [
    (False, 2, "sha256"), (False, 1, "sha512"), (False, 2, "sha512"), (True, 0, "sha256"), (True, 1, "sha512"),
], ids=["two-chunks-empty-puts", "one-chunk-sha512-rehash", "two-chunks-sha512", "puts-with-body", "chunk-and-body-sha512"])
async def test_five_concurrent_final_puts_one_wins_the_others_get_a_clean_4xx(registry, db, final_body, chunks, algorithm):
    for attempt in range(3):  # a few rounds: the race has several interleavings
        data = os.urandom(300_000 + attempt)
        digest = sha256(data) if algorithm == "sha256" else "sha512:" + hashlib.sha512(data).hexdigest()
        location = await _open_upload(registry, f"acme/race{attempt}")
        if chunks:
            step = len(data) // chunks if not final_body else len(data) // 2
            parts = [(i * step, data[i * step:(i + 1) * step if i < chunks - 1 or final_body else len(data)])
                     for i in range(chunks)]
            for start, chunk in parts:
                async with registry.http.patch(location, data=chunk, headers={
                        "Content-Range": f"{start}-{start + len(chunk) - 1}", "Content-Type": "application/octet-stream"}) as r:
                    assert r.status == 202, await r.text()

        sent = sum(len(chunk) for _, chunk in parts) if chunks else 0

        async def finish(location=location, digest=digest, body=data[sent:] if final_body else b""):
            async with registry.http.put(location, params={"digest": digest}, data=body,
                                         headers={"Content-Type": "application/octet-stream"}) as r:
                return r.status, (await r.json()) if r.status >= 400 else None

        results = await asyncio.gather(*(finish() for _ in range(5)))
        statuses = sorted(status for status, _ in results)
        assert statuses.count(201) == 1, results
        for status, body in results:
            if status != 201:
                assert 400 <= status < 500, results
                assert error_codes(body)[0] in ("BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"), results
        async with registry.http.get(registry.v2(f"acme/race{attempt}/blobs/{digest}")) as r:
            assert r.status == 200 and await r.read() == data
    assert await _content_addressed_without_row(registry, db) == []
    uploads = _storage_root(registry) / "uploads"
    assert not [p for p in uploads.rglob("*") if p.is_file()] if uploads.is_dir() else True


async def test_gc_deletes_and_counts_old_content_addressed_objects_without_a_row(registry, make_collector, db):  # noqa: F811
    from prometheus_client import REGISTRY

    root = _storage_root(registry)
    kept_digest = await push_blob(registry, "acme/kept", os.urandom(1000))  # has a row: stays, however old

    def plant(data: bytes, age_s: int) -> str:
        digest = sha256(data)
        path = root / blob_path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)  # bytes at their content address, as a completion that died after its move leaves them
        stamp = path.stat().st_mtime - age_s
        os.utime(path, (stamp, stamp))
        return digest

    old_orphan = plant(os.urandom(500), 7200)
    young_orphan = plant(os.urandom(500), 0)  # inside the push window: a push may be about to record it
    kept = root / blob_path(kept_digest)
    os.utime(kept, (kept.stat().st_mtime - 7200,) * 2)

    def counted() -> float:
        return REGISTRY.get_sample_value("meridian_gc_storage_orphans_deleted_total", {"location": "local"}) or 0.0

    collector = await make_collector(registry.doc, PUSH_TEMP_TAG_EXPIRATION_SEC=3600)
    dry = await collector.run_once(dry_run=True)
    assert dry.storage_orphans == [f"local:{old_orphan}"] and (root / blob_path(old_orphan)).exists()
    before = counted()
    report = await collector.run_once()
    assert report.storage_orphans == [f"local:{old_orphan}"], report.summary()
    assert counted() - before == 1
    assert not (root / blob_path(old_orphan)).exists()
    assert (root / blob_path(young_orphan)).exists() and kept.exists()
    async with registry.http.get(registry.v2(f"acme/kept/blobs/{kept_digest}")) as r:
        assert r.status == 200


# --- 5. deletes never break a pullable image --------------------------------------------------------


async def _pullable(reg, name: str, reference: str) -> None:
    async with reg.http.get(reg.v2(f"{name}/manifests/{reference}"),
                            headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}) as r:
        assert r.status == 200, await r.text()
        doc = await r.json(content_type=None)
    for child in doc.get("manifests", []):
        await _pullable(reg, name, child["digest"])
    for blob in ([doc["config"]] if "config" in doc else []) + doc.get("layers", []):
        async with reg.http.get(reg.v2(f"{name}/blobs/{blob['digest']}")) as r:
            assert r.status == 200, (blob["digest"], r.status)


async def test_deleting_a_layer_or_config_of_an_image_is_refused(registry):
    digest, body = await push_image(registry, "acme/img", "v1", layers=2)
    doc = json.loads(body)
    for blob in [doc["config"]] + doc["layers"]:
        async with registry.http.delete(registry.v2(f"acme/img/blobs/{blob['digest']}")) as r:
            assert r.status == 409, await r.text()
            error = (await r.json())["errors"][0]
            assert error["code"] == "DENIED" and digest in error["message"] and "delete the manifest first" in error["message"]
    await _pullable(registry, "acme/img", "v1")
    # An untagged manifest is still pullable by digest: still refused.
    async with registry.http.delete(registry.v2("acme/img/manifests/v1")) as r:
        assert r.status == 202
    async with registry.http.delete(registry.v2(f"acme/img/blobs/{doc['layers'][0]['digest']}")) as r:
        assert r.status == 409
    # Once the manifest is gone, its blobs may go.
    async with registry.http.delete(registry.v2(f"acme/img/manifests/{digest}")) as r:
        assert r.status == 202
    async with registry.http.delete(registry.v2(f"acme/img/blobs/{doc['layers'][0]['digest']}")) as r:
        assert r.status == 202


async def test_deleting_a_child_of_an_index_is_refused(registry):
    child, child_body = await push_image(registry, "acme/multi")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**descriptor(OCI_MANIFEST, child_body), "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    async with registry.http.put(registry.v2("acme/multi/manifests/latest"), data=index,
                                 headers={"Content-Type": OCI_INDEX}) as r:
        assert r.status == 201, await r.text()
    async with registry.http.delete(registry.v2(f"acme/multi/manifests/{child}")) as r:
        assert r.status == 409, await r.text()
        error = (await r.json())["errors"][0]
        assert error["code"] == "DENIED" and sha256(index) in error["message"] and "delete the index first" in error["message"]
    await _pullable(registry, "acme/multi", "latest")
    async with registry.http.delete(registry.v2(f"acme/multi/manifests/{sha256(index)}")) as r:
        assert r.status == 202
    async with registry.http.delete(registry.v2(f"acme/multi/manifests/{child}")) as r:
        assert r.status == 202


async def test_a_manifest_push_racing_a_delete_of_its_layer_never_stores_a_broken_image(registry):
    for attempt in range(5):
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": attempt}).encode()
        layer = os.urandom(1024)
        await push_blob(registry, "acme/racy", config)
        await push_blob(registry, "acme/racy", layer)
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                           "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)]}).encode()

        async def put(tag=f"t{attempt}", body=body):
            async with registry.http.put(registry.v2(f"acme/racy/manifests/{tag}"), data=body,
                                         headers={"Content-Type": OCI_MANIFEST}) as r:
                return r.status

        layer_digest = sha256(layer)

        async def delete(digest=layer_digest):
            async with registry.http.delete(registry.v2(f"acme/racy/blobs/{digest}")) as r:
                return r.status

        put_status, delete_status = await asyncio.gather(put(), delete())
        assert put_status in (201, 404) and delete_status in (202, 409), (put_status, delete_status)
        if put_status == 201:
            await _pullable(registry, "acme/racy", f"t{attempt}")


# --- 6. storage files and log exports are not readable by other local users -------------------------


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)) or ".": stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


async def test_local_storage_files_and_folders_are_private_whatever_the_umask(make_world):
    old_umask = os.umask(0o000)  # the most permissive: nothing may depend on it
    try:
        world = await make_world()
        reg = world.reg
        root = _storage_root(reg)
        alice = await world.as_actor("alice", "repository:acme/perm:pull,push")
        await push_image(alice, "acme/perm", "v1")
        location = None
        async with alice.http.post(alice.v2("acme/perm/blobs/uploads/")) as r:
            location = reg.url + r.headers["Location"]
        async with alice.http.patch(location, data=b"a chunk", headers={"Content-Range": "0-6"}) as r:
            assert r.status == 202
        async with reg.http.post(world.api("user/exportlogs"), headers=world.api_headers("alice"),
                                 json={"callback_url": f"{world.url}/nowhere"}) as r:
            assert r.status == 202, await r.text()
            export_id = (await r.json())["export_id"]

        async def exported():
            return await world.conn.fetchval("SELECT status = 'done' FROM log_exports WHERE id = $1::uuid", export_id)

        await eventually(exported, what="the export to finish")
    finally:
        os.umask(old_umask)
    modes = _modes(root)
    assert any(k.startswith("sha256/") for k in modes) and any(k.startswith("uploads/") for k in modes)
    assert any(k.startswith("exportedlogs/") for k in modes), sorted(modes)
    readable_by_others = {k: oct(m) for k, m in modes.items() if m & 0o077}
    assert readable_by_others == {}
    assert {m for k, m in modes.items() if (root / k).is_file()} == {0o600}
    assert {m for k, m in modes.items() if (root / k).is_dir()} == {0o700}
