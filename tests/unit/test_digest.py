from __future__ import annotations

import hashlib

import pytest

from shared.digest import InvalidDigest, digest_of, parse_digest
from shared.storage.paths import blob as blob_path

HEX64 = "0123456789abcdef" * 4


def test_sha256_and_sha512():
    data = b"meridian"
    assert digest_of(data) == "sha256:" + hashlib.sha256(data).hexdigest()
    d512 = digest_of(data, "sha512")
    assert d512 == "sha512:" + hashlib.sha512(data).hexdigest()
    assert parse_digest(d512).algorithm == "sha512"
    assert parse_digest(d512).hex == hashlib.sha512(data).hexdigest()


@pytest.mark.parametrize("bad", ["", "sha256", "sha256:", "sha256:ABC", "sha256:" + "0" * 63, "sha512:" + "0" * 64,
                                 "md5:" + "0" * 32, "SHA256:" + "0" * 64, "sha256:" + "g" * 64])
def test_invalid(bad):
    with pytest.raises(InvalidDigest):
        parse_digest(bad)


EDGES = [
    # (value, why it is refused, words of the message)
    (None, "missing", "invalid digest format: None"),
    ("sha256:" + HEX64.upper(), "upper-case hex", "invalid sha256 digest"),
    ("sha256:" + HEX64 + "\n", "a trailing newline (a %0A in a URL)", "invalid digest format"),
    ("sha256:" + HEX64 + " ", "a trailing space", "invalid digest format"),
    (" sha256:" + HEX64, "a leading space", "invalid digest format"),
    ("sha256:" + HEX64 + "0", "one hex digit too many", "invalid sha256 digest"),
    ("sha256::" + HEX64, "two colons", "invalid digest format"),
    ("sha256:" + HEX64 + ":" + HEX64, "two digests", "invalid digest format"),
    ("sha256:" + HEX64[:-2] + "==", "base64 padding", "invalid sha256 digest"),
    ("sha256+b64:" + HEX64, "a registered-looking algorithm we do not serve", "unsupported digest algorithm 'sha256+b64'"),
    ("sha384:" + "0" * 96, "sha384", "unsupported digest algorithm 'sha384'"),
    ("sha256:" + "0" * 128, "sha512 length under sha256", "invalid sha256 digest"),
    ("blake3:" + HEX64, "blake3", "unsupported digest algorithm 'blake3'"),
    ("sha256/" + HEX64, "a slash for a colon", "invalid digest format"),
    ("sha256:../" + HEX64[3:], "a path", "invalid digest format"),
]


@pytest.mark.parametrize("value, why, words", EDGES, ids=[e[1] for e in EDGES])
def test_edge_cases_are_refused_saying_why(value, why, words):
    with pytest.raises(InvalidDigest) as caught:
        parse_digest(value)
    assert words in str(caught.value)


def test_a_valid_digest_keeps_its_text():
    parsed = parse_digest("sha256:" + HEX64)
    assert parsed == "sha256:" + HEX64
    assert (parsed.algorithm, parsed.hex) == ("sha256", HEX64)
    assert parse_digest("sha512:" + HEX64 * 2).hex == HEX64 * 2


def test_content_address():
    digest = digest_of(b"x")
    assert blob_path(digest) == f"sha256/{digest[7:9]}/{digest[7:]}"
    assert blob_path(digest_of(b"x", "sha512")).startswith("sha512/")
