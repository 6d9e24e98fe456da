"""A storage location reached through its region's blobstore, as a StorageDriver.

A gateway writes its uploads here when its own location is down (push failover): chunks go to the
other location's upload area and the completed blob to its content address, all through the
blobstore's `/objects/<key>` API (services/blobstore/app.py), with short-lived tokens bound to the
location, the action and the key (shared/tokens.py). The storage credentials stay in their region.
Only upload-area keys may be written or deleted this way, and content addresses only be created by
`move`/`concat` from upload-area keys (shared/storage/paths.py says which keys are which).
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path

import aiohttp

from .base import NotFound, StorageError

BLOCK = 256 * 1024


class BlobstoreDriver:
    cdn_host: str | None = None

    def __init__(self, name: str, url: str, token: Callable[[str, str], str],
                 http: Callable[[], aiohttp.ClientSession]) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self._token = token  # (action, key) -> bearer token
        self._http = http

    def _headers(self, action: str, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token(action, key)}"}

    def _object(self, key: str) -> str:
        return f"{self.url}/objects/{key.lstrip('/')}"

    async def _check(self, response: aiohttp.ClientResponse, key: str) -> None:
        if response.status == 404:
            raise NotFound(key)
        if response.status >= 300:
            raise StorageError(f"{self.name}: blobstore answered {response.status} for {key}: {(await response.text())[:200]}")

    async def stat(self, path: str) -> int | None:
        async with self._http().head(self._object(path), headers=self._headers("object:read", path)) as response:
            if response.status == 404:
                return None
            await self._check(response, path)
            return int(response.headers.get("Content-Length", "0"))

    async def read(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        headers = self._headers("object:read", path)
        if offset or length is not None:
            headers["Range"] = f"bytes={offset}-{'' if length is None else offset + length - 1}"
        async with self._http().get(self._object(path), headers=headers) as response:
            await self._check(response, path)
            async for block in response.content.iter_chunked(BLOCK):
                yield block

    async def write(self, path: str, chunks: AsyncIterable[bytes | bytearray]) -> int:
        size = 0

        async def counted() -> AsyncIterator[bytes | bytearray]:
            nonlocal size
            async for chunk in chunks:
                size += len(chunk)
                yield chunk

        async with self._http().put(self._object(path), data=counted(), headers=self._headers("object:write", path)) as response:
            await self._check(response, path)
        return size

    async def get_bytes(self, path: str) -> bytes:
        out = bytearray()
        async for block in self.read(path):
            out += block
        return bytes(out)

    async def put_bytes(self, path: str, data: bytes) -> None:
        async with self._http().put(self._object(path), data=data, headers=self._headers("object:write", path)) as response:
            await self._check(response, path)

    async def move(self, src: str, dst: str, size: int | None = None) -> None:
        await self._assemble(dst, [src], remove_parts=True)

    async def concat(self, dst: str, parts: list[str]) -> int:
        return await self._assemble(dst, parts, remove_parts=False)

    async def _assemble(self, dst: str, parts: list[str], *, remove_parts: bool) -> int:
        body = json.dumps({"parts": parts, "remove_parts": remove_parts})
        async with self._http().post(self._object(dst), data=body, headers={
                **self._headers("object:assemble", dst), "Content-Type": "application/json"}) as response:
            await self._check(response, dst)
            return int((await response.json()).get("size", 0))

    async def delete(self, path: str) -> None:
        async with self._http().delete(self._object(path), headers=self._headers("object:delete", path)) as response:
            if response.status != 404:
                await self._check(response, path)

    async def delete_prefix(self, prefix: str) -> None:
        await self.delete(prefix if prefix.endswith("/") else prefix + "/")

    async def list_older(self, prefix: str, older_than: float) -> list[str]:
        raise StorageError("listing is not offered through a blobstore")

    async def list(self, prefix: str) -> list[str]:
        raise StorageError("listing is not offered through a blobstore")

    async def clean_partial(self, older_than: float) -> int:
        return 0  # the location's own blobstore cleans its leftovers (the `clean` command)

    def local_file(self, path: str) -> Path | None:
        return None

    async def redirect_url(self, path: str, expires_s: int, size: int | None = None) -> str | None:
        """The location's own direct-download URL, which its blobstore signs (its credentials stay there)
        once it has seen the object there, and `size` bytes of it when given."""
        params = {"expires": str(expires_s)} if size is None else {"expires": str(expires_s), "size": str(size)}
        async with self._http().get(f"{self.url}/urls/{path.lstrip('/')}", params=params,
                                    headers=self._headers("object:read", path)) as response:
            await self._check(response, path)  # 404: the location does not hold it (whole)
            return (await response.json()).get("url")

    async def prepare(self) -> bool:
        return False  # the location's own region makes its bucket

    async def close(self) -> None:
        return None  # the HTTP session belongs to whoever made this driver
