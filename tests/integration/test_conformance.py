"""The OCI distribution-spec conformance suite (main, every optional test on), data set by data set.

The Go suite itself cannot be built by `./meridian test` on a fresh Debian machine (docs/decisions.md
"The conformance suite, in Python"), so this module generates the same data sets and makes the same
requests and checks: push (every blob API, manifests by digest, by tag and with `?tag=`), tag list
with `last`, HEAD and GET of manifests and blobs, referrers with and without the artifactType filter,
and deletes that take effect at once. The blob APIs run for sha256 and sha512."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import pytest

from tests.helpers import error_codes

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
EXAMPLE_1 = "application/vnd.example.oci.conformance.config1+json"  # the suite's mtExampleConf1/2
EXAMPLE_2 = "application/vnd.example.oci.conformance.config2+json"
OCTET = "application/octet-stream"
REPO, REPO2 = "conformance/repo1", "conformance/repo2"
CHUNK = 1024  # the suite's chunkMin; Meridian advertises no larger minimum by default


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


# --- data generation (testdata.go) ----------------------------------------------------------------


@dataclass
class DataSet:
    algorithm: str = "sha256"
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # digest -> (media type, body)
    order: list[str] = field(default_factory=list)  # push order: children first
    tags: dict[str, str] = field(default_factory=dict)
    tag_param: set[str] = field(default_factory=set)  # manifests pushed with ?tag= (their tags ride along)
    referrers: dict[str, list[dict]] = field(default_factory=dict)  # subject -> descriptors expected
    not_pushed: set[str] = field(default_factory=set)  # sparse: named but never pushed
    bad_digest: set[str] = field(default_factory=set)  # bodies that no longer match their digest

    def blob(self, data: bytes, media_type: str, **extra) -> dict:
        digest = digest_of(data, self.algorithm)
        self.blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def layer(self, *, compressed: bool = True) -> tuple[dict, str]:
        """A random tar layer; (descriptor, diff id)."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            content = os.urandom(256)
            info = tarfile.TarInfo(f"layer-{os.urandom(4).hex()}.bin")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        diff_id = digest_of(raw.getvalue(), self.algorithm)
        if not compressed:
            return self.blob(raw.getvalue(), LAYER_TAR), diff_id
        return self.blob(gzip.compress(raw.getvalue()), LAYER_GZIP), diff_id

    def config(self, diff_ids: list[str], platform: dict | None = None, extra: dict | None = None) -> dict:
        doc = {**(platform or {"os": "linux", "architecture": "amd64"}), "rootfs": {"type": "layers", "diff_ids": diff_ids},
               "config": {}, **(extra or {})}
        return self.blob(json.dumps(doc).encode(), OCI_CONFIG)

    def put(self, doc: dict, tag: str | None = None) -> dict:
        body = json.dumps(doc).encode()
        digest = digest_of(body, self.algorithm)
        self.manifests[digest] = (doc["mediaType"], body)
        self.order.append(digest)
        if tag:
            self.tags[tag] = digest
        described = {"mediaType": doc["mediaType"], "digest": digest, "size": len(body)}
        if "subject" in doc:
            goal = dict(described)
            if doc.get("artifactType"):
                goal["artifactType"] = doc["artifactType"]
            elif doc["mediaType"] == OCI_MANIFEST:
                goal["artifactType"] = doc["config"]["mediaType"]
            if doc.get("annotations"):
                goal["annotations"] = doc["annotations"]
            self.referrers.setdefault(doc["subject"]["digest"], []).append(goal)
        return described

    def image(self, *, tag: str | None = None, layers: int = 2, compressed: bool = True, platform: dict | None = None,
              artifact_type: str | None = None, config_type: str | None = None, config_bytes: bytes | None = None,
              layer_type: str | None = None, layer_bytes: bytes | None = None, subject: dict | None = None,
              annotations: dict | None = None, data_field: bool = False, extra_field: bool = False) -> dict:
        if config_type is not None:
            layer_descs = [self.blob(layer_bytes if layer_bytes is not None else os.urandom(64), layer_type or OCTET)
                           for _ in range(layers)]
            config = self.blob(config_bytes if config_bytes is not None else b"{}", config_type)
        else:
            made = [self.layer(compressed=compressed) for _ in range(layers)]
            layer_descs = [d for d, _ in made]
            config = self.config([diff for _, diff in made], platform,
                                 {"x-custom": os.urandom(4).hex()} if extra_field else None)
        if data_field:
            import base64
            config["data"] = base64.b64encode(self.blobs[config["digest"]]).decode()
        doc: dict = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layer_descs}
        if artifact_type:
            doc["artifactType"] = artifact_type
        if subject:
            doc["subject"] = subject
        if annotations:
            doc["annotations"] = {**annotations, "org.example.unique": os.urandom(6).hex()}
        if extra_field:
            doc["x-custom-field"] = {"random": os.urandom(4).hex()}
        described = self.put(doc, tag)
        if platform:
            described["platform"] = platform
        return described

    def index(self, children: list[dict], *, tag: str | None = None, artifact_type: str | None = None,
              subject: dict | None = None, annotations: dict | None = None, extra_field: bool = False) -> dict:
        doc: dict = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        if artifact_type:
            doc["artifactType"] = artifact_type
        if subject:
            doc["subject"] = subject
        if annotations:
            doc["annotations"] = {**annotations, "org.example.unique": os.urandom(6).hex()}
        if extra_field:
            doc["x-custom-field"] = os.urandom(4).hex()
        return self.put(doc, tag)

    def multi_platform(self, tag: str | None = None, **image_options) -> dict:
        extra = image_options.pop("extra_field", False)
        children = [self.image(platform={"os": "linux", "architecture": arch}, extra_field=extra, **image_options)
                    for arch in ("amd64", "arm64")]
        return self.index(children, tag=tag, extra_field=extra)


HELLO = {"org.opencontainers.conformance": "hello conformance test"}
ARTIFACT: dict[str, Any] = dict(artifact_type=EXAMPLE_1, config_type=OCI_EMPTY, config_bytes=b"{}", layers=1, layer_type=EXAMPLE_1)


def _image(d: DataSet): d.image(tag="image")
def _image_uncompressed(d: DataSet): d.image(tag="image-uncompressed", compressed=False)
def _large_manifest(d: DataSet): d.image(tag="large-manifest", annotations={f"large-annotation-{i}": "A" * 10000 for i in range(390)})
def _index(d: DataSet): d.multi_platform("index")
def _nested_index(d: DataSet): d.index([d.multi_platform(), d.multi_platform()], tag="index-of-index")
def _empty_index(d: DataSet): d.index([], tag="index")
def _artifact(d: DataSet): d.image(tag="artifact", **ARTIFACT)
def _artifact_index(d: DataSet): d.multi_platform("artifact-index", **ARTIFACT)
def _artifact_without_layers(d: DataSet):
    d.image(tag="artifact-without-layers", **{**ARTIFACT, "layer_type": OCI_EMPTY, "layer_bytes": b"{}"})
def _data_field(d: DataSet): d.image(tag="data-field", data_field=True)
def _custom_fields(d: DataSet): d.multi_platform("custom-fields", extra_field=True)
def _no_layers(d: DataSet): d.image(tag="no-layers", layers=0)
def _sha512(d: DataSet): d.multi_platform()


def _artifacts_with_subject(d: DataSet):
    subject = d.image(tag="image")
    d.image(subject=subject)
    d.image(subject=subject, annotations=HELLO, tag="tagged-artifact1", **ARTIFACT)
    d.image(subject=subject, annotations=HELLO, tag="tagged-artifact2", **{**ARTIFACT, "artifact_type": EXAMPLE_2, "layer_type": OCTET})


def _index_with_subject(d: DataSet):
    subject = d.multi_platform("index")
    children = [d.image(platform={"os": "linux", "architecture": a}, **ARTIFACT) for a in ("amd64", "arm64")]
    d.index(children, tag="tagged-artifact", artifact_type=EXAMPLE_1, subject=subject, annotations=HELLO)


def _missing_subject(d: DataSet):
    subject = {"mediaType": OCI_MANIFEST, "size": 123, "digest": digest_of(b"missing content")}
    d.image(subject=subject, annotations=HELLO, tag="tagged-artifact", **ARTIFACT)


def _non_distributable(d: DataSet):
    foreign: list[dict[str, Any]] = []
    diff_ids: list[str] = []
    for media_type, size in ((LAYER_ND_GZIP, 123456), (LAYER_ND, 12345)):
        digest = digest_of(os.urandom(256))
        diff_ids.append(digest)
        foreign.append({"mediaType": media_type, "digest": digest, "size": size,
                        "urls": [f"https://store.example.com/blobs/sha256/{digest.split(':')[1]}"]})
    normal, diff_id = d.layer()
    config = d.config([*diff_ids, diff_id])
    d.put({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": foreign + [normal]},
          "non-distributable-image")


def _sparse(d: DataSet):
    d.image(tag="sparse-image")
    missing_layer = next(k for k, v in d.blobs.items() if v[:2] == b"\x1f\x8b")  # the first gzip layer
    del d.blobs[missing_layer]
    present = d.image(platform={"os": "linux", "architecture": "amd64"})
    absent = digest_of(os.urandom(1024))
    d.not_pushed.add(absent)
    d.index([present, {"mediaType": OCI_MANIFEST, "digest": absent, "size": 1024,
                       "platform": {"os": "linux", "architecture": "arm64"}}], tag="sparse-index")


def _tag_param(name: str):
    def build(d: DataSet):
        d.multi_platform(name)
        for i, digest in enumerate(d.order):
            d.tags[f"{name}-{i}"] = digest
        d.tag_param.update(d.order)
    return build


def _bad_digest(d: DataSet):
    d.image()
    digest = d.order[0]
    media_type, body = d.manifests[digest]
    d.manifests[digest] = (media_type, body + b"  ")
    d.bad_digest.add(digest)


DATA_SETS = {
    "image": (_image, "sha256", {}), "image-uncompressed": (_image_uncompressed, "sha256", {}),
    "large-manifest": (_large_manifest, "sha256", {}), "index": (_index, "sha256", {}),
    "nested-index": (_nested_index, "sha256", {}), "empty-index": (_empty_index, "sha256", {}),
    "artifact": (_artifact, "sha256", {}), "artifact-index": (_artifact_index, "sha256", {}),
    "artifact-without-layers": (_artifact_without_layers, "sha256", {}),
    "artifacts-with-subject": (_artifacts_with_subject, "sha256", {}),
    "index-with-subject": (_index_with_subject, "sha256", {}), "missing-subject": (_missing_subject, "sha256", {}),
    "data-field": (_data_field, "sha256", {}), "non-distributable-layers": (_non_distributable, "sha256", {}),
    "custom-fields": (_custom_fields, "sha256", {}), "no-layers": (_no_layers, "sha256", {}),
    "sparse": (_sparse, "sha256", {"MERIDIAN_SPARSE_MANIFESTS": True}),
    "sha512": (_sha512, "sha512", {}),
    "tag-param-sha256": (_tag_param("tag-param-sha256"), "sha256", {}),
    "tag-param-sha512": (_tag_param("tag-param-sha512"), "sha512", {}),
    "bad-digest-image": (_bad_digest, "sha256", {}),
}


# --- the requests (api.go) ------------------------------------------------------------------------


class Client:
    def __init__(self, reg):
        self.reg = reg

    def url(self, path: str) -> str:
        return self.reg.url + path if path.startswith("/") else path

    async def post_put(self, repo: str, digest: str, data: bytes) -> int:
        async with self.reg.http.post(self.reg.v2(f"{repo}/blobs/uploads/")) as r:
            assert r.status == 202 and r.headers["Location"]
            location = urljoin(self.reg.url + "/", r.headers["Location"])
        async with self.reg.http.put(location, params={"digest": digest}, data=data,
                                     headers={"Content-Type": OCTET}) as r:
            if r.status == 201:
                assert r.headers["Location"] and r.headers["Docker-Content-Digest"] == digest
            return r.status

    async def post_only(self, repo: str, digest: str, data: bytes) -> int:
        async with self.reg.http.post(self.reg.v2(f"{repo}/blobs/uploads/"), params={"digest": digest}, data=data,
                                      headers={"Content-Type": OCTET}) as r:
            if r.status == 201:
                assert r.headers["Location"] and r.headers["Docker-Content-Digest"] == digest
            return r.status

    async def stream(self, repo: str, digest: str, data: bytes) -> int:
        async with self.reg.http.post(self.reg.v2(f"{repo}/blobs/uploads/")) as r:
            assert r.status == 202
            location = urljoin(self.reg.url + "/", r.headers["Location"])
        async with self.reg.http.patch(location, data=data, headers={"Content-Type": OCTET}) as r:
            assert r.status == 202, await r.text()
            assert r.headers["Range"] == f"0-{len(data) - 1}"
            location = urljoin(self.reg.url + "/", r.headers["Location"])
        async with self.reg.http.put(location, params={"digest": digest}) as r:
            return r.status

    async def chunked(self, repo: str, digest: str, data: bytes, *, put_last: bool = False,
                      out_of_order: bool = False) -> int:
        async with self.reg.http.post(self.reg.v2(f"{repo}/blobs/uploads/"), headers={"Content-Length": "0"}) as r:
            assert r.status == 202
            minimum = int(r.headers.get("OCI-Chunk-Min-Length", "0"))
            location = urljoin(self.reg.url + "/", r.headers["Location"])
        size = max(CHUNK, minimum)
        chunks = [(i, data[i:i + size]) for i in range(0, len(data), size)] or [(0, b"")]
        last = chunks.pop() if put_last and len(chunks) > 1 else None
        if out_of_order and len(chunks) > 1:
            start, chunk = chunks[1]
            async with self.reg.http.patch(location, data=chunk, headers={
                    "Content-Type": OCTET, "Content-Range": f"{start}-{start + len(chunk) - 1}"}) as r:
                assert r.status == 416, await r.text()
            async with self.reg.http.get(location) as r:  # recover: ask where the upload stands
                assert r.status == 204 and r.headers["Range"] == "0-0"
                location = urljoin(self.reg.url + "/", r.headers["Location"])
        for start, chunk in chunks:
            async with self.reg.http.patch(location, data=chunk, headers={
                    "Content-Type": OCTET, "Content-Range": f"{start}-{start + len(chunk) - 1}"}) as r:
                assert r.status == 202, await r.text()
                assert r.headers["Range"] == f"0-{start + len(chunk) - 1}"
                location = urljoin(self.reg.url + "/", r.headers["Location"])
        headers = {"Content-Type": OCTET}
        body = b""
        if last is not None:
            start, body = last
            headers["Content-Range"] = f"{start}-{start + len(body) - 1}"
        async with self.reg.http.put(location, params={"digest": digest}, data=body, headers=headers) as r:
            return r.status

    async def push_blob(self, repo: str, digest: str, data: bytes, how: int = 0) -> None:
        method = (self.post_put, self.post_only, self.stream, self.chunked)[how % 4]
        assert await method(repo, digest, data) == 201, method.__name__

    async def head_blob(self, repo: str, digest: str) -> int:
        async with self.reg.http.head(self.reg.v2(f"{repo}/blobs/{digest}")) as r:
            return r.status

    async def check_blob(self, repo: str, digest: str, data: bytes) -> None:
        async with self.reg.http.head(self.reg.v2(f"{repo}/blobs/{digest}")) as r:
            assert r.status == 200 and int(r.headers["Content-Length"]) == len(data)
            assert r.headers.get("Docker-Content-Digest", digest) == digest
        async with self.reg.http.get(self.reg.v2(f"{repo}/blobs/{digest}")) as r:
            assert r.status == 200 and await r.read() == data

    async def delete_blob(self, repo: str, digest: str) -> None:
        async with self.reg.http.delete(self.reg.v2(f"{repo}/blobs/{digest}")) as r:
            assert r.status == 202, await r.text()
        assert await self.head_blob(repo, digest) == 404  # atomic


# --- the data-set flow (run.go TestPush, TestList, TestHead, TestPull, TestReferrers, TestDelete) ---


async def _run_data_set(reg, data: DataSet) -> None:
    tags = await _push(reg, data)
    await _list(reg, tags)
    await _head_and_pull(reg, data, tags)
    await _referrers(reg, data)
    await _delete(reg, data, tags)


async def _push(reg, data: DataSet) -> dict[str, str]:
    """Blobs through every API in turn, manifests by digest (with `?tag=` where the data set says),
    then by tag; returns the tags that must exist."""
    client = Client(reg)
    for i, (digest, blob) in enumerate(data.blobs.items()):
        await client.push_blob(REPO, digest, blob, i)
    for digest in data.order:
        media_type, body = data.manifests[digest]
        params = [("tag", t) for t, d in data.tags.items() if d == digest] if digest in data.tag_param else None
        async with reg.http.put(reg.v2(f"{REPO}/manifests/{digest}"), data=body, params=params,
                                headers={"Content-Type": media_type}) as r:
            if digest in data.bad_digest:
                assert r.status == 400 and error_codes(await r.json()) == ["DIGEST_INVALID"]
                continue
            assert r.status == 201, await r.text()
            assert r.headers["Location"] and r.headers["Docker-Content-Digest"] == digest
            subject = json.loads(body).get("subject")
            if subject:
                assert r.headers["OCI-Subject"] == subject["digest"]
            if params:
                assert r.headers.getall("OCI-Tag") == [t for _, t in params]
    tags = {t: d for t, d in data.tags.items() if d not in data.bad_digest}
    for tag, digest in tags.items():  # a manifest pushed with ?tag= already has its tags
        if digest in data.tag_param:
            continue
        media_type, body = data.manifests[digest]
        async with reg.http.put(reg.v2(f"{REPO}/manifests/{tag}"), data=body, headers={"Content-Type": media_type}) as r:
            assert r.status == 201, await r.text()
            assert r.headers["Docker-Content-Digest"] == digest
    return tags


async def _list(reg, tags: dict[str, str]) -> None:
    async with reg.http.get(reg.v2(f"{REPO}/tags/list")) as r:
        listed = (await r.json())["tags"] if r.status == 200 else []
        assert r.status == 200 if tags else r.status in (200, 404)
    assert set(tags) <= set(listed)
    if len(listed) >= 2:  # `last`: exactly the tags after it
        ordered = sorted(listed)
        end = len(ordered) // 2
        async with reg.http.get(reg.v2(f"{REPO}/tags/list"), params={"last": ordered[end - 1]}) as r:
            assert r.status == 200 and (await r.json())["tags"] == ordered[end:]


async def _head_and_pull(reg, data: DataSet, tags: dict[str, str]) -> None:
    accept = {"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}
    pushed = [d for d in data.order if d not in data.bad_digest]
    for reference, digest in [(d, d) for d in pushed] + list(tags.items()):
        media_type, body = data.manifests[digest]
        for method in (reg.http.head, reg.http.get):
            async with method(reg.v2(f"{REPO}/manifests/{reference}"), headers=accept) as r:
                assert r.status == 200, reference
                assert r.headers["Content-Type"] == media_type
                assert int(r.headers["Content-Length"]) == len(body)
                assert r.headers["Docker-Content-Digest"] == digest
                if method is reg.http.get:
                    assert await r.read() == body
    client = Client(reg)
    for digest, blob in data.blobs.items():
        await client.check_blob(REPO, digest, blob)
    for digest in data.not_pushed:
        async with reg.http.get(reg.v2(f"{REPO}/manifests/{digest}"), headers=accept) as r:
            assert r.status == 404


async def _referrers(reg, data: DataSet) -> None:
    for subject, goals in data.referrers.items():
        async with reg.http.get(reg.v2(f"{REPO}/referrers/{subject}")) as r:
            assert r.status == 200 and r.headers["Content-Type"] == OCI_INDEX
            found = (await r.json())["manifests"]
        for goal in goals:
            assert any(_matches(entry, goal) for entry in found), goal
        for artifact_type in {g["artifactType"] for g in goals}:
            async with reg.http.get(reg.v2(f"{REPO}/referrers/{subject}"), params={"artifactType": artifact_type}) as r:
                assert r.status == 200 and "artifactType" in r.headers["OCI-Filters-Applied"].split(",")
                filtered = (await r.json())["manifests"]
            assert all(entry["artifactType"] == artifact_type for entry in filtered)
            for goal in goals:
                if goal["artifactType"] == artifact_type:
                    assert any(_matches(entry, goal) for entry in filtered), goal


async def _delete(reg, data: DataSet, tags: dict[str, str]) -> None:
    """Tags, then manifests (parents first), then blobs; each gone at once."""
    for tag in tags:
        async with reg.http.delete(reg.v2(f"{REPO}/manifests/{tag}")) as r:
            assert r.status == 202, await r.text()
        async with reg.http.head(reg.v2(f"{REPO}/manifests/{tag}")) as r:
            assert r.status == 404
    for digest in reversed([d for d in data.order if d not in data.bad_digest]):
        async with reg.http.delete(reg.v2(f"{REPO}/manifests/{digest}")) as r:
            assert r.status == 202, await r.text()
        async with reg.http.head(reg.v2(f"{REPO}/manifests/{digest}")) as r:
            assert r.status == 404
    client = Client(reg)
    for digest in data.blobs:
        await client.delete_blob(REPO, digest)


def _matches(entry: dict, goal: dict) -> bool:
    return (entry["digest"] == goal["digest"] and entry["mediaType"] == goal["mediaType"] and entry["size"] == goal["size"]
            and entry.get("artifactType") == goal.get("artifactType")
            and all((entry.get("annotations") or {}).get(k) == v for k, v in (goal.get("annotations") or {}).items()))


@pytest.mark.parametrize("name", list(DATA_SETS))
async def test_data_set(make_registry, name):
    build, algorithm, config = DATA_SETS[name]
    reg = await make_registry(**config)
    data = DataSet(algorithm)
    build(data)
    await _run_data_set(reg, data)


async def test_sparse_data_set_is_refused_without_sparse_manifests(registry):
    data = DataSet()
    _sparse(data)
    client = Client(registry)
    for digest, blob in data.blobs.items():
        await client.push_blob(REPO, digest, blob)
    for digest in data.order:
        media_type, body = data.manifests[digest]
        async with registry.http.put(registry.v2(f"{REPO}/manifests/{digest}"), data=body, headers={"Content-Type": media_type}) as r:
            if media_type == OCI_INDEX or digest == data.tags["sparse-image"]:
                assert r.status == 404 and error_codes(await r.json()) == ["MANIFEST_BLOB_UNKNOWN"]
            else:
                assert r.status == 201


# --- blob APIs per digest algorithm (run.go TestBlobAPIs) -----------------------------------------


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_blob_apis(registry, algorithm):
    client = Client(registry)
    blob = lambda size: (lambda b: (digest_of(b, algorithm), b))(os.urandom(size))  # noqa: E731
    digest, _ = blob(512)
    async with registry.http.get(registry.v2(f"{REPO}/blobs/{digest}")) as r:  # get-missing
        assert r.status == 404
    for push in ("post_put", "post_only", "stream"):
        digest, data = blob(512)
        assert await getattr(client, push)(REPO, digest, data) == 201, push
        await client.check_blob(REPO, digest, data)
        await client.delete_blob(REPO, digest)
    for options in ({}, {"put_last": True}, {"out_of_order": True}, {"put_last": True, "out_of_order": True}):
        digest, data = blob(CHUNK * 3 - 5)  # chunked multi: three chunks
        assert await client.chunked(REPO, digest, data, **options) == 201, options
        await client.check_blob(REPO, digest, data)
        await client.delete_blob(REPO, digest)
    digest, data = blob(512)  # chunked single
    assert await client.chunked(REPO, digest, data) == 201
    await client.delete_blob(REPO, digest)
    for anonymous in (False, True):  # mount, mount anonymous
        digest, data = blob(512)
        await client.push_blob(REPO2, digest, data)
        params = {"mount": digest} if anonymous else {"mount": digest, "from": REPO2}
        async with registry.http.post(registry.v2(f"{REPO}/blobs/uploads/"), params=params) as r:
            assert r.status == 201 and r.headers["Docker-Content-Digest"] == digest
        await client.check_blob(REPO, digest, data)
        await client.delete_blob(REPO, digest)
        await client.delete_blob(REPO2, digest)
    digest, _ = blob(512)  # mount missing: an upload session instead
    async with registry.http.post(registry.v2(f"{REPO}/blobs/uploads/"), params={"mount": digest, "from": REPO2}) as r:
        assert r.status == 202 and r.headers["Location"]
    async with registry.http.post(registry.v2(f"{REPO}/blobs/uploads/")) as r:  # post cancel
        location = urljoin(registry.url + "/", r.headers["Location"])
    async with registry.http.delete(location, headers={"Content-Length": "0"}) as r:
        assert r.status == 204
    async with registry.http.get(location) as r:
        assert r.status == 404 and error_codes(await r.json()) == ["BLOB_UPLOAD_UNKNOWN"]
    for data in (b"", b"{}"):  # the empty blob and the empty JSON object
        digest = digest_of(data, algorithm)
        await client.push_blob(REPO, digest, data)
        await client.check_blob(REPO, digest, data)
        await client.delete_blob(REPO, digest)
    for push in ("post_only", "post_put", "chunked", "chunked_put_last", "stream"):  # bad digests
        digest, data = blob(CHUNK * 3 - 5)
        data += b"oh no"
        if push == "chunked_put_last":
            status = await client.chunked(REPO, digest, data, put_last=True)
        else:
            status = await getattr(client, push)(REPO, digest, data)
        assert status == 400, push
        assert await client.head_blob(REPO, digest) == 404


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_range_requests(registry, algorithm):
    data = os.urandom(2048)
    digest = digest_of(data, algorithm)
    await Client(registry).push_blob(REPO, digest, data)
    cases = {"bytes=500-1499": (500, 1499), "bytes=500-": (500, 2047), "bytes=-500": (1548, 2047),
             "bytes=2000-5000": (2000, 2047), "bytes=500-0": None, "bytes=5000-10000": None}
    for header, expected in cases.items():
        async with registry.http.get(registry.v2(f"{REPO}/blobs/{digest}"), headers={"Range": header}) as r:
            if expected is None:
                assert r.status == 416, header
                continue
            start, end = expected
            assert r.status == 206, header
            assert r.headers["Content-Range"] == f"bytes {start}-{end}/2048"
            assert int(r.headers["Content-Length"]) == end - start + 1
            assert await r.read() == data[start:end + 1]


# --- the rest of TestAll: ping, empty repository, manifest errors ----------------------------------


async def test_ping_and_empty_repository(registry):
    async with registry.http.get(registry.v2("")) as r:
        assert r.status == 200
    async with registry.http.get(registry.v2(f"{REPO}/tags/list")) as r:
        assert r.status in (200, 404)
        if r.status == 200:
            assert (await r.json())["tags"] == []
    async with registry.http.get(registry.v2(f"{REPO}/referrers/{digest_of(b'nothing')}")) as r:
        assert r.status == 200 and r.headers["Content-Type"] == OCI_INDEX
        assert (await r.json())["manifests"] == []


async def test_manifest_errors(registry):
    async with registry.http.get(registry.v2(f"{REPO}/manifests/{digest_of(os.urandom(1024))}")) as r:
        assert r.status == 404
    async with registry.http.get(registry.v2(f"{REPO}/manifests/missing-{os.urandom(8).hex()}")) as r:
        assert r.status == 404
    data = DataSet()
    data.image(layers=1)
    client = Client(registry)
    for digest, blob in data.blobs.items():
        await client.push_blob(REPO, digest, blob)
    media_type, body = data.manifests[data.order[0]]
    async with registry.http.put(registry.v2(f"{REPO}/manifests/sha256:baddigeststring"), data=body,
                                 headers={"Content-Type": media_type}) as r:
        assert r.status == 400
    async with registry.http.get(registry.v2(f"{REPO}/manifests/sha256:baddigeststring")) as r:
        assert r.status in (400, 404)
