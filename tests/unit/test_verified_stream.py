"""`verified` passes bytes through and refuses them at the end when they do not match their digest
(shared/digest.py); large blocks are hashed on a thread while the consumer writes them."""
from __future__ import annotations

import hashlib
import os

import pytest

from shared.digest import DigestMismatch, parse_digest, verified

BLOCKS = [os.urandom(1 << 20), os.urandom(1000), os.urandom(300 * 1024)]
DIGEST = parse_digest("sha256:" + hashlib.sha256(b"".join(BLOCKS)).hexdigest())


async def _source(blocks):
    for block in blocks:
        yield block


async def test_matching_bytes_pass_through_unchanged_in_order():
    received = [block async for block in verified(_source(BLOCKS), DIGEST, sum(map(len, BLOCKS)))]
    assert received == BLOCKS


@pytest.mark.parametrize("blocks, size", [
    (BLOCKS[:2], None),                            # a short stream
    ([BLOCKS[0], bytes([BLOCKS[1][0] ^ 0xFF]) + BLOCKS[1][1:], BLOCKS[2]], None),  # one byte changed (always)
    (BLOCKS, sum(map(len, BLOCKS)) + 1),           # the right bytes, the wrong announced size
])
async def test_anything_else_raises_at_the_end(blocks, size):
    received = []
    with pytest.raises(DigestMismatch):
        async for block in verified(_source(blocks), DIGEST, size):
            received.append(block)
    assert received == blocks  # the consumer saw every block, then the refusal (its write is abandoned)


async def test_a_consumer_that_stops_early_closes_it_cleanly():
    stream = verified(_source(BLOCKS), DIGEST)
    assert await stream.__anext__() == BLOCKS[0]
    await stream.aclose()


async def test_many_large_blocks_are_hashed_in_their_order():
    # Each block's hash runs on a thread while the next block arrives: out of order, the digest would differ.
    blocks = [os.urandom(256 * 1024 + n) for n in range(8)]
    digest = parse_digest("sha256:" + hashlib.sha256(b"".join(blocks)).hexdigest())
    received = [block async for block in verified(_source(blocks), digest, sum(map(len, blocks)))]
    assert received == blocks
