"""Blob HEAD/GET (with Range, from the nearest location that holds the bytes) and DELETE."""
from __future__ import annotations

import asyncio

from aiohttp import web

from shared.errors import RegistryError, unavailable_error
from shared.http_range import RangeNotSatisfiable, parse_range
from shared.locations import BlobMissing, LocationUnavailable, OpenedBlob, damaged_copy
from shared.logging import get_logger
from shared.metrics import BYTES_PULLED, REDIRECTS
from shared.registry import actor_for, blobs, repositories
from shared.storage import paths
from shared.storage.base import NotFound

from ..auth import Action
from .base import authorize, digest_param, gateway

log = get_logger(__name__)


async def _find(request: web.Request, name: str, digest_text: str):
    await authorize(request, name, Action.PULL)
    digest = digest_param(digest_text)
    gw = gateway(request)
    blob = await blobs.in_repository(gw.pool, name, digest)
    if blob is None:
        if await repositories.get_id(gw.pool, name) is None:
            raise RegistryError("NAME_UNKNOWN", detail={"name": name})
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    candidates = gw.locations.candidates(blob.locations)
    if not candidates:
        raise RegistryError("BLOB_UNKNOWN", "no reachable location holds this blob", detail={"digest": digest})
    return gw, digest, blob, candidates


def _headers(digest: str, location: str) -> dict[str, str]:
    return {
        "Docker-Content-Digest": digest,
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
        "ETag": f'"{digest}"',
        "Meridian-Storage-Location": location,
    }


async def head_blob(request: web.Request, name: str, digest: str) -> web.StreamResponse:
    gw, digest, blob, candidates = await _find(request, name, digest)
    response = web.StreamResponse(status=200, headers=_headers(digest, candidates[0]))
    response.content_length = blob.size
    await response.prepare(request)
    return response


def _requested_range(request: web.Request, size: int) -> tuple[int, int, str | None]:
    try:
        return parse_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable as exc:
        raise RegistryError("RANGE_INVALID", str(exc), headers={"Content-Range": f"bytes */{size}"}) from None


async def _open_nearest(gw, digest: str, size: int, candidates: list[str], start: int, length: int) -> OpenedBlob:
    for name in candidates:
        try:
            return await gw.locations.open(name, digest, size, start, length)
        except BlobMissing:
            log.warning("placement without bytes", digest=digest, location=name)
        except LocationUnavailable as exc:
            log.warning("location unavailable, trying the next", location=name, error=str(exc))
    error = unavailable_error("every storage location holding this blob")
    error.detail = {"digest": digest, "locations": candidates}
    raise error


async def _redirect(gw, digest: str, size: int, candidates: list[str]) -> web.Response | None:
    """307 to a signed URL of the nearest location that offers one (S3 family, Azure; another region's
    through its blobstore), so the bytes leave from the store, not through the gateway; None when the
    nearest location is served here (local storage: sendfile) or has no such URL. A location found
    not to hold the whole blob is taken out of `candidates`."""
    key = paths.blob(digest)
    for name in list(candidates):
        driver = gw.locations.driver(name)
        if driver.local_file(key) is not None:
            return None
        try:
            # As Distribution does before it redirects: the store must answer and hold the bytes, so a
            # client is never sent to a store that is down (the next copy is tried instead).
            # (Another region's blobstore checks that itself before it signs.)
            async with asyncio.timeout(gw.config.meridian_health_check_timeout_sec):
                if name in gw.locations.drivers:
                    found = await driver.stat(key)
                    if found is None:
                        raise NotFound(key)
                    if found != size:
                        damaged_copy(digest, name, f"{found} bytes", f"{size} bytes")
                        candidates.remove(name)
                        continue
                url = await driver.redirect_url(key, gw.config.meridian_redirect_expiry_sec, size)
        except NotFound:
            log.warning("placement without bytes", digest=digest, location=name)
            continue
        except Exception as exc:  # that location (or its blobstore) is away: try the next copy
            gw.locations.breaker.failed(name)
            log.warning("no redirect from location, trying the next", location=name, error=f"{type(exc).__name__}: {exc}")
            continue
        if url is None:
            return None
        REDIRECTS.labels(name).inc()
        return web.Response(status=307, headers={"Location": url, "Docker-Content-Digest": digest,
                                                 "Meridian-Storage-Location": name, "Cache-Control": "no-store"})
    return None


async def get_blob(request: web.Request, name: str, digest: str) -> web.StreamResponse:
    gw, digest, blob, candidates = await _find(request, name, digest)
    start, length, content_range = _requested_range(request, blob.size)
    if not gw.config.feature_proxy_storage:
        redirect = await _redirect(gw, digest, blob.size, candidates)
        if redirect is not None:
            return redirect
    opened = await _open_nearest(gw, digest, blob.size, candidates, start, length)
    BYTES_PULLED.labels(opened.location).inc(length)
    headers = _headers(digest, opened.location)
    if opened.local_file is not None:
        headers.pop("ETag")  # FileResponse derives its own validator and handles Range itself
        return web.FileResponse(opened.local_file, chunk_size=256 * 1024, headers=headers)
    try:
        assert opened.chunks is not None  # a blob without a local file comes as a stream
        if content_range:
            headers["Content-Range"] = content_range
        response = web.StreamResponse(status=206 if content_range else 200, headers=headers)
        response.content_length = length
        await response.prepare(request)
        sent = 0
        async for block in opened.chunks:
            sent += len(block)
            await response.write(block)
        if sent != length:
            # The store ended early (a damaged copy): closing the connection tells the client the body is
            # cut short; kept alive, the client would wait for the rest or read the next answer as body.
            log.error("blob stream ended short; connection closed", digest=digest, location=opened.location,
                      sent=sent, expected=length)
            response.force_close()
        await response.write_eof()
        return response
    finally:
        opened.release()


async def delete_blob(request: web.Request, name: str, digest: str) -> web.Response:
    identity = await authorize(request, name, Action.DELETE)
    digest = digest_param(digest)
    gw = gateway(request)
    repo = await repositories.get(gw.pool, name)
    if repo is None:
        raise RegistryError("NAME_UNKNOWN", detail={"name": name})
    # Unlinking hides the blob from this repository; gc reclaims bytes nothing references. A blob a
    # manifest of the repository uses is refused (409 DENIED): the image must stay pullable.
    async with gw.registry.change(actor_for(identity.principal)) as change:
        if not await blobs.unlink(change, repo, digest):
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    return web.Response(status=202, headers={"Docker-Content-Digest": digest})
