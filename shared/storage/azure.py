"""AzureStorage (Quay's parameters) through Microsoft's async `azure-storage-blob` client.

Writes stage blocks on the blob and commit the block list at the end: readers see the old blob or
the new one, never a part. A write that dies leaves uncommitted blocks only, which readers and
listings do not see; `clean_partial` deletes blobs that have nothing but such blocks (Azure itself
discards uncommitted blocks after a week). Streams are cut into BLOCK_SIZE blocks; at most one block
is held in memory per write.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.core.credentials import AzureSasCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobBlock
from azure.storage.blob.aio import BlobServiceClient

from shared.config import AzureStorageParams, register_secret

from .base import NotFound, StorageError

# The SDK logs every request at INFO; Meridian's own logs say what matters.
logging.getLogger("azure").setLevel(logging.WARNING)

BLOCK_SIZE = 8 << 20
READ_BLOCK = 1 << 20
COPY_POLL_SECONDS = 0.1
COPY_TIMEOUT_SECONDS = 600


class AzureDriver:
    cdn_host: str | None = None

    def __init__(self, name: str, params: AzureStorageParams) -> None:
        self.name = name
        self.params = params
        self.container_name = params.azure_container or ""
        self.account_name = params.azure_account_name or ""
        self.prefix = (params.storage_path or "").strip("/")
        register_secret(params.azure_account_key)
        register_secret(params.sas_token)
        self._service: BlobServiceClient | None = None

    def _client(self):
        if self._service is None:
            params = self.params
            credential: dict[str, str] | AzureSasCredential | None
            if params.azure_account_key:
                credential = {"account_name": self.account_name, "account_key": params.azure_account_key}
            elif params.sas_token:
                credential = AzureSasCredential(params.sas_token.lstrip("?"))
            else:
                credential = None  # a public container, or a SAS already in endpoint_url
            self._service = BlobServiceClient(params.account_url, credential=credential)
        return self._service.get_container_client(self.container_name)

    def _key(self, path: str) -> str:
        clean = path.lstrip("/")
        if ".." in clean.split("/") or not clean:
            raise StorageError(f"invalid storage path {path!r}")
        return f"{self.prefix}/{clean}" if self.prefix else clean

    def _rel(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    async def stat(self, path: str) -> int | None:
        try:
            properties = await self._client().get_blob_client(self._key(path)).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return int(properties.size)

    async def read(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        blob = self._client().get_blob_client(self._key(path))
        if length == 0:
            return
        try:
            # No range header for a whole read: a range on an empty blob is refused (416).
            downloader = await (blob.download_blob(offset=offset, length=length) if (offset or length is not None)
                                else blob.download_blob())
        except ResourceNotFoundError:
            raise NotFound(path) from None
        except HttpResponseError as exc:
            if exc.status_code == 416:  # a range past the end: nothing to send
                return
            raise
        async for chunk in downloader.chunks():
            for start in range(0, len(chunk), READ_BLOCK):
                yield chunk[start : start + READ_BLOCK]

    async def write(self, path: str, chunks: AsyncIterable[bytes | bytearray]) -> int:
        blob = self._client().get_blob_client(self._key(path))
        buffer = bytearray()
        blocks: list[BlobBlock] = []
        size = 0
        async for chunk in chunks:
            buffer += chunk
            size += len(chunk)
            while len(buffer) >= BLOCK_SIZE:
                block, buffer = bytes(buffer[:BLOCK_SIZE]), buffer[BLOCK_SIZE:]
                blocks.append(await self._stage(blob, block))
        if not blocks:
            await blob.upload_blob(bytes(buffer), overwrite=True)
            return size
        if buffer:
            blocks.append(await self._stage(blob, bytes(buffer)))
        await blob.commit_block_list(blocks)
        return size

    async def _stage(self, blob, data: bytes) -> BlobBlock:
        # Block ids of one blob must have one length; a uuid's 16 bytes give 24 base64 characters.
        block_id = base64.b64encode(uuid.uuid4().bytes).decode()
        await blob.stage_block(block_id, data, length=len(data))
        return BlobBlock(block_id=block_id)

    async def get_bytes(self, path: str) -> bytes:
        out = bytearray()
        async for block in self.read(path):
            out += block
        return bytes(out)

    async def put_bytes(self, path: str, data: bytes) -> None:
        await self._client().get_blob_client(self._key(path)).upload_blob(data, overwrite=True)

    async def move(self, src: str, dst: str, size: int | None = None) -> None:
        container = self._client()
        source, target = container.get_blob_client(self._key(src)), container.get_blob_client(self._key(dst))
        try:
            await source.get_blob_properties()
        except ResourceNotFoundError:
            raise NotFound(src) from None
        copy = await target.start_copy_from_url(source.url)
        status = copy.get("copy_status")
        deadline = asyncio.get_running_loop().time() + COPY_TIMEOUT_SECONDS
        while status == "pending":  # a copy inside one account is usually done at once; big ones may not be
            if asyncio.get_running_loop().time() > deadline:
                raise StorageError(f"copy of {src} to {dst} did not finish in {COPY_TIMEOUT_SECONDS}s")
            await asyncio.sleep(COPY_POLL_SECONDS)
            status = (await target.get_blob_properties()).copy.status
        if status != "success":
            raise StorageError(f"copy of {src} to {dst} ended {status}")
        await source.delete_blob()

    async def concat(self, dst: str, parts: list[str]) -> int:
        for part in parts:
            if await self.stat(part) is None:
                raise NotFound(part)

        async def joined() -> AsyncIterator[bytes]:
            for part in parts:
                async for block in self.read(part):
                    yield block

        return await self.write(dst, joined())

    async def delete(self, path: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await self._client().get_blob_client(self._key(path)).delete_blob()

    async def delete_prefix(self, prefix: str) -> None:
        for key in await self.list(prefix):
            await self.delete(key)

    async def list_older(self, prefix: str, older_than: float) -> list[str]:
        container = self._client()
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        return sorted([self._rel(blob.name) async for blob in container.list_blobs(name_starts_with=self._key(prefix))
                       if (blob.last_modified or blob.creation_time) is not None
                       and (blob.last_modified or blob.creation_time) <= cutoff])

    async def list(self, prefix: str) -> list[str]:
        container = self._client()
        return sorted([self._rel(blob.name) async for blob in container.list_blobs(name_starts_with=self._key(prefix))])

    async def clean_partial(self, older_than: float) -> int:
        container = self._client()
        start = self.prefix + "/" if self.prefix else None
        committed = {blob.name async for blob in container.list_blobs(name_starts_with=start)}
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        removed = 0
        async for blob in container.list_blobs(name_starts_with=start, include=["uncommittedblobs"]):
            if blob.name in committed:
                continue
            changed = blob.last_modified or blob.creation_time
            if changed is not None and changed <= cutoff:
                try:
                    await container.get_blob_client(blob.name).delete_blob()
                    removed += 1
                except ResourceNotFoundError:
                    pass
        return removed

    def local_file(self, path: str) -> Path | None:
        return None

    async def redirect_url(self, path: str, expires_s: int, size: int | None = None) -> str | None:
        """A read-only SAS URL for the blob, when the account key is known (signed locally)."""
        params = self.params
        if not params.azure_account_key:
            return None
        import datetime as dt

        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        key = self._key(path)
        sas = generate_blob_sas(account_name=self.account_name, container_name=self.container_name, blob_name=key,
                                account_key=params.azure_account_key, permission=BlobSasPermissions(read=True),
                                expiry=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_s))
        return f"{self._client().get_blob_client(key).url}?{sas}"

    async def prepare(self) -> bool:
        try:
            await self._client().create_container()
        except ResourceExistsError:
            return False
        return True

    async def close(self) -> None:
        if self._service is not None:
            await self._service.close()
            self._service = None
