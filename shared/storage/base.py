"""The storage-driver contract. Every driver passes tests/integration/test_storage_drivers.py.

Paths are relative keys like `sha256/ab/abcd...` or `uploads/<id>/0`; a driver maps them under its
location's root (a folder or a bucket prefix). Writes are atomic: a reader sees the whole object or
no object, never a prefix of one.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from shared.digest import Digest, verified

FILE_BLOCK = 1 << 20


class StorageError(Exception):
    pass


class NotFound(StorageError):
    pass


class SourceUnreadable(StorageError):
    """The local file a copy was to be made from could not be opened: the source's fault, not the store's."""


@runtime_checkable
class StorageDriver(Protocol):
    name: str
    # The CDN host of a CDN-fronted location (CloudFront, CloudFlare, Akamai), for redirects; else None.
    cdn_host: str | None

    async def stat(self, path: str) -> int | None:
        """Size in bytes, or None when there is no object."""

    def read(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes [offset, offset+length). Raises NotFound."""

    async def write(self, path: str, chunks: AsyncIterable[bytes | bytearray]) -> int:
        """Write an object from a stream atomically; returns its size."""

    async def write_verified_file(self, path: str, source: Path, digest: Digest, size: int) -> None:
        """Write a local file's bytes at path atomically, if they are `size` bytes hashing to `digest`;
        else raise DigestMismatch and place nothing. SourceUnreadable when the file cannot be opened.
        (Replication from a location whose store is a local folder.)"""

    async def get_bytes(self, path: str) -> bytes:
        """A small object whole. Raises NotFound."""

    async def put_bytes(self, path: str, data: bytes) -> None: ...

    async def move(self, src: str, dst: str, size: int | None = None) -> None:
        """Atomically make src's bytes visible at dst (replacing it) and remove src. `size`: src's size when
        the caller knows it, which spares a store that must choose how to copy (S3) asking for it."""

    async def concat(self, dst: str, parts: list[str]) -> int:
        """Write dst as the concatenation of parts, in order; returns the size. Parts stay."""

    async def delete(self, path: str) -> None:
        """Delete one object; a missing object is not an error."""

    async def delete_prefix(self, prefix: str) -> None: ...

    async def list_older(self, prefix: str, older_than: float) -> list[str]:
        """Keys under a prefix (recursive), sorted, last written at least `older_than` seconds ago
        (gc's storage reconciliation: content addresses that no database row explains)."""

    async def list(self, prefix: str) -> list[str]:
        """Keys under a prefix (recursive), sorted."""

    async def clean_partial(self, older_than: float) -> int:
        """Remove leftovers of interrupted writes (temporary files, unfinished multipart uploads)
        that made no progress for `older_than` seconds; returns how many went."""

    async def prepare(self) -> bool:
        """Create the location's folder, bucket or container when it is missing; True when it made one."""

    def local_file(self, path: str) -> Path | None:
        """A filesystem path the caller may sendfile, or None when the driver has none."""

    async def redirect_url(self, path: str, expires_s: int) -> str | None:
        """A short-lived URL a client may GET the object from directly (S3: presigned; Azure: SAS),
        or None when the store has none and the registry must stream the bytes itself."""

    async def close(self) -> None: ...


async def file_blocks(source: Path) -> AsyncIterator[bytes]:
    """A local file's bytes, read on a worker thread."""
    loop = asyncio.get_running_loop()
    try:
        handle = open(source, "rb")  # noqa: SIM115 - closed below, in the generator's own lifetime
    except OSError as exc:
        raise SourceUnreadable(f"{source}: {exc.strerror or exc}") from exc
    with handle:
        while block := await loop.run_in_executor(None, handle.read, FILE_BLOCK):
            yield block


async def write_verified_file_streamed(driver: StorageDriver, path: str, source: Path, digest: Digest, size: int) -> None:
    """write_verified_file for a store that is not a local folder: the file streams through write()."""
    await driver.write(path, verified(file_blocks(source), digest, size))
