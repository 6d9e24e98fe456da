"""Blob uploads: monolithic, POST-then-PUT, chunked and streamed PATCH, cross-repo mount, cancel.

Chunks are stored as separate objects `uploads/<id>/<offset>-<nonce>` and listed in the session row,
so any gateway process can take the next chunk. The running sha256 lives in the process that took
the previous chunk; when the final PUT reaches a process without it, the stored chunks are re-read
(docs/decisions.md, "Chunked uploads across processes").
"""
from __future__ import annotations

import re
import time
import uuid

import asyncpg
from aiohttp import web

from shared.digest import Digest, blob_path, hasher
from shared.errors import RegistryError
from shared.messages import BlobWritten
from shared.metrics import BYTES_PUSHED, UPLOAD_REHASH, UPLOADS_OPEN
from shared.model import blobs as blob_model
from shared.model import repositories
from shared.model import uploads as upload_model
from shared.outbox import add as outbox_add

from ..auth import Action
from ..state import Gateway, HashState
from .base import authorize, body_blocks, content_length, digest_param, gateway, hash_update

CONTENT_RANGE_RE = re.compile(r"^(?:bytes )?(\d+)-(\d+)$")


def _upload_url(name: str, upload_id: uuid.UUID) -> str:
    return f"/v2/{name}/blobs/uploads/{upload_id}"


def _range_value(size: int) -> str:
    return f"0-{max(size - 1, 0)}"


def _session_headers(gw: Gateway, name: str, upload_id: uuid.UUID, size: int) -> dict[str, str]:
    headers = {
        "Location": _upload_url(name, upload_id),
        "Docker-Upload-UUID": str(upload_id),
        "Range": _range_value(size),
        "Content-Length": "0",
    }
    if gw.config.meridian_chunk_min_length:
        headers["OCI-Chunk-Min-Length"] = str(gw.config.meridian_chunk_min_length)
    return headers


def _created(name: str, digest: str) -> web.Response:
    return web.Response(
        status=201,
        headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest, "Content-Length": "0"},
    )


def _parse_upload_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"upload": value}) from None


async def start_upload(request: web.Request, name: str) -> web.Response:
    await authorize(request, name, Action.PUSH)
    gw = gateway(request)
    mount = request.query.get("mount")
    if mount is not None:
        digest = digest_param(mount)
        source = request.query.get("from")
        if source is not None and await gw.authorizer.allowed(await gw.authorizer.authenticate(request), source, Action.PULL) is False:
            source = None  # an unreadable source is treated as absent: fall back to an upload
        else:
            blob_id = await blob_model.find_mountable(gw.pool, digest, source)
            if blob_id is not None:
                repo_id = await repositories.get_or_create(gw.pool, name)
                await blob_model.link(gw.pool, repo_id, blob_id)
                return _created(name, digest)
    repo_id = await repositories.get_or_create(gw.pool, name)
    wanted = request.query.get("digest")
    if wanted is not None:
        digest = digest_param(wanted)
        upload_id = await upload_model.create(gw.pool, repo_id, gw.location_ids[gw.write_location])
        return await _monolithic(request, gw, name, repo_id, upload_id, digest)
    upload_id = await upload_model.create(gw.pool, repo_id, gw.location_ids[gw.write_location])
    UPLOADS_OPEN.inc()
    return web.Response(status=202, headers=_session_headers(gw, name, upload_id, 0))


async def _monolithic(request, gw: Gateway, name: str, repo_id: int, upload_id: uuid.UUID, digest: Digest) -> web.Response:
    try:
        running = hasher(digest.algorithm)
        chunk_path, size = await _store_chunk(request, gw, upload_id, 0, running)
        if await upload_model.append_chunk(gw.pool, upload_id, 0, chunk_path, size) is None:
            raise RegistryError("BLOB_UPLOAD_INVALID", "upload changed while writing")
        computed = Digest(f"{digest.algorithm}:{running.hexdigest()}")
        return await _commit(gw, name, repo_id, upload_id, [chunk_path], size, digest, computed)
    except BaseException:
        await _discard(gw, upload_id)
        raise


async def _store_chunk(request, gw: Gateway, upload_id: uuid.UUID, offset: int, running) -> tuple[str, int]:
    """Stream the request body into one chunk object while hashing; returns (path, length)."""
    expected = content_length(request)
    path = f"uploads/{upload_id}/{offset:016d}-{uuid.uuid4().hex[:8]}"

    async def hashed():
        async for block in body_blocks(request):
            if running is not None:
                await hash_update(running, block)
            yield block

    try:
        size = await gw.write_driver.write(path, hashed())
    except (ConnectionError, asyncpg.PostgresError):
        raise
    except Exception as exc:
        if type(exc).__name__ in ("ClientPayloadError", "ContentLengthError", "PayloadEncodingError"):
            await gw.write_driver.delete(path)
            raise RegistryError("SIZE_INVALID", "request body ended before Content-Length bytes") from None
        raise
    if expected is not None and size != expected:
        await gw.write_driver.delete(path)
        raise RegistryError("SIZE_INVALID", f"received {size} bytes, Content-Length said {expected}")
    BYTES_PUSHED.labels(gw.write_location).inc(size)
    return path, size


async def _session(gw: Gateway, name: str, upload_text: str):
    upload_id = _parse_upload_id(upload_text)
    repo_id = await repositories.get_id(gw.pool, name)
    session = await upload_model.get(gw.pool, upload_id, repo_id) if repo_id is not None else None
    if session is None:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"upload": upload_text})
    return session


async def _append(request, gw: Gateway, session, *, content_range: str | None) -> int:
    """Append the body as a chunk at the session's current offset; returns the new size."""
    if content_range is not None:
        match = CONTENT_RANGE_RE.match(content_range.strip())
        if not match:
            raise RegistryError("BLOB_UPLOAD_INVALID", f"invalid Content-Range {content_range!r}")
        start, end = int(match.group(1)), int(match.group(2))
        if start != session.size or end < start:
            raise RegistryError(
                "RANGE_INVALID",
                f"chunk starts at {start}, upload is at {session.size}",
                headers={"Range": _range_value(session.size), "Location": _upload_url(request.match_info.get("name", ""), session.id)},
            )
        length = content_length(request)
        if length is not None and length != end - start + 1:
            raise RegistryError("SIZE_INVALID", f"Content-Range covers {end - start + 1} bytes, Content-Length is {length}")
    state = gw.hash_states.get(session.id, session.size)
    running = state.hasher.copy() if state else (hasher("sha256") if session.size == 0 else None)
    path, size = await _store_chunk(request, gw, session.id, session.size, running)
    if size == 0:
        await gw.write_driver.delete(path)
        return session.size
    new_size = await upload_model.append_chunk(gw.pool, session.id, session.size, path, size)
    if new_size is None:
        await gw.write_driver.delete(path)
        raise RegistryError("RANGE_INVALID", "another chunk was written at this offset first", headers={"Range": _range_value(session.size)})
    if running is not None:
        gw.hash_states.put(session.id, HashState(new_size, running))
    return new_size


async def patch_upload(request: web.Request, name: str, upload: str) -> web.Response:
    await authorize(request, name, Action.PUSH)
    gw = gateway(request)
    session = await _session(gw, name, upload)
    size = await _append(request, gw, session, content_range=request.headers.get("Content-Range"))
    return web.Response(status=202, headers=_session_headers(gw, name, session.id, size))


async def upload_status(request: web.Request, name: str, upload: str) -> web.Response:
    await authorize(request, name, Action.PUSH)
    gw = gateway(request)
    session = await _session(gw, name, upload)
    return web.Response(status=204, headers=_session_headers(gw, name, session.id, session.size))


async def cancel_upload(request: web.Request, name: str, upload: str) -> web.Response:
    await authorize(request, name, Action.PUSH)
    gw = gateway(request)
    session = await _session(gw, name, upload)
    await _discard(gw, session.id)
    UPLOADS_OPEN.dec()
    return web.Response(status=204)


async def finish_upload(request: web.Request, name: str, upload: str) -> web.Response:
    await authorize(request, name, Action.PUSH)
    gw = gateway(request)
    digest = digest_param(request.query.get("digest"))
    session = await _session(gw, name, upload)
    has_body = (content_length(request) or 0) > 0 or request.headers.get("Transfer-Encoding") == "chunked"
    size = session.size
    if has_body:
        size = await _append(request, gw, session, content_range=request.headers.get("Content-Range"))
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            try:
                locked = await upload_model.get(conn, session.id, session.repository_id, for_update=True)
            except asyncpg.LockNotAvailableError:
                raise RegistryError("BLOB_UPLOAD_INVALID", "the upload is being completed by another request") from None
            if locked is None or locked.size != size:
                raise RegistryError("BLOB_UPLOAD_INVALID", "the upload changed while it was being completed")
            computed = await _digest_of_chunks(gw, locked, digest.algorithm)
    UPLOADS_OPEN.dec()
    try:
        return await _commit(gw, name, locked.repository_id, locked.id, locked.chunks, locked.size, digest, computed)
    except BaseException:
        await _discard(gw, locked.id)
        raise


async def _digest_of_chunks(gw: Gateway, session, algorithm: str) -> Digest:
    state = gw.hash_states.get(session.id, session.size)
    if state is not None and algorithm == "sha256":
        return Digest(f"sha256:{state.hasher.hexdigest()}")
    UPLOAD_REHASH.inc()
    running = hasher(algorithm)
    for chunk in session.chunks:
        async for block in gw.write_driver.read(chunk):
            await hash_update(running, block)
    return Digest(f"{algorithm}:{running.hexdigest()}")


async def _commit(gw: Gateway, name: str, repo_id: int, upload_id: uuid.UUID, chunks: list[str], size: int, wanted: Digest, computed: Digest) -> web.Response:
    """Verify, move the bytes to their content address, then record everything in one transaction."""
    if computed != wanted:
        await _discard(gw, upload_id)
        raise RegistryError("DIGEST_INVALID", detail={"expected": wanted, "computed": computed})
    location_id = gw.location_ids[gw.write_location]
    driver = gw.write_driver
    if await blob_model.get_placed(gw.pool, wanted, location_id) is None:
        target = blob_path(wanted)
        if len(chunks) == 1:
            await driver.move(chunks[0], target)
        elif not chunks:
            await driver.put_bytes(target, b"")
        else:
            await driver.concat(target, chunks)
    outbox_ids = []
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            blob_id, new_placement = await blob_model.record(conn, wanted, size, location_id)
            await blob_model.link(conn, repo_id, blob_id)
            await upload_model.delete(conn, upload_id)
            if new_placement:
                event = BlobWritten(
                    digest=wanted,
                    size=size,
                    location=gw.write_location,
                    region=gw.region,
                    repository=name,
                    namespace=name.split("/", 1)[0],
                    committed_at=time.time(),
                )
                outbox_ids.append(
                    await outbox_add(conn, gw.bus.subjects.blob_written(gw.write_location), event, f"blob:{wanted}:{gw.write_location}")
                )
    gw.relay.publish_soon(outbox_ids)
    gw.hash_states.drop(upload_id)
    await driver.delete_prefix(f"uploads/{upload_id}/")
    return _created(name, wanted)


async def _discard(gw: Gateway, upload_id: uuid.UUID) -> None:
    gw.hash_states.drop(upload_id)
    await upload_model.delete(gw.pool, upload_id)
    await gw.write_driver.delete_prefix(f"uploads/{upload_id}/")
