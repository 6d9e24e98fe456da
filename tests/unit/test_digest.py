from __future__ import annotations

import hashlib

import pytest

from shared.digest import InvalidDigest, digest_of, parse_digest
from shared.storage.paths import blob as blob_path


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


def test_content_address():
    digest = digest_of(b"x")
    assert blob_path(digest) == f"sha256/{digest[7:9]}/{digest[7:]}"
