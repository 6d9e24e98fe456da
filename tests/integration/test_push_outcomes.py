"""What a push leaves behind: refused pushes create nothing visible, `?tag=` answers with `OCI-Tag`,
and sparse indexes and manifests behind FEATURE_SPARSE_INDEX / MERIDIAN_SPARSE_MANIFESTS."""
from __future__ import annotations

import json
import os

from tests.helpers import LAYER_GZIP, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, descriptor, error_codes, push_blob, push_image, sha256


async def _catalog(reg) -> list[str]:
    async with reg.http.get(reg.v2("_catalog")) as r:
        assert r.status == 200
        return (await r.json())["repositories"]


async def _put(reg, name: str, reference: str, doc: dict, *, params=None):
    body = json.dumps(doc).encode()
    async with reg.http.put(reg.v2(f"{name}/manifests/{reference}"), data=body, params=params,
                            headers={"Content-Type": doc["mediaType"]}) as r:
        return r.status, r.headers, (await r.json() if r.status >= 400 else None), body


# --- a refused push creates nothing --------------------------------------------------------------


async def test_refused_manifest_leaves_no_repository_in_the_catalog(make_registry, db):
    reg = await make_registry(ALLOWED_OCI_ARTIFACT_TYPES={"application/vnd.example.sbom+json": ["text/plain"]})
    config, layer = b"{}", b"payload"
    await push_blob(reg, "acme/refused", config)
    await push_blob(reg, "acme/refused", layer)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.unheard.of+json",
           "config": descriptor("application/vnd.oci.empty.v1+json", config), "layers": [descriptor("text/plain", layer)]}
    status, _, error, _ = await _put(reg, "acme/refused", "v1", doc)
    assert status == 400 and error_codes(error) == ["MANIFEST_INVALID"]
    assert await _catalog(reg) == []
    assert await db.fetchval("SELECT count(*) FROM manifests") == 0
    # The repository shows once it holds a manifest.
    await push_image(reg, "acme/refused", "v1")
    assert await _catalog(reg) == ["acme/refused"]


async def test_manifest_with_missing_blob_leaves_no_repository_in_the_catalog(registry):
    config = b'{"os":"linux"}'
    await push_blob(registry, "acme/half", config)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
           "layers": [descriptor(LAYER_GZIP, b"never pushed")]}
    status, _, error, _ = await _put(registry, "acme/half", "v1", doc)
    assert status == 404 and error_codes(error) == ["MANIFEST_BLOB_UNKNOWN"]
    assert await _catalog(registry) == []


async def test_blobs_only_repositories_are_not_listed_but_work(registry):
    digest = await push_blob(registry, "acme/blobsonly", b"some bytes")
    assert await _catalog(registry) == []
    async with registry.http.get(registry.v2(f"acme/blobsonly/blobs/{digest}")) as r:
        assert r.status == 200 and await r.read() == b"some bytes"


# --- ?tag= on manifest PUT -----------------------------------------------------------------------


async def test_tag_parameters_answer_one_oci_tag_header_each(registry):
    digest, body = await push_image(registry, "acme/tagged")
    async with registry.http.put(registry.v2(f"acme/tagged/manifests/{digest}"), params=[("tag", "v1"), ("tag", "latest")],
                                 data=body, headers={"Content-Type": OCI_MANIFEST}) as r:
        assert r.status == 201
        assert r.headers.getall("OCI-Tag") == ["v1", "latest"]
        assert r.headers["Docker-Content-Digest"] == digest
    for tag in ("v1", "latest"):
        async with registry.http.get(registry.v2(f"acme/tagged/manifests/{tag}"), headers={"Accept": OCI_MANIFEST}) as r:
            assert r.status == 200 and r.headers["Docker-Content-Digest"] == digest


async def test_tag_parameters_with_a_sha512_manifest(registry):
    config = b'{"os":"linux","architecture":"amd64"}'
    await push_blob(registry, "acme/sha512", config)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config), "layers": []}
    body = json.dumps(doc).encode()
    import hashlib
    digest = "sha512:" + hashlib.sha512(body).hexdigest()
    async with registry.http.put(registry.v2(f"acme/sha512/manifests/{digest}"), params={"tag": "v512"},
                                 data=body, headers={"Content-Type": OCI_MANIFEST}) as r:
        assert r.status == 201, await r.text()
        assert r.headers.getall("OCI-Tag") == ["v512"] and r.headers["Docker-Content-Digest"] == digest
    async with registry.http.get(registry.v2("acme/sha512/manifests/v512")) as r:
        assert r.status == 200 and await r.read() == body


async def test_invalid_tag_parameter_is_refused_and_stores_nothing(registry, db):
    digest, body = await push_image(registry, "acme/badtag")
    before = await db.fetchval("SELECT count(*) FROM tags")
    async with registry.http.put(registry.v2(f"acme/badtag/manifests/{digest}"), params=[("tag", "ok"), ("tag", "-bad")],
                                 data=body, headers={"Content-Type": OCI_MANIFEST}) as r:
        assert r.status == 400 and error_codes(await r.json()) == ["MANIFEST_INVALID"]
        assert "OCI-Tag" not in r.headers
    assert await db.fetchval("SELECT count(*) FROM tags") == before


# --- sparse indexes and manifests ----------------------------------------------------------------


def _index(children: list[tuple[str, int, str | None]]) -> dict:
    manifests = []
    for digest, size, arch in children:
        child = {"mediaType": OCI_MANIFEST, "digest": digest, "size": size}
        if arch is not None:
            child["platform"] = {"os": "linux", "architecture": arch}
        manifests.append(child)
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}


MISSING = (sha256(b"arm64 image never pushed"), 1024)


async def test_sparse_index_is_refused_by_default(registry, db):
    amd64, body = await push_image(registry, "acme/multi")
    status, _, error, _ = await _put(registry, "acme/multi", "v1", _index([(amd64, len(body), "amd64"), (*MISSING, "arm64")]))
    assert status == 404 and error_codes(error) == ["MANIFEST_BLOB_UNKNOWN"]
    assert await db.fetchval("SELECT count(*) FROM manifests WHERE media_type = $1", OCI_INDEX) == 0


async def test_sparse_index_with_required_archs(make_registry, db):
    reg = await make_registry(FEATURE_SPARSE_INDEX=True, SPARSE_INDEX_REQUIRED_ARCHS=["amd64"])
    amd64, body = await push_image(reg, "acme/multi")
    # arm64 is optional: the index is stored, names both children, and pulls back byte for byte.
    status, headers, error, index_body = await _put(reg, "acme/multi", "v1", _index([(amd64, len(body), "amd64"), (*MISSING, "arm64")]))
    assert status == 201, error
    async with reg.http.get(reg.v2("acme/multi/manifests/v1"), headers={"Accept": OCI_INDEX}) as r:
        assert r.status == 200 and await r.read() == index_body
    async with reg.http.get(reg.v2(f"acme/multi/manifests/{MISSING[0]}")) as r:
        assert r.status == 404 and error_codes(await r.json()) == ["MANIFEST_UNKNOWN"]
    # The present child is held by the index (gc keeps it), the missing one is not recorded.
    children = await db.fetch(
        "SELECT c.digest FROM manifest_children mc JOIN manifests p ON p.id = mc.parent_id "
        "JOIN manifests c ON c.id = mc.child_id WHERE p.digest = $1", sha256(index_body))
    assert [r["digest"] for r in children] == [amd64]
    # A required architecture, or a child without an architecture, must be present.
    for arch in ("amd64", None):
        status, _, error, _ = await _put(reg, "acme/multi", "v2", _index([(*MISSING, arch)]))
        assert status == 404 and error_codes(error) == ["MANIFEST_BLOB_UNKNOWN"], arch
        assert "SPARSE_INDEX_REQUIRED_ARCHS" in error["errors"][0]["message"]


async def test_sparse_index_without_required_archs_requires_every_child(make_registry):
    reg = await make_registry(FEATURE_SPARSE_INDEX=True)
    status, _, error, _ = await _put(reg, "acme/multi", "v1", _index([(*MISSING, "arm64")]))
    assert status == 404 and error_codes(error) == ["MANIFEST_BLOB_UNKNOWN"]


async def test_sparse_manifests_allow_missing_layers_and_children(make_registry, registry):
    config, present = b'{"os":"linux","architecture":"amd64"}', os.urandom(512)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
           "layers": [descriptor(LAYER_GZIP, b"layer never pushed"), descriptor(LAYER_GZIP, present)]}
    for reg in (registry, await make_registry(MERIDIAN_SPARSE_MANIFESTS=True)):
        await push_blob(reg, "acme/sparse", config)
        await push_blob(reg, "acme/sparse", present)
    status, _, error, _ = await _put(registry, "acme/sparse", "v1", doc)
    assert status == 404 and error_codes(error) == ["MANIFEST_BLOB_UNKNOWN"]  # the default
    sparse = reg
    status, _, error, body = await _put(sparse, "acme/sparse", "v1", doc)
    assert status == 201, error
    async with sparse.http.get(sparse.v2(f"acme/sparse/blobs/{sha256(b'layer never pushed')}")) as r:
        assert r.status == 404 and error_codes(await r.json()) == ["BLOB_UNKNOWN"]
    async with sparse.http.get(sparse.v2(f"acme/sparse/blobs/{sha256(present)}")) as r:
        assert r.status == 200 and await r.read() == present
    status, _, error, _ = await _put(sparse, "acme/sparse", "index", _index([(sha256(body), len(body), "amd64"), (*MISSING, None)]))
    assert status == 201, error
    # The config is never optional: clients read it first.
    doc_without_config = dict(doc, config=descriptor(OCI_CONFIG, b'{"never":"pushed"}'))
    status, _, error, _ = await _put(sparse, "acme/sparse", "v2", doc_without_config)
    assert status == 404 and error_codes(error) == ["MANIFEST_BLOB_UNKNOWN"]
