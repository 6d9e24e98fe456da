"""Quay's S3 family through aiobotocore: S3Storage, RadosGWStorage, RHOCSStorage, IBMCloudStorage,
GoogleCloudStorage (GCS's S3-interoperable XML API with HMAC keys), STSS3Storage (credentials from STS
AssumeRole, refreshed before they expire) and the CDN-fronted ones (CloudFrontedS3Storage,
CloudFlareStorage, AkamaiS3Storage: S3 underneath; the CDN host is kept in `cdn_host`). Each driver's
parameters become one S3Settings (shared.config), so one class serves them all.

Objects become visible only when a PUT or a multipart upload completes, so writes are atomic.
Streams are cut into PART_SIZE parts; at most one part is held in memory per write.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioDeferredRefreshableCredentials
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from shared.config import AssumeRole, S3Settings
from shared.logging import get_logger

from .base import NotFound, StorageError

if TYPE_CHECKING:  # the types-aiobotocore stubs (pinned with the dev tools); nothing of them at run time
    from aiobotocore.session import ClientCreatorContext
    from types_aiobotocore_s3.client import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef, CreateBucketConfigurationTypeDef, ObjectIdentifierTypeDef

log = get_logger("storage.s3")
PART_SIZE = 8 << 20
READ_BLOCK = 1 << 20
# S3's multipart limits: every part but the last at least 5 MiB, a copied part at most 5 GiB, 10,000 parts.
MIN_PART = 5 << 20
MAX_COPIED_PART = 5 << 30
MAX_PARTS = 10_000


class _ChecksumOptions(TypedDict, total=False):
    request_checksum_calculation: str
    response_checksum_validation: str


class _RangeOption(TypedDict, total=False):
    Range: str


class _CopyRangeOption(TypedDict, total=False):
    CopySourceRange: str


class _BucketOptions(TypedDict, total=False):
    CreateBucketConfiguration: CreateBucketConfigurationTypeDef


def _unsupported(exc: ClientError) -> bool:
    """The store does not implement the operation (S3 answers 501 NotImplemented)."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error.get("Code") in ("NotImplemented", "501") or status == 501


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def _assume_role_refresher(role: AssumeRole):
    """Fresh credentials from STS AssumeRole, each time botocore finds the last ones near expiry."""

    async def refresh() -> dict:
        async with get_session().create_client(
            "sts", endpoint_url=role.endpoint_url, region_name=role.region,
            aws_access_key_id=role.access_key, aws_secret_access_key=role.secret_key,
            config=AioConfig(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}),
        ) as sts:
            answer = await sts.assume_role(RoleArn=role.role_arn, RoleSessionName="meridian")
        credentials = answer["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    return refresh


class S3Driver:
    max_copied_part = MAX_COPIED_PART  # the largest object one CopyObject / UploadPartCopy may copy
    copies_parts = True  # until the store answers UploadPartCopy with 501 Not Implemented

    def __init__(self, name: str, settings: S3Settings) -> None:
        self.name = name
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self.cdn_host = settings.cdn_host
        self._client: S3Client | None = None
        self._client_cm: ClientCreatorContext[S3Client] | None = None

    async def _s3(self) -> S3Client:
        if self._client is None:
            settings = self.settings
            session = get_session()
            access_key, secret_key, session_token = settings.access_key, settings.secret_key, settings.session_token
            if settings.assume_role is not None:
                # aiobotocore has no public setter for refreshable credentials: botocore's own
                # assume-role provider sets the session's _credentials the same way.
                session._credentials = AioDeferredRefreshableCredentials(  # type: ignore[attr-defined]
                    refresh_using=_assume_role_refresher(settings.assume_role), method="sts-assume-role")
                access_key = secret_key = session_token = None
            checksums: _ChecksumOptions = {}
            if settings.checksums_when_required:
                checksums = {"request_checksum_calculation": "when_required",
                             "response_checksum_validation": "when_required"}
            client_cm = self._client_cm = session.create_client(
                "s3",
                endpoint_url=settings.endpoint_url,
                region_name=settings.region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                aws_session_token=session_token,
                config=AioConfig(
                    s3={"addressing_style": "path"},
                    signature_version=settings.signature_version,
                    max_pool_connections=64,
                    connect_timeout=settings.connect_timeout,
                    read_timeout=settings.read_timeout,
                    retries={"max_attempts": 3, "mode": "standard"},
                    **checksums,
                ),
            )
            self._client = await client_cm.__aenter__()
        return self._client

    def _key(self, path: str) -> str:
        clean = path.lstrip("/")
        if ".." in clean.split("/") or not clean:
            raise StorageError(f"invalid storage path {path!r}")
        return f"{self.prefix}/{clean}" if self.prefix else clean

    def _rel(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    async def stat(self, path: str) -> int | None:
        s3 = await self._s3()
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=self._key(path))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    async def read(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        s3 = await self._s3()
        kwargs: _RangeOption = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            kwargs["Range"] = f"bytes={offset}-{end}"
        try:
            obj = await s3.get_object(Bucket=self.bucket, Key=self._key(path), **kwargs)
        except ClientError as exc:
            if _missing(exc):
                raise NotFound(path) from None
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return
            raise
        body = obj["Body"]
        try:
            while True:
                block = await body.read(READ_BLOCK)
                if not block:
                    break
                yield block
        finally:
            body.close()

    async def write(self, path: str, chunks: AsyncIterable[bytes | bytearray]) -> int:
        s3 = await self._s3()
        key = self._key(path)
        buffer = bytearray()
        upload_id = None
        parts: list[CompletedPartTypeDef] = []
        size = 0
        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        upload_id = (await s3.create_multipart_upload(Bucket=self.bucket, Key=key))["UploadId"]
                    part, buffer = bytes(buffer[:PART_SIZE]), buffer[PART_SIZE:]
                    parts.append(await self._upload_part(s3, key, upload_id, len(parts) + 1, part))
            if upload_id is None:
                await s3.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer))
                return size
            if buffer or not parts:
                parts.append(await self._upload_part(s3, key, upload_id, len(parts) + 1, bytes(buffer)))
            await s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            return size
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(Exception):
                    await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    async def _upload_part(self, s3, key: str, upload_id: str, number: int, data: bytes) -> CompletedPartTypeDef:
        result = await s3.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": result["ETag"]}

    async def get_bytes(self, path: str) -> bytes:
        out = bytearray()
        async for block in self.read(path):
            out += block
        return bytes(out)

    async def put_bytes(self, path: str, data: bytes) -> None:
        s3 = await self._s3()
        await s3.put_object(Bucket=self.bucket, Key=self._key(path), Body=data)

    async def move(self, src: str, dst: str, size: int | None = None) -> None:
        s3 = await self._s3()
        if size is None or size > self.max_copied_part:
            # Unknown, or a copy in ranges, whose ranges must match the object exactly: asked of the store.
            size = await self.stat(src)
            if size is None:
                raise NotFound(src)
        try:
            if size <= self.max_copied_part:
                await s3.copy_object(
                    Bucket=self.bucket,
                    Key=self._key(dst),
                    CopySource={"Bucket": self.bucket, "Key": self._key(src)},
                )
            else:  # CopyObject stops at 5 GiB; a larger blob is copied in ranges into one multipart upload
                step = self.max_copied_part
                ranges: list[tuple[str, str | None]] = [
                    (src, f"bytes={start}-{min(start + step, size) - 1}") for start in range(0, size, step)]
                if not await self._join_in_store(dst, ranges):
                    await self.write(dst, self.read(src))
        except ClientError as exc:
            if _missing(exc):
                raise NotFound(src) from None
            raise
        await s3.delete_object(Bucket=self.bucket, Key=self._key(src))

    async def concat(self, dst: str, parts: list[str]) -> int:
        found = await asyncio.gather(*(self.stat(part) for part in parts))  # one round trip's wait, not one per chunk
        sizes: list[int] = []
        for part, size in zip(parts, found, strict=True):
            if size is None:
                raise NotFound(part)
            sizes.append(size)
        filled = [(part, size) for part, size in zip(parts, sizes, strict=True) if size]  # an empty part adds nothing
        if self._copyable([size for _, size in filled]):
            # The store copies each part into one multipart upload: no chunk's bytes pass through the
            # gateway again (a chunked push to S3 would otherwise read every byte back and write it once more).
            try:
                if await self._join_in_store(dst, [(part, None) for part, _ in filled]):
                    return sum(sizes)
            except ClientError as exc:
                if _missing(exc):  # a part vanished after it was counted
                    raise NotFound(dst) from None
                raise

        async def joined() -> AsyncIterator[bytes]:
            for part in parts:
                async for block in self.read(part):
                    yield block

        return await self.write(dst, joined())

    def _copyable(self, sizes: list[int]) -> bool:
        """Whether the store can join these parts itself (UploadPartCopy): each part a valid multipart
        part — the common chunked push of 5 MiB or larger PATCHes. Otherwise the bytes stream through."""
        if not sizes or len(sizes) > MAX_PARTS or any(size > self.max_copied_part for size in sizes):
            return False
        return all(size >= MIN_PART for size in sizes[:-1])

    async def _join_in_store(self, dst: str, sources: list[tuple[str, str | None]]) -> bool:
        """dst as one multipart upload whose parts the store copies (UploadPartCopy) from (path, byte
        range or None for the whole object); nothing is left behind if a copy fails. False when the
        store does not implement UploadPartCopy (some S3-compatible stores; remembered, so the caller
        streams the bytes instead from then on)."""
        if not self.copies_parts:
            return False
        s3 = await self._s3()
        key = self._key(dst)
        upload_id = (await s3.create_multipart_upload(Bucket=self.bucket, Key=key))["UploadId"]
        try:
            completed: list[CompletedPartTypeDef] = []
            for number, (source, byte_range) in enumerate(sources, start=1):
                copy_range: _CopyRangeOption = {"CopySourceRange": byte_range} if byte_range else {}
                result = await s3.upload_part_copy(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": self._key(source)}, **copy_range,
                )
                completed.append({"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]})
            await s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": completed}
            )
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            if isinstance(exc, ClientError) and _unsupported(exc):
                self.copies_parts = False
                log.warning("the store does not copy parts (UploadPartCopy); chunks will stream through",
                            location=self.name, code=exc.response.get("Error", {}).get("Code"))
                return False
            raise
        return True

    async def delete(self, path: str) -> None:
        s3 = await self._s3()
        await s3.delete_object(Bucket=self.bucket, Key=self._key(path))

    async def delete_prefix(self, prefix: str) -> None:
        s3 = await self._s3()
        keys = await self.list(prefix)
        if not self.settings.batch_delete:  # GCS's XML API has no multi-object delete
            for key in keys:
                await s3.delete_object(Bucket=self.bucket, Key=self._key(key))
            return
        for start in range(0, len(keys), 1000):
            batch: list[ObjectIdentifierTypeDef] = [{"Key": self._key(k)} for k in keys[start : start + 1000]]
            await s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    async def list_older(self, prefix: str, older_than: float) -> list[str]:
        s3 = await self._s3()
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        paginator = s3.get_paginator("list_objects_v2" if self.settings.list_version == 2 else "list_objects")
        keys: list[str] = []
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            keys.extend(self._rel(item["Key"]) for item in page.get("Contents", []) if item["LastModified"] <= cutoff)
        return sorted(keys)

    async def list(self, prefix: str) -> list[str]:
        s3 = await self._s3()
        paginator = s3.get_paginator("list_objects_v2" if self.settings.list_version == 2 else "list_objects")
        keys: list[str] = []
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            keys.extend(self._rel(item["Key"]) for item in page.get("Contents", []))
        return sorted(keys)

    async def clean_partial(self, older_than: float) -> int:
        s3 = await self._s3()
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        removed = 0
        paginator = s3.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] > cutoff:
                    continue
                # A live writer uploads a part every PART_SIZE bytes: only one that stalled is dead.
                parts = await s3.list_parts(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                last = max([p["LastModified"] for p in parts.get("Parts", [])] + [upload["Initiated"]])
                if last <= cutoff:
                    await s3.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                    removed += 1
        return removed

    def local_file(self, path: str) -> Path | None:
        return None

    async def redirect_url(self, path: str, expires_s: int, size: int | None = None) -> str | None:
        """A presigned GET (computed locally, no request to the store). The CDN drivers' `cdn_host`
        is not used: their URLs need the CDN's own signing (CloudFront keys, Akamai tokens)."""
        s3 = await self._s3()
        return await s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(path)}, ExpiresIn=expires_s
        )

    async def prepare(self) -> bool:
        s3 = await self._s3()
        try:
            await s3.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
        extra: _BucketOptions = {}
        if self.settings.region not in ("us-east-1", "auto"):
            # The stubs list AWS's regions only; S3-compatible stores name their own.
            extra["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.region}  # type: ignore[typeddict-item]
        try:
            await s3.create_bucket(Bucket=self.bucket, **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return False  # another process of this location made it meanwhile
            raise
        return True

    async def close(self) -> None:
        if self._client_cm is not None:
            await self._client_cm.__aexit__(None, None, None)
            self._client = self._client_cm = None
