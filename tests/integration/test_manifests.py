"""Manifests, tags, catalog and referrers against real PostgreSQL and NATS."""
from __future__ import annotations

import asyncio
import itertools
import json
import os

import pytest

from tests.helpers import (
    LAYER_GZIP,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    error_codes,
    push_blob,
    push_image,
    sha256,
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


async def put_manifest(reg, name, reference, doc, media_type=None):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    headers = {"Content-Type": media_type or (doc.get("mediaType") if isinstance(doc, dict) else OCI_MANIFEST) or OCI_MANIFEST}
    async with reg.http.put(reg.v2(f"{name}/manifests/{reference}"), data=body, headers=headers) as r:
        return r.status, r.headers, (await r.json() if r.content_type == "application/json" and r.status >= 400 else None)


async def test_put_get_head_by_tag_and_digest(registry):
    digest, body = await push_image(registry, "acme/app", "v1")
    for reference in ("v1", digest):
        async with registry.http.get(registry.v2(f"acme/app/manifests/{reference}")) as r:
            assert r.status == 200
            assert await r.read() == body
            assert r.headers["Content-Type"] == OCI_MANIFEST
            assert r.headers["Docker-Content-Digest"] == digest
        async with registry.http.head(registry.v2(f"acme/app/manifests/{reference}")) as r:
            assert r.status == 200
            assert int(r.headers["Content-Length"]) == len(body)
            assert r.headers["Docker-Content-Digest"] == digest


async def test_docker_schema2_and_manifest_list(registry):
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = os.urandom(1000)
    await push_blob(registry, "acme/docker", config)
    await push_blob(registry, "acme/docker", layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor("application/vnd.docker.container.image.v1+json", config),
        "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", layer)],
    }
    status, headers, _ = await put_manifest(registry, "acme/docker", "amd64", manifest)
    assert status == 201
    child = headers["Docker-Content-Digest"]
    manifest_list = {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": child, "size": len(json.dumps(manifest)),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }
    status, headers, _ = await put_manifest(registry, "acme/docker", "latest", manifest_list)
    assert status == 201
    async with registry.http.get(registry.v2("acme/docker/manifests/latest")) as r:
        assert r.headers["Content-Type"] == DOCKER_LIST


async def test_oci_index_requires_its_children(registry, db):
    child, child_body = await push_image(registry, "acme/multi")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body)}]}
    status, _, _ = await put_manifest(registry, "acme/multi", "latest", index)
    assert status == 201
    missing = dict(index, manifests=[{"mediaType": OCI_MANIFEST, "digest": sha256(b"nope"), "size": 4}])
    before = await db.fetchval("SELECT count(*) FROM manifests")
    status, _, body = await put_manifest(registry, "acme/multi", "broken", missing)
    assert status == 404
    assert error_codes(body) == ["MANIFEST_BLOB_UNKNOWN"]
    assert await db.fetchval("SELECT count(*) FROM manifests") == before


async def test_nested_and_empty_index(registry):
    child, child_body = await push_image(registry, "acme/nest")
    inner = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body)}]}
    inner_body = json.dumps(inner).encode()
    assert (await put_manifest(registry, "acme/nest", sha256(inner_body), inner_body, OCI_INDEX))[0] == 201
    outer = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": OCI_INDEX, "digest": sha256(inner_body), "size": len(inner_body)}]}
    assert (await put_manifest(registry, "acme/nest", "outer", outer))[0] == 201
    assert (await put_manifest(registry, "acme/nest", "empty", {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}))[0] == 201


async def test_manifest_with_missing_layer_is_refused(registry, db):
    config = b"{}"
    await push_blob(registry, "acme/app", config)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(LAYER_GZIP, b"never uploaded")]}
    status, _, body = await put_manifest(registry, "acme/app", "v1", manifest)
    assert status == 404
    assert error_codes(body) == ["MANIFEST_BLOB_UNKNOWN"]
    assert await db.fetchval("SELECT count(*) FROM manifests") == 0
    assert await db.fetchval("SELECT count(*) FROM tags") == 0


async def test_layer_from_another_repository_is_not_visible(registry):
    layer = os.urandom(100)
    await push_blob(registry, "other/repo", layer)
    config = b"{}"
    await push_blob(registry, "acme/app", config)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(LAYER_GZIP, layer)]}
    status, _, body = await put_manifest(registry, "acme/app", "v1", manifest)
    assert status == 404 and error_codes(body) == ["MANIFEST_BLOB_UNKNOWN"]


async def test_wrong_descriptor_size_is_invalid(registry):
    config = b"{}"
    await push_blob(registry, "acme/app", config)
    bad = descriptor(OCI_CONFIG, config)
    bad["size"] = 99
    status, _, body = await put_manifest(registry, "acme/app", "v1",
                                         {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": bad, "layers": []})
    assert status == 400 and error_codes(body) == ["MANIFEST_INVALID"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", json.dumps({"schemaVersion": 1}).encode(),
     json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(),
     json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                 "config": {"mediaType": "bad type", "digest": "sha256:00", "size": 1}}).encode()],
)
async def test_invalid_manifests(registry, body, db):
    status, _, error = await put_manifest(registry, "acme/app", "v1", body, OCI_MANIFEST)
    assert status == 400
    assert error_codes(error) == ["MANIFEST_INVALID"]
    assert await db.fetchval("SELECT count(*) FROM manifests") == 0


async def test_oversize_manifest(registry, db):
    config = b"{}"
    await push_blob(registry, "acme/app", config)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config), "layers": [],
                "annotations": {"padding": "x" * (4 * 1024 * 1024)}}
    status, _, body = await put_manifest(registry, "acme/app", "big", manifest)
    assert status == 413
    assert error_codes(body) == ["SIZE_INVALID"]
    assert await db.fetchval("SELECT count(*) FROM manifests") == 0


async def test_large_manifest_under_the_limit(registry):
    config = b"{}"
    await push_blob(registry, "acme/app", config)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config), "layers": [],
                "annotations": {"padding": "x" * (3 * 1024 * 1024)}}
    assert (await put_manifest(registry, "acme/app", "big", manifest))[0] == 201


async def test_put_by_wrong_digest(registry):
    digest, body = await push_image(registry, "acme/app", "v1")
    status, _, error = await put_manifest(registry, "acme/app", sha256(b"something else"), body)
    assert status == 400 and error_codes(error) == ["DIGEST_INVALID"]


async def test_unknown_manifest_and_repository(registry):
    async with registry.http.get(registry.v2("acme/none/manifests/latest")) as r:
        assert r.status == 404 and error_codes(await r.json()) == ["NAME_UNKNOWN"]
    await push_image(registry, "acme/app", "v1")
    async with registry.http.get(registry.v2("acme/app/manifests/v2")) as r:
        assert r.status == 404 and error_codes(await r.json()) == ["MANIFEST_UNKNOWN"]
    async with registry.http.get(registry.v2(f"acme/app/manifests/{sha256(b'x')}")) as r:
        assert r.status == 404 and error_codes(await r.json()) == ["MANIFEST_UNKNOWN"]
    async with registry.http.get(registry.v2("acme/app/manifests/sha256:nothex")) as r:
        assert r.status == 400 and error_codes(await r.json()) == ["DIGEST_INVALID"]


async def test_delete_manifest_by_digest_and_tag(registry):
    digest, _ = await push_image(registry, "acme/app", "v1")
    async with registry.http.put(registry.v2("acme/app/manifests/v2"), data=_, headers={"Content-Type": OCI_MANIFEST}) as r:
        assert r.status == 201
    async with registry.http.delete(registry.v2("acme/app/manifests/v2")) as r:
        assert r.status == 202
    async with registry.http.get(registry.v2("acme/app/manifests/v2")) as r:
        assert r.status == 404
    async with registry.http.get(registry.v2("acme/app/manifests/v1")) as r:
        assert r.status == 200
    async with registry.http.delete(registry.v2(f"acme/app/manifests/{digest}")) as r:
        assert r.status == 202
    for reference in (digest, "v1"):
        async with registry.http.get(registry.v2(f"acme/app/manifests/{reference}")) as r:
            assert r.status == 404
    async with registry.http.get(registry.v2("acme/app/tags/list")) as r:
        assert (await r.json())["tags"] == []
    async with registry.http.delete(registry.v2(f"acme/app/manifests/{digest}")) as r:
        assert r.status == 404 and error_codes(await r.json()) == ["MANIFEST_UNKNOWN"]


async def test_tag_query_parameters(registry):
    digest, body = await push_image(registry, "acme/app")
    async with registry.http.put(registry.v2(f"acme/app/manifests/{digest}?tag=a&tag=b"), data=body,
                                 headers={"Content-Type": OCI_MANIFEST}) as r:
        assert r.status == 201
    async with registry.http.get(registry.v2("acme/app/tags/list")) as r:
        assert (await r.json())["tags"] == ["a", "b"]


async def test_tags_list_pagination_and_link(registry):
    digest, body = await push_image(registry, "acme/app", "t00")
    names = [f"t{i:02d}" for i in range(12)]
    for name in names[1:]:
        async with registry.http.put(registry.v2(f"acme/app/manifests/{name}"), data=body, headers={"Content-Type": OCI_MANIFEST}) as r:
            assert r.status == 201
    async with registry.http.get(registry.v2("acme/app/tags/list")) as r:
        assert await r.json() == {"name": "acme/app", "tags": names}
        assert "Link" not in r.headers
    seen, url = [], registry.v2("acme/app/tags/list?n=5")
    while url:
        async with registry.http.get(url) as r:
            page = (await r.json())["tags"]
            assert len(page) <= 5
            seen += page
            link = r.headers.get("Link")
            url = registry.url + link.split(";")[0].strip("<>") if link else None
    assert seen == names
    async with registry.http.get(registry.v2("acme/app/tags/list?last=t05")) as r:
        assert (await r.json())["tags"] == names[6:]
    async with registry.http.get(registry.v2("acme/app/tags/list?n=0")) as r:
        assert (await r.json())["tags"] == []


async def test_catalog_pagination(registry):
    for i in range(7):
        await push_image(registry, f"ns{i}/repo")
    async with registry.http.get(registry.v2("_catalog?n=3")) as r:
        assert (await r.json())["repositories"] == ["ns0/repo", "ns1/repo", "ns2/repo"]
        assert r.headers["Link"] == '</v2/_catalog?n=3&last=ns2%2Frepo>; rel="next"'
    async with registry.http.get(registry.v2("_catalog?n=3&last=ns5/repo")) as r:
        assert (await r.json())["repositories"] == ["ns6/repo"]
        assert "Link" not in r.headers


async def test_same_tag_moved_concurrently(registry, db):
    bodies = [await push_image(registry, "acme/race") for _ in range(6)]

    async def move(body):
        async with registry.http.put(registry.v2("acme/race/manifests/latest"), data=body, headers={"Content-Type": OCI_MANIFEST}) as r:
            assert r.status == 201

    await asyncio.gather(*(move(body) for _, body in bodies for _ in range(2)))
    assert await db.fetchval("SELECT count(*) FROM tags WHERE name = 'latest' AND lifetime_end IS NULL") == 1
    live = await db.fetchval("SELECT m.digest FROM tags t JOIN manifests m ON m.id = t.manifest_id "
                             "WHERE t.name = 'latest' AND t.lifetime_end IS NULL")
    async with registry.http.get(registry.v2("acme/race/manifests/latest")) as r:
        assert r.headers["Docker-Content-Digest"] == live
    history = await db.fetch("SELECT lifetime_start, lifetime_end FROM tags WHERE name = 'latest' ORDER BY lifetime_start")
    assert 6 <= len(history) <= 12
    for earlier, later in itertools.pairwise(history):
        assert earlier["lifetime_end"] is not None and earlier["lifetime_end"] <= later["lifetime_start"]


# --- artifacts, subject, referrers, media-type policy -----------------------------------------


async def _artifact(reg, name, subject=None, artifact_type="application/vnd.example.sbom+json",
                    layer_type="application/vnd.example.sbom.layer+json", annotations=None):
    empty = b"{}"
    layer = os.urandom(64)
    await push_blob(reg, name, empty)
    await push_blob(reg, name, layer)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
           "config": descriptor("application/vnd.oci.empty.v1+json", empty), "layers": [descriptor(layer_type, layer)]}
    if subject:
        doc["subject"] = subject
    if annotations:
        doc["annotations"] = annotations
    body = json.dumps(doc).encode()
    status, headers, error = await put_manifest(reg, name, sha256(body), body, OCI_MANIFEST)
    return status, headers, error, body


async def test_artifact_with_subject_and_referrers(make_registry):
    reg = await make_registry(ALLOWED_OCI_ARTIFACT_TYPES={
        "application/vnd.example.sbom+json": ["application/vnd.example.sbom.layer+json"],
        "application/vnd.example.sig+json": ["application/vnd.example.sbom.layer+json"],
    })
    subject_digest, subject_body = await push_image(reg, "acme/app", "v1")
    subject = {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject_body)}
    status, headers, error, sbom = await _artifact(reg, "acme/app", subject, annotations={"org.example": "sbom"})
    assert status == 201, error
    assert headers["OCI-Subject"] == subject_digest
    status, _, error, sig = await _artifact(reg, "acme/app", subject, artifact_type="application/vnd.example.sig+json")
    assert status == 201, error
    async with reg.http.get(reg.v2(f"acme/app/referrers/{subject_digest}")) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == OCI_INDEX
        index = await r.json()
    assert index["mediaType"] == OCI_INDEX
    by_digest = {m["digest"]: m for m in index["manifests"]}
    assert set(by_digest) == {sha256(sbom), sha256(sig)}
    assert by_digest[sha256(sbom)] == {"mediaType": OCI_MANIFEST, "digest": sha256(sbom), "size": len(sbom),
                                       "artifactType": "application/vnd.example.sbom+json", "annotations": {"org.example": "sbom"}}
    async with reg.http.get(reg.v2(f"acme/app/referrers/{subject_digest}?artifactType=application/vnd.example.sig%2Bjson")) as r:
        assert r.headers["OCI-Filters-Applied"] == "artifactType"
        assert [m["digest"] for m in (await r.json())["manifests"]] == [sha256(sig)]
    async with reg.http.get(reg.v2(f"acme/app/referrers/{sha256(b'unknown subject')}")) as r:
        assert r.status == 200
        assert (await r.json())["manifests"] == []


async def test_referrers_of_a_repository_not_pushed_yet(registry):
    async with registry.http.get(registry.v2(f"acme/fresh/referrers/{sha256(b'x')}")) as r:
        assert r.status == 200
        assert await r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    async with registry.http.get(registry.v2("acme/fresh/referrers/sha256:bad")) as r:
        assert r.status == 400 and error_codes(await r.json()) == ["DIGEST_INVALID"]


async def test_chunk_min_length_is_advertised(make_registry):
    plain = await make_registry()
    async with plain.http.post(plain.v2("acme/app/blobs/uploads/")) as r:
        assert r.status == 202 and "OCI-Chunk-Min-Length" not in r.headers
    reg = await make_registry(MERIDIAN_CHUNK_MIN_LENGTH=5 * 1024 * 1024)
    async with reg.http.post(reg.v2("acme/app/blobs/uploads/")) as r:
        assert r.status == 202
        assert r.headers["OCI-Chunk-Min-Length"] == str(5 * 1024 * 1024)


async def test_subject_may_be_missing(make_registry):
    reg = await make_registry(IGNORE_UNKNOWN_MEDIATYPES=True)
    ghost = {"mediaType": OCI_MANIFEST, "digest": sha256(b"not pushed yet"), "size": 14}
    status, headers, error, _ = await _artifact(reg, "acme/app", ghost)
    assert status == 201, error
    assert headers["OCI-Subject"] == ghost["digest"]
    async with reg.http.get(reg.v2(f"acme/app/referrers/{ghost['digest']}")) as r:
        assert len((await r.json())["manifests"]) == 1


async def test_unknown_artifacts_are_accepted_without_an_allow_list(registry):
    """oras' defaults, an unknown artifactType and an artifact with a subject: the image spec forbids
    refusing a manifest only because its artifactType or layer media type is unknown."""
    config, text, tar = b"{}", os.urandom(100), os.urandom(200)
    for blob in (config, text, tar):
        await push_blob(registry, "acme/files", blob)
    oras_default = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": descriptor("application/vnd.unknown.config.v1+json", config),
                    "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", tar,
                                          annotations={"org.opencontainers.image.title": "dir.tar"}),
                               descriptor("text/plain", text, annotations={"org.opencontainers.image.title": "a.txt"})]}
    status, headers, error = await put_manifest(registry, "acme/files", "v1", oras_default)
    assert status == 201, error
    subject = {"mediaType": OCI_MANIFEST, "digest": headers["Docker-Content-Digest"], "size": len(json.dumps(oras_default))}
    status, _, error, unknown = await _artifact(registry, "acme/files", artifact_type="application/vnd.unheard.of+json",
                                                layer_type="application/x-whatever")
    assert status == 201, error
    status, headers, error, referrer = await _artifact(registry, "acme/files", subject, artifact_type="application/vnd.example.sig+json")
    assert status == 201, error
    assert headers["OCI-Subject"] == subject["digest"]
    for reference, body in (("v1", json.dumps(oras_default).encode()), (sha256(unknown), unknown), (sha256(referrer), referrer)):
        async with registry.http.get(registry.v2(f"acme/files/manifests/{reference}")) as r:
            assert r.status == 200 and await r.read() == body
    url = registry.v2(f"acme/files/referrers/{subject['digest']}?artifactType=application/vnd.example.sig%2Bjson")
    async with registry.http.get(url) as r:
        assert r.status == 200 and r.headers["OCI-Filters-Applied"] == "artifactType"
        assert [m["digest"] for m in (await r.json())["manifests"]] == [sha256(referrer)]


async def test_refused_artifact_type_names_the_fix(make_registry, db):
    reg = await make_registry(ALLOWED_OCI_ARTIFACT_TYPES={"application/vnd.example.sbom+json": ["application/vnd.example.sbom.layer+json"]})
    status, _, error, _ = await _artifact(reg, "acme/app", artifact_type="application/vnd.unheard.of+json")
    assert status == 400
    assert error_codes(error) == ["MANIFEST_INVALID"]
    assert "application/vnd.unheard.of+json" in error["errors"][0]["message"]
    assert "ALLOWED_OCI_ARTIFACT_TYPES" in error["errors"][0]["message"]
    assert await db.fetchval("SELECT count(*) FROM manifests") == 0


async def test_refused_layer_type_for_allowed_artifact(make_registry):
    reg = await make_registry(ALLOWED_OCI_ARTIFACT_TYPES={"application/vnd.example.sbom+json": ["text/plain"]})
    status, _, error, _ = await _artifact(reg, "acme/app", layer_type="application/x-unknown")
    assert status == 400 and "application/x-unknown" in error["errors"][0]["message"]


async def test_helm_charts_are_accepted_by_default(registry):
    chart_config = b'{"name":"chart","version":"1.0.0"}'
    chart = os.urandom(500)
    await push_blob(registry, "acme/charts", chart_config)
    await push_blob(registry, "acme/charts", chart)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": descriptor("application/vnd.cncf.helm.config.v1+json", chart_config),
           "layers": [descriptor("application/vnd.cncf.helm.chart.content.v1.tar+gzip", chart)]}
    assert (await put_manifest(registry, "acme/charts", "1.0.0", doc))[0] == 201


async def test_general_oci_support_off_refuses_artifacts(make_registry):
    reg = await make_registry(FEATURE_GENERAL_OCI_SUPPORT=False)
    chart_config = b'{"name":"chart"}'
    await push_blob(reg, "acme/charts", chart_config)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": descriptor("application/vnd.cncf.helm.config.v1+json", chart_config), "layers": []}
    status, _, error = await put_manifest(reg, "acme/charts", "1.0.0", doc)
    assert status == 400 and "FEATURE_GENERAL_OCI_SUPPORT" in error["errors"][0]["message"]
    await push_image(reg, "acme/app", "v1")  # images still work


async def test_ignore_unknown_mediatypes_accepts_anything_well_formed(make_registry):
    reg = await make_registry(IGNORE_UNKNOWN_MEDIATYPES=True, ALLOWED_OCI_ARTIFACT_TYPES={})
    status, _, error, _ = await _artifact(reg, "acme/app", artifact_type="application/vnd.unheard.of+json",
                                          layer_type="application/x-whatever")
    assert status == 201, error


@pytest.mark.parametrize("layer_type", [
    "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
])
async def test_image_layer_types(registry, layer_type):
    config, layer = b'{"os":"linux"}', os.urandom(300)
    await push_blob(registry, "acme/layers", config)
    await push_blob(registry, "acme/layers", layer)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
           "layers": [descriptor(layer_type, layer)]}
    assert (await put_manifest(registry, "acme/layers", "v1", doc))[0] == 201


async def test_non_distributable_layer_need_not_be_pushed(registry):
    config = b'{"os":"windows"}'
    await push_blob(registry, "acme/win", config)
    foreign = descriptor("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", b"lives elsewhere",
                         urls=["https://example.com/layer"])
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config), "layers": [foreign]}
    assert (await put_manifest(registry, "acme/win", "v1", doc))[0] == 201
