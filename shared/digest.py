"""Content digests: sha256 and sha512, parsing and streaming verification."""
from __future__ import annotations

import asyncio
import hashlib
import re

ALGORITHMS = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)\Z")  # \Z: `$` would let a trailing newline in


class InvalidDigest(ValueError):
    pass


class Digest(str):
    """A validated `algorithm:hex` string."""

    __slots__ = ()

    @property
    def algorithm(self) -> str:
        return self.split(":", 1)[0]

    @property
    def hex(self) -> str:
        return self.split(":", 1)[1]


def parse_digest(value: str) -> Digest:
    match = _DIGEST_RE.match(value or "")
    if not match:
        raise InvalidDigest(f"invalid digest format: {value!r}")
    algorithm, hexpart = match.groups()
    if algorithm not in ALGORITHMS:
        raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}: expected sha256 or sha512")
    if len(hexpart) != ALGORITHMS[algorithm] or not re.fullmatch(r"[a-f0-9]+", hexpart):
        raise InvalidDigest(f"invalid {algorithm} digest: {value!r}")
    return Digest(value)


def hasher(algorithm: str = "sha256") -> hashlib._Hash:
    return hashlib.new(algorithm)


def digest_of(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")


async def update_hash(running: hashlib._Hash, block: bytes | bytearray) -> None:
    # hashlib releases the GIL on large updates, so a worker thread lets another core hash.
    if len(block) >= 256 * 1024:
        await asyncio.get_running_loop().run_in_executor(None, running.update, block)
    else:
        running.update(block)


class DigestMismatch(Exception):
    pass


async def verified(chunks, digest: Digest, expected_size: int | None = None):
    """Pass bytes through; raise DigestMismatch at the end if they do not hash to `digest`, so an
    atomic storage write fed by this stream is abandoned and nothing lands at the content address.
    A block is still hashed while the next is asked for: `chunks` must not change a block it yielded.
    A stream closed early leaves its last hash to finish on its thread (nothing reads it)."""
    running = hasher(digest.algorithm)
    size = 0
    loop = asyncio.get_running_loop()
    # Block N is hashed on a worker thread while the consumer writes it and block N+1 arrives (hashlib
    # releases the GIL): each update waits for the one before, so they stay in order.
    hashing: asyncio.Future | None = None
    async for block in chunks:
        size += len(block)
        if hashing is not None:
            await hashing
            hashing = None
        if len(block) < 256 * 1024:
            running.update(block)
        else:
            hashing = loop.run_in_executor(None, running.update, block)
        yield block
    if hashing is not None:
        await hashing
    computed = f"{digest.algorithm}:{running.hexdigest()}"
    if computed != digest or (expected_size is not None and size != expected_size):
        raise DigestMismatch(f"expected {digest} ({expected_size} bytes), got {computed} ({size} bytes)")
