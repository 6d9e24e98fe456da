"""Blob uploads: monolithic, POST-then-PUT, chunked and streamed PATCH, cross-repo mount, cancel.

Chunks are stored as separate objects (shared/storage/paths.py) and listed in the session row,
so any gateway process can take the next chunk. The running sha256 lives in the process that took
the previous chunk; when the final PUT reaches a process without it, the stored chunks are re-read
(docs/decisions.md, "Chunked uploads across processes").
"""
from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
from aiohttp import web

from shared.digest import Digest, hasher, update_hash
from shared.errors import RegistryError, unavailable_error
from shared.failures import dependency_down
from shared.metrics import BYTES_PUSHED, UPLOAD_REHASH
from shared.registry import actor_for, blobs, quota, uploads
from shared.registry.uploads import UploadSession
from shared.storage import StorageDriver, paths
from shared.storage.base import NotFound

from ..auth import Action, Identity
from ..state import Gateway, HashState
from .base import authorize, body_blocks, content_length, digest_param, ensure_repository, gateway

# At most 19 digits a side: an offset past a bigint is refused as malformed, not computed with.
CONTENT_RANGE_RE = re.compile(r"^(?:bytes )?(\d{1,19})-(\d{1,19})$")


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
    identity = await authorize(request, name, Action.PUSH)
    gw = gateway(request)
    mount = request.query.get("mount")
    if mount is not None:
        digest = digest_param(mount)
        source = request.query.get("from")
        # Only from repositories the caller may read: a named source it may not read, or a blob that no
        # readable repository holds, is treated like an absent blob (an ordinary upload session, 202),
        # so the answer says nothing about what exists elsewhere (issue 11).
        sources: list[str] | None
        if source is not None:
            sources = [source] if await gw.authorizer.allowed(identity, source, Action.PULL) else []
        else:
            sources = gw.authorizer.readable(identity)
        if sources is None or sources:
            blob_id = await blobs.find_mountable(gw.pool, digest, sources)
            if blob_id is not None:
                repo = await ensure_repository(request, name, identity)
                try:
                    async with gw.registry.change(actor_for(identity.principal)) as change:
                        await blobs.link(change, repo.id, blob_id)
                    return _created(name, digest)
                except asyncpg.ForeignKeyViolationError:
                    pass  # gc collected the blob a moment ago: take the bytes as an upload instead
    wanted = request.query.get("digest")
    # A full namespace takes no upload (and gets no repository made for one).
    monolithic_length = (content_length(request) or 0) if wanted is not None else 0
    await _room(gw, identity, name, monolithic_length, starting=True)
    if wanted is not None:
        repo = await ensure_repository(request, name, identity)
        return await _monolithic(request, gw, name, repo.id, digest_param(wanted), identity)
    location_id = gw.location_ids[gw.locations.write_target()]
    opened = await uploads.open_session(gw.pool, name, location_id)
    if opened is None:  # first push to this repository
        await ensure_repository(request, name, identity)
        opened = await uploads.open_session(gw.pool, name, location_id)
    if opened is None:  # deleted again meanwhile
        raise RegistryError("NAME_UNKNOWN", detail={"name": name})
    upload_id, _ = opened
    return web.Response(status=202, headers=_session_headers(gw, name, upload_id, 0))


async def _monolithic(request: web.Request, gw: Gateway, name: str, repo_id: int, digest: Digest,
                      identity: Identity) -> web.Response:
    """POST ?digest= with the whole blob: no session row is needed, the bytes are verified in flight."""
    upload_id = uuid.uuid4()
    running = hasher(digest.algorithm)
    location = gw.locations.write_target()
    try:
        chunk, size = await _store_chunk(request, gw, location, upload_id, 0, running)
        await _room(gw, identity, name, size)  # a body without Content-Length is measured once stored
        computed = Digest(f"{digest.algorithm}:{running.hexdigest()}")
        return await _commit(gw, identity, name, location, None, repo_id, 0, [chunk], size, digest, computed)
    finally:
        await gw.locations.driver(location).delete_prefix(paths.upload_folder(upload_id))


async def _room(gw: Gateway, identity: Identity, name: str, adding: int, *, starting: bool = False,
                session: UploadSession | None = None) -> None:
    """The namespace's quota lets this upload hold `adding` bytes; else 403 DENIED and the session
    (with its chunks) is cancelled, so a refused upload leaves nothing behind."""
    try:
        await quota.check_room(gw.registry, name.split("/", 1)[0], name, adding, actor_for(identity.principal),
                               starting=starting)
    except quota.QuotaExceeded:
        if session is not None:
            await _discard(gw, session)
        raise


async def _take_chunk_within_quota(request, gw: Gateway, identity: Identity, name: str, session: UploadSession,
                                   location: str):
    """_take_chunk, refused before the bytes are stored when Content-Length says they would pass the
    quota, or right after when the body had no length."""
    declared = content_length(request)
    if declared:
        await _room(gw, identity, name, session.size + declared, session=session)
    path, size, running = await _take_chunk(request, gw, name, session, location)
    if declared is None and size:
        await _room(gw, identity, name, session.size + size, session=session)
    return path, size, running


async def _store_chunk(request, gw: Gateway, location: str, upload_id: uuid.UUID, offset: int,
                       running) -> tuple[str, int]:
    """Stream the request body into one chunk object at `location` while hashing; (path, length).
    A body that ends early is the client's fault (400); a store that fails is marked down (so the
    next upload goes elsewhere) and answered 503."""
    expected = content_length(request)
    path = paths.upload_chunk(upload_id, offset)
    driver = gw.locations.driver(location)
    body_error: list[Exception] = []
    try:
        size = await driver.write(path, _hashed_body(request, running, body_error))
    except Exception as exc:
        if body_error:
            raise RegistryError("SIZE_INVALID", f"request body ended before Content-Length bytes: {body_error[0]}") from None
        if dependency_down(exc):
            gw.locations.breaker.failed(location)
        raise
    if expected is not None and size != expected:
        await driver.delete(path)
        raise RegistryError("SIZE_INVALID", f"received {size} bytes, Content-Length said {expected}")
    BYTES_PUSHED.labels(location).inc(size)
    return path, size


async def _hashed_body(request, running, body_error: list[Exception]) -> AsyncIterator[bytearray]:
    """The request body's blocks, hashed into `running` (when there is one) on the way; an error of the
    body itself (not of the store) is kept in `body_error`."""
    # Hash block N in a thread while the driver writes it and the next block is read: the
    # updates stay in order because each waits for the one before.
    pending = None
    try:
        async for block in body_blocks(request):
            if running is not None:
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(update_hash(running, block))
            yield block
    except (ConnectionResetError, EOFError, aiohttp.ClientPayloadError, web.HTTPException) as exc:
        body_error.append(exc)
        raise
    except Exception as exc:
        if type(exc).__module__.startswith("aiohttp"):  # payload errors: truncated or malformed body
            body_error.append(exc)
        raise
    if pending is not None:
        await pending


async def _session(gw: Gateway, name: str, upload_text: str) -> UploadSession:
    session = await uploads.get(gw.pool, _parse_upload_id(upload_text), name)
    if session is None:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"upload": upload_text})
    return session


async def _writable_location(gw: Gateway, session: UploadSession) -> str:
    """Where the session's next chunk goes: its own location; an empty session whose location is
    down moves to the current write target (push failover). A session with chunks in a location
    that is down waits for it: 503, retry later."""
    location = gw.location_names[session.location_id]
    if gw.locations.breaker.is_open(location):
        target = gw.locations.write_target()
        if (session.size == 0 and target != location
                and await uploads.relocate(gw.pool, session.id, 0, gw.location_ids[target])):
            return target
        if session.size:
            raise unavailable_error(f"storage location {location}, which holds this upload's first chunks,")
    return location


def _check_content_range(request: web.Request, name: str, session: UploadSession) -> None:
    content_range = request.headers.get("Content-Range")
    if content_range is None:
        return
    match = CONTENT_RANGE_RE.match(content_range.strip())
    if not match:
        raise RegistryError("BLOB_UPLOAD_INVALID", f"invalid Content-Range {content_range!r}")
    start, end = int(match.group(1)), int(match.group(2))
    if start != session.size or end < start:
        raise RegistryError(
            "RANGE_INVALID",
            f"chunk starts at {start}, upload is at {session.size}",
            headers={"Range": _range_value(session.size), "Location": _upload_url(name, session.id)},
        )
    length = content_length(request)
    if length is not None and length != end - start + 1:
        raise RegistryError("SIZE_INVALID", f"Content-Range covers {end - start + 1} bytes, Content-Length is {length}")


async def _take_chunk(request, gw: Gateway, name: str, session: UploadSession, location: str):
    """Store the body as the next chunk (not yet recorded): (path or None if empty, length, running hash)."""
    _check_content_range(request, name, session)
    state = gw.hash_states.get(session.id, session.size)
    running = state.hasher.copy() if state else (hasher("sha256") if session.size == 0 else None)
    path, size = await _store_chunk(request, gw, location, session.id, session.size, running)
    if size == 0:
        await gw.locations.driver(location).delete(path)
        return None, 0, running
    return path, size, running


async def patch_upload(request: web.Request, name: str, upload: str) -> web.Response:
    identity = await authorize(request, name, Action.PUSH)
    gw = gateway(request)
    session = await _session(gw, name, upload)
    location = await _writable_location(gw, session)
    path, size, running = await _take_chunk_within_quota(request, gw, identity, name, session, location)
    new_size = session.size
    if path is not None:
        try:
            appended = await uploads.append_chunk(gw.pool, session.id, session.size, path, size)
        except Exception:
            # Not recorded (the database is away?): the client resends this chunk at the same offset.
            await gw.locations.driver(location).delete(path)
            raise
        if appended is None:
            await gw.locations.driver(location).delete(path)
            raise RegistryError("RANGE_INVALID", "another chunk was written at this offset first",
                                headers={"Range": _range_value(session.size)})
        new_size = appended
    if running is not None:
        gw.hash_states.put(session.id, HashState(new_size, running))
    return web.Response(status=202, headers=_session_headers(gw, name, session.id, new_size))


async def upload_status(request: web.Request, name: str, upload: str) -> web.Response:
    await authorize(request, name, Action.PUSH)
    gw = gateway(request)
    session = await _session(gw, name, upload)
    return web.Response(status=204, headers=_session_headers(gw, name, session.id, session.size))


async def cancel_upload(request: web.Request, name: str, upload: str) -> web.Response:
    await authorize(request, name, Action.PUSH)
    gw = gateway(request)
    session = await _session(gw, name, upload)
    await _discard(gw, session)
    return web.Response(status=204)


async def finish_upload(request: web.Request, name: str, upload: str) -> web.Response:
    identity = await authorize(request, name, Action.PUSH)
    gw = gateway(request)
    digest = digest_param(request.query.get("digest"))
    session = await _session(gw, name, upload)
    location = await _writable_location(gw, session)
    chunks, size = list(session.chunks), session.size
    state = gw.hash_states.get(session.id, session.size)
    running = state.hasher if state else None
    final = None
    if (content_length(request) or 0) > 0 or request.headers.get("Transfer-Encoding") == "chunked":
        # The final chunk is not recorded in the session: completing claims the session as it was.
        final, length, running = await _take_chunk_within_quota(request, gw, identity, name, session, location)
        if final is not None:
            chunks.append(final)
            size += length
    try:
        if running is not None and digest.algorithm == "sha256":
            computed = Digest(f"sha256:{running.hexdigest()}")
        else:
            computed = await _rehash(gw.locations.driver(location), chunks, digest.algorithm)
        return await _commit(gw, identity, name, location, session.id, session.repository_id, session.size, chunks, size,
                             digest, computed)
    except Exception as exc:
        if isinstance(exc, RegistryError) and exc.code == "DIGEST_INVALID":
            await _discard(gw, session)  # bytes that hash to the wrong digest can never complete
        elif final is not None:
            # This request's final chunk was never recorded (another completion won, or the commit
            # failed): remove it, so nothing stays behind; a retry sends it again.
            await gw.locations.driver(location).delete(final)
        if isinstance(exc, NotFound):
            # A chunk went while this request re-read it: another completion of the session took it.
            raise await _lost_race(gw, name, session.id) from None
        raise


async def _lost_race(gw: Gateway, name: str, upload_id: uuid.UUID) -> RegistryError:
    """The answer to a completion that another request of the same session beat: the session is gone
    (completed or cancelled) -> BLOB_UPLOAD_UNKNOWN; it is still there but changed -> BLOB_UPLOAD_INVALID."""
    if await uploads.get(gw.pool, upload_id, name) is None:
        return RegistryError("BLOB_UPLOAD_UNKNOWN", "the upload was completed or cancelled by another request",
                             detail={"upload": str(upload_id)})
    return RegistryError("BLOB_UPLOAD_INVALID", "the upload changed while this request ran; check its status and retry",
                         detail={"upload": str(upload_id)})


async def _rehash(driver: StorageDriver, chunks: list[str], algorithm: str) -> Digest:
    UPLOAD_REHASH.inc()
    running = hasher(algorithm)
    for chunk in chunks:
        async for block in driver.read(chunk):
            await update_hash(running, block)
    return Digest(f"{algorithm}:{running.hexdigest()}")


async def _commit(
    gw: Gateway,
    identity: Identity,
    name: str,
    location: str,
    upload_id: uuid.UUID | None,
    repo_id: int,
    session_size: int,
    chunks: list[str],
    size: int,
    wanted: Digest,
    computed: Digest,
) -> web.Response:
    """Verify, then record the blob; its bytes move to their content address inside the change."""
    if computed != wanted:
        raise RegistryError("DIGEST_INVALID", detail={"expected": wanted, "computed": computed})
    driver = gw.locations.driver(location)

    async def put_bytes() -> None:
        target = paths.blob(wanted)
        if len(chunks) == 1:
            await driver.move(chunks[0], target, size=size)  # the one chunk is the whole verified blob
        elif not chunks:
            await driver.put_bytes(target, b"")
        else:
            await driver.concat(target, chunks)

    async with gw.registry.change(actor_for(identity.principal)) as change:
        blob_id = await blobs.commit(change, repository=name, repository_id=repo_id, digest=wanted, size=size,
                                     location=location, location_id=gw.location_ids[location],
                                     put_bytes=put_bytes, upload_id=upload_id, upload_size=session_size)
    if blob_id is None:  # only with a session: another request completed, cancelled or extended it first
        raise await _lost_race(gw, name, upload_id) if upload_id is not None else RegistryError("BLOB_UPLOAD_INVALID")
    if upload_id is not None:
        gw.hash_states.drop(upload_id)
        await driver.delete_prefix(paths.upload_folder(upload_id))
    return _created(name, wanted)


async def _discard(gw: Gateway, session: UploadSession) -> None:
    gw.hash_states.drop(session.id)
    await uploads.discard(gw.pool, session.id)
    await gw.locations.driver(gw.location_names[session.location_id]).delete_prefix(paths.upload_folder(session.id))
