"""Blob HEAD/GET (with Range) and DELETE."""
from __future__ import annotations

import re

from aiohttp import web

from shared.digest import blob_path
from shared.errors import RegistryError
from shared.metrics import BYTES_PULLED
from shared.model import blobs as blob_model
from shared.model import repositories
from shared.storage.base import NotFound

from ..auth import Action
from .base import authorize, digest_param, gateway

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _pick_location(preference: list[str], drivers: dict, held: list[str]) -> str | None:
    for name in preference:
        if name in held:
            return name
    for name in held:
        if name in drivers:
            return name
    return None


async def _find(request: web.Request, name: str, digest_text: str):
    await authorize(request, name, Action.PULL)
    digest = digest_param(digest_text)
    gw = gateway(request)
    blob = await blob_model.get_in_repository(gw.pool, name, digest)
    if blob is None:
        if await repositories.get_id(gw.pool, name) is None:
            raise RegistryError("NAME_UNKNOWN", detail={"name": name})
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    location = _pick_location(gw.preference, gw.drivers, blob.locations)
    if location is None:
        raise RegistryError("BLOB_UNKNOWN", "blob has no readable copy in this region", detail={"digest": digest})
    return gw, digest, blob, location


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
    gw, digest, blob, location = await _find(request, name, digest)
    response = web.StreamResponse(status=200, headers=_headers(digest, location))
    response.content_length = blob.size
    await response.prepare(request)
    return response


async def get_blob(request: web.Request, name: str, digest: str) -> web.StreamResponse:
    gw, digest, blob, location = await _find(request, name, digest)
    driver = gw.drivers[location]
    path = blob_path(digest)
    local = driver.local_file(path)
    BYTES_PULLED.labels(location).inc(blob.size)
    if local is not None:
        if not local.is_file():
            raise RegistryError("BLOB_UNKNOWN", "blob bytes are missing from storage", detail={"digest": digest})
        headers = _headers(digest, location)
        headers.pop("ETag")  # FileResponse derives its own validator
        return web.FileResponse(local, chunk_size=256 * 1024, headers=headers)
    return await _stream(request, driver, path, blob.size, _headers(digest, location))


async def _stream(request: web.Request, driver, path: str, size: int, headers: dict[str, str]) -> web.StreamResponse:
    start, length, status = 0, size, 200
    requested = request.headers.get("Range")
    if requested:
        match = RANGE_RE.match(requested.strip())
        if not match or (not match.group(1) and not match.group(2)):
            raise RegistryError("RANGE_INVALID", f"unsupported Range {requested!r}", headers={"Content-Range": f"bytes */{size}"})
        first, last = match.groups()
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        else:
            start = max(size - int(last), 0)
            end = size - 1
        if start >= size or end < start:
            raise RegistryError("RANGE_INVALID", f"Range {requested!r} not satisfiable", headers={"Content-Range": f"bytes */{size}"})
        length, status = end - start + 1, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = length
    await response.prepare(request)
    try:
        async for block in driver.read(path, start, length):
            await response.write(block)
    except NotFound:
        raise RegistryError("BLOB_UNKNOWN", "blob bytes are missing from storage") from None
    await response.write_eof()
    return response


async def delete_blob(request: web.Request, name: str, digest: str) -> web.Response:
    await authorize(request, name, Action.DELETE)
    digest = digest_param(digest)
    gw = gateway(request)
    repo_id = await repositories.get_id(gw.pool, name)
    if repo_id is None:
        raise RegistryError("NAME_UNKNOWN", detail={"name": name})
    # Unlinking hides the blob from this repository; gc reclaims bytes nothing references.
    if not await blob_model.unlink(gw.pool, repo_id, digest):
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    return web.Response(status=202, headers={"Docker-Content-Digest": digest})
