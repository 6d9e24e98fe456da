"""A hypothesis-driven fuzzer of /v2 (issue 11): names, digests, references, query parameters,
headers, manifest bodies and Content-Range, sent as raw HTTP to a real running registry (PostgreSQL,
NATS, local storage). The only assertion is the issue's: no input gets a 5xx.

The registry is served by the test's event loop, so hypothesis (which is synchronous) runs in a
thread and talks to it over sockets. Examples are bounded and derandomized: CI runs the same inputs
every time, in well under a minute.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, push_blob, push_image, sha256

SETTINGS = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                    suppress_health_check=list(HealthCheck))


class RawHttp:
    """Blocking HTTP/1.1 over a socket, bytes exactly as given (no client-side validation)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port

    def request(self, method: str, target: bytes, headers: Sequence[tuple[bytes, bytes]] = (), body: bytes = b"") -> int:
        head = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: fuzz", b"Connection: close"]
        head += [name + b": " + value for name, value in headers]
        if body or method in ("PUT", "POST", "PATCH"):
            head.append(b"Content-Length: " + str(len(body)).encode())
        with socket.create_connection((self.host, self.port), timeout=30) as sock:
            sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
            received = b""
            while b"\r\n" not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    raise AssertionError(f"connection closed without an answer: {method} {target[:200]!r}")
                received += chunk
            status = int(received.split(b" ", 2)[1])
            while chunk:  # read to the end so the server never sees a reset mid-answer
                chunk = sock.recv(65536)
        return status

    def check(self, method: str, target: bytes, headers: Sequence[tuple[bytes, bytes]] = (), body: bytes = b"") -> int:
        status = self.request(method, target, headers, body)
        assert status < 500, f"{status} for {method} {target[:300]!r} headers={headers!r:.300} body={body[:300]!r}"
        return status


def encode_text(text: str) -> bytes:
    """Percent-encoded UTF-8, lone surrogates included (as the bytes a hostile client would send)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="/:@").encode()


# --- strategies --------------------------------------------------------------------------------------

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
NASTY = st.sampled_from(["\x00", "\ud800", "\udfff", "..", "/", "%00", "\n", " ", "é", "\u202e", "A" * 300, "-1",
                         "9" * 25, "NaN", "1e20", "", ":", "@", "sha256:", "+", "_"])
TEXT = st.one_of(ANY_TEXT, NASTY, st.lists(st.one_of(NASTY, ANY_TEXT), min_size=1, max_size=4).map("".join))
VALID_NAMES = st.sampled_from(["acme/app", "acme/nope", "other/x", "acme/a/b/c"])
NAMES = st.one_of(VALID_NAMES, TEXT, st.tuples(VALID_NAMES, TEXT).map(lambda p: p[0] + p[1]))
HEX = "0123456789abcdef"
DIGESTS = st.one_of(
    st.text(HEX, min_size=64, max_size=64).map(lambda h: "sha256:" + h),
    st.text(HEX, min_size=128, max_size=128).map(lambda h: "sha512:" + h),
    st.tuples(st.sampled_from(["sha256", "sha512", "SHA256", "md5", "sha256+b64", ""]), TEXT).map(":".join),
    TEXT,
)
REFERENCES = st.one_of(st.sampled_from(["v1", "latest"]), DIGESTS, TEXT)
HEADER_NAMES = st.one_of(
    st.sampled_from([b"Accept", b"Content-Type", b"Authorization", b"Range", b"Content-Range", b"X-Request-ID",
                     b"User-Agent", b"Docker-Content-Digest"]),
    st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20).map(str.encode),
)
# Header values: any bytes but CR and LF (which would end the header), so invalid UTF-8 and NUL too.
HEADER_VALUES = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    TEXT.map(lambda t: t.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")),
    st.sampled_from([b"Basic", b"Bearer", b"Bearer x.y.z", b"bytes=0-" + b"9" * 30, b"bytes=-5", b"application/json"]),
)
HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=4)
NUMBERS = st.one_of(st.integers(-(2 ** 70), 2 ** 70).map(str), st.sampled_from(["", "NaN", "inf", "1e20", "0x10", "9" * 500]),
                    TEXT)
CONTENT_RANGES = st.one_of(
    st.tuples(st.integers(-5, 2 ** 70), st.integers(-5, 2 ** 70)).map(lambda p: f"{p[0]}-{p[1]}"),
    st.tuples(st.integers(0, 2 ** 70), st.integers(0, 2 ** 70)).map(lambda p: f"bytes {p[0]}-{p[1]}"),
    st.sampled_from(["0-", "-0", "bytes=0-4", "0-4/5", "0-" + "9" * 5000, "garbage", " 0-4 "]),
    TEXT,
)


def json_values(max_leaves: int = 20):
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.floats(allow_nan=False),
                        TEXT)
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(TEXT, inner, max_size=4)),
                        max_leaves=max_leaves)


def descriptors():
    return st.fixed_dictionaries({}, optional={
        "mediaType": st.one_of(st.sampled_from([OCI_CONFIG, OCI_MANIFEST, "application/vnd.oci.image.layer.v1.tar+gzip"]),
                               TEXT),
        "digest": DIGESTS,
        "size": st.one_of(st.integers(-(2 ** 70), 2 ** 70), json_values(4)),
        "annotations": st.one_of(st.dictionaries(TEXT, TEXT, max_size=3), json_values(4)),
        "platform": st.one_of(st.fixed_dictionaries({"os": TEXT, "architecture": TEXT}), json_values(4)),
        "urls": st.lists(TEXT, max_size=2),
    })


MANIFESTS = st.one_of(
    st.fixed_dictionaries({"schemaVersion": st.sampled_from([2, 2, 1, "2", None])}, optional={
        "mediaType": st.one_of(st.sampled_from([OCI_MANIFEST, OCI_INDEX]), TEXT),
        "artifactType": TEXT,
        "config": descriptors(),
        "layers": st.one_of(st.lists(descriptors(), max_size=3), json_values(4)),
        "manifests": st.one_of(st.lists(descriptors(), max_size=3), json_values(4)),
        "subject": st.one_of(descriptors(), json_values(4)),
        "annotations": st.one_of(st.dictionaries(TEXT, TEXT, max_size=4), json_values(4)),
    }).map(lambda doc: json.dumps(doc).encode()),
    json_values().map(lambda doc: json.dumps(doc).encode()),
    st.integers(1, 200_000).map(lambda depth: b'{"schemaVersion":2,"x":' + b"[" * depth + b"]" * depth + b"}"),
    st.binary(max_size=200),
)


# --- the fuzz tests ----------------------------------------------------------------------------------


async def _seed(registry) -> dict:
    """Something to find: an image tagged v1 in acme/app, so some inputs reach the deeper paths.
    Returns that image's manifest (whose config and layers are in acme/app)."""
    _, body = await push_image(registry, "acme/app", "v1", labels={"a": "b"})
    await push_blob(registry, "acme/app", os.urandom(64))
    return json.loads(body)


async def test_fuzz_routes_names_digests_references_query_and_headers(registry):
    await _seed(registry)
    http = RawHttp(registry.url)
    routes = ["manifests/{ref}", "blobs/{digest}", "blobs/uploads/", "blobs/uploads/{text}", "tags/list", "referrers/{digest}"]

    @settings(SETTINGS, max_examples=400)
    @given(method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"]), name=NAMES,
           route=st.sampled_from(routes + ["_catalog", "", "auth"]), ref=REFERENCES, digest=DIGESTS, text=TEXT,
           query=st.lists(st.tuples(st.sampled_from(["n", "last", "digest", "mount", "from", "tag", "artifactType", "scope",
                                                     "service"]) | TEXT,
                                    st.one_of(NUMBERS, DIGESTS, NAMES, TEXT)), max_size=4),
           headers=HEADERS, body=st.one_of(st.just(b""), st.binary(max_size=64)))
    def one(method, name, route, ref, digest, text, query, headers, body):
        path = route if route in ("_catalog", "", "auth") else f"{name}/{route}"
        path = path.replace("{ref}", ref).replace("{digest}", digest).replace("{text}", text)
        target = b"/v2/" + encode_text(path)
        if query:
            target += b"?" + b"&".join(encode_text(k).replace(b"/", b"%2F") + b"=" + encode_text(v).replace(b"/", b"%2F")
                                       for k, v in query)
        http.check(method, target, headers, body if method in ("PUT", "POST", "PATCH") else b"")

    await asyncio.to_thread(one)


def valid_around(image: dict):
    """Manifests whose config and layers exist, with fuzzed annotations, artifactType and subject: the
    inputs that get past every structural check and reach the database."""
    return st.fixed_dictionaries({}, optional={
        "annotations": st.dictionaries(TEXT, TEXT, max_size=4),
        "artifactType": TEXT,
        "subject": descriptors(),
    }).map(lambda extra: json.dumps({**image, **extra}).encode())


async def test_fuzz_manifest_bodies(registry):
    image = await _seed(registry)
    http = RawHttp(registry.url)

    @settings(SETTINGS, max_examples=150)
    @given(body=valid_around(image), by_digest=st.booleans())
    def nearly_valid(body, by_digest):
        reference = b"sha256:" + hashlib.sha256(body).hexdigest().encode() if by_digest else b"fuzz"
        http.check("PUT", b"/v2/acme/app/manifests/" + reference, [(b"Content-Type", OCI_MANIFEST.encode())], body)

    await asyncio.to_thread(nearly_valid)

    @settings(SETTINGS, max_examples=150)
    @given(body=MANIFESTS, reference=st.one_of(st.sampled_from(["v1", "fuzz", "latest"]), REFERENCES),
           content_type=st.one_of(st.sampled_from([OCI_MANIFEST, OCI_INDEX, "application/json", ""]), TEXT),
           by_digest=st.booleans())
    def one(body, reference, content_type, by_digest):
        if by_digest:
            reference = "sha256:" + hashlib.sha256(body).hexdigest()
        headers = [(b"Content-Type", content_type.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b""))]
        http.check("PUT", b"/v2/acme/app/manifests/" + encode_text(reference), headers, body)

    await asyncio.to_thread(one)


async def test_fuzz_chunked_uploads_and_content_range(registry):
    http = RawHttp(registry.url)
    loop = asyncio.get_running_loop()

    async def open_session() -> bytes:
        async with registry.http.post(registry.v2("acme/chunks/blobs/uploads/")) as r:
            assert r.status == 202
            return r.headers["Location"].encode()

    @settings(SETTINGS, max_examples=150)
    @given(content_range=CONTENT_RANGES, data=st.binary(max_size=32), length=st.one_of(st.none(), NUMBERS),
           final=st.booleans(), digest=st.one_of(DIGESTS, st.just("good")))
    def one(content_range, data, length, final, digest):
        location = asyncio.run_coroutine_threadsafe(open_session(), loop).result()
        header = content_range.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")
        http.check("PATCH", location, [(b"Content-Range", header), (b"Content-Type", b"application/octet-stream")], data)
        if final:
            wanted = sha256(data) if digest == "good" else digest
            http.check("PUT", location + b"?digest=" + encode_text(wanted), [], b"")
        http.check("GET", location)
        http.check("DELETE", location)

    await asyncio.to_thread(one)


async def test_fuzz_basic_credentials_on_v2_auth(world):
    http = RawHttp(world.url)

    @settings(SETTINGS, max_examples=150)
    @given(raw=st.one_of(
        st.binary(max_size=40).map(base64.b64encode),
        st.tuples(TEXT, TEXT).map(lambda p: base64.b64encode(f"{p[0]}:{p[1]}".encode("utf-8", "surrogatepass"))),
        TEXT.map(lambda t: base64.b64encode(t.encode("utf-8", "surrogatepass"))),
        st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    ), scheme=st.sampled_from([b"Basic", b"basic", b"Bearer", b""]), scope=st.one_of(st.just(""), TEXT))
    def one(raw, scheme, scope):
        target = b"/v2/auth?service=" + encode_text(world.reg.host)
        if scope:
            target += b"&scope=" + encode_text(scope)
        http.check("GET", target, [(b"Authorization", scheme + b" " + raw)])

    await asyncio.to_thread(one)
