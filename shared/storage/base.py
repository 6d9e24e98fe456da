"""The storage-driver contract. Every driver passes tests/integration/test_storage_drivers.py.

Paths are relative keys like `sha256/ab/abcd...` or `uploads/<id>/0`; a driver maps them under its
location's root (a folder or a bucket prefix). Writes are atomic: a reader sees the whole object or
no object, never a prefix of one.
"""
from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Protocol, runtime_checkable


class StorageError(Exception):
    pass


class NotFound(StorageError):
    pass


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
        """Write an object from a stream atomically; returns its size. A block may still be written
        while the next is asked for: the stream must not change a block it has yielded."""

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

    async def redirect_url(self, path: str, expires_s: int, size: int | None = None) -> str | None:
        """A short-lived URL a client may GET the object from directly (S3: presigned; Azure: SAS),
        or None when the store has none and the registry must stream the bytes itself. `size`: the
        bytes the object must hold; a driver that asks another region's blobstore has it checked
        there (NotFound when they differ); the others leave it to the caller, who can stat."""

    async def close(self) -> None: ...
