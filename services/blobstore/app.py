"""The blobstore: one location's storage, served to other regions over HTTP and commanded over NATS.

HTTP (token from shared/tokens.py in `Authorization: Bearer`):
  GET/HEAD /blobs/<digest>   bytes, with Range
  PUT      /blobs/<digest>   streamed; the bytes must hash to the digest or nothing is stored
  /objects/<key>             upload chunks of another region's gateway while its own location is down
                             (push failover; shared/storage/remote.py): GET/HEAD (Range), PUT, DELETE
                             (a folder when the key ends in '/'), POST {"parts": [...]} assembles a
                             content address from chunks
NATS request/reply on `<prefix>.blobstore.<location>.<stat|delete|verify>` (BlobCommand -> BlobCommandReply).
"""
from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import msgspec
from aiohttp import web
from nats.aio.subscription import Subscription

from shared import tokens
from shared.bus import Bus, encode
from shared.config import Config
from shared.contract import BLOBSTORE_COMMANDS
from shared.digest import Digest, DigestMismatch, InvalidDigest, hasher, parse_digest, update_hash, verified
from shared.heartbeats import Heartbeat
from shared.http_range import RangeNotSatisfiable, parse_range
from shared.logging import get_logger
from shared.messages import BlobCommand, BlobCommandReply, CleanCommand, CleanReply
from shared.metrics import BYTES_PULLED, BYTES_PUSHED, RequestMetrics, render
from shared.storage import StorageDriver, open_driver, paths, prepare_location
from shared.switches import Switches

log = get_logger("blobstore")
REQUEST_METRICS = RequestMetrics("blobstore")


class Blobstore:
    def __init__(self, config: Config, location: str) -> None:
        self.config = config
        self.writes = Switches.from_config(config).writes
        self.location = location
        self.driver: StorageDriver = open_driver(config.storage_locations()[location])
        self.bus = Bus(config.nats_url, config.meridian_bus_prefix, name=f"blobstore-{location}")
        self.heartbeat = Heartbeat(self.bus, "blobstore", config.meridian_region, config.meridian_heartbeat_interval_sec)
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        if not self.writes.read_only:
            await prepare_location(self.driver, log)  # its bucket is made here when missing
        await self.bus.connect()
        assert self.bus.nc is not None  # connect() made it
        for command in BLOBSTORE_COMMANDS:
            subject = self.bus.subjects.blobstore_command(self.location, command)
            # A queue group lets several blobstore processes of one location share the commands.
            self._subscriptions.append(await self.bus.nc.subscribe(subject, queue=f"blobstore-{self.location}", cb=self._on_command))
        await self.heartbeat.start()

    async def stop(self) -> None:
        await self.heartbeat.stop()
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        await self.bus.close()
        await self.driver.close()

    async def _on_command(self, msg) -> None:
        command = msg.subject.rsplit(".", 1)[1]
        if command == "clean":
            await self._on_clean(msg)
            return
        try:
            request = msgspec.json.decode(msg.data, type=BlobCommand)
            digest = parse_digest(request.digest)
            reply = await self.run_command(command, digest)
        except (msgspec.ValidationError, InvalidDigest) as exc:
            reply = BlobCommandReply(ok=False, error=str(exc))
        except Exception as exc:  # the caller must hear back, whatever went wrong
            log.exception("blobstore command failed", command=command)
            reply = BlobCommandReply(ok=False, error=f"{type(exc).__name__}: {exc}")
        if msg.reply:
            await msg.respond(encode(reply))

    async def _on_clean(self, msg) -> None:
        try:
            request = msgspec.json.decode(msg.data, type=CleanCommand)
            if refused := self.writes.problem():
                reply = CleanReply(ok=False, error=refused)
            else:
                for upload_id in request.upload_ids:
                    await self.driver.delete_prefix(paths.upload_folder(upload_id))
                removed = await self.driver.clean_partial(request.older_than)
                reply = CleanReply(ok=True, removed=removed + len(request.upload_ids))
        except Exception as exc:
            log.exception("blobstore clean failed")
            reply = CleanReply(ok=False, error=f"{type(exc).__name__}: {exc}")
        if msg.reply:
            await msg.respond(encode(reply))

    async def run_command(self, command: str, digest: Digest) -> BlobCommandReply:
        path = paths.blob(digest)
        if command == "stat":
            size = await self.driver.stat(path)
            return BlobCommandReply(ok=True, exists=size is not None, size=size)
        if command == "delete":
            if refused := self.writes.problem():
                return BlobCommandReply(ok=False, error=refused)
            await self.driver.delete(path)
            return BlobCommandReply(ok=True)
        if command == "verify":
            size = await self.driver.stat(path)
            if size is None:
                return BlobCommandReply(ok=True, exists=False)
            running = hasher(digest.algorithm)
            async for block in self.driver.read(path):
                await update_hash(running, block)
            return BlobCommandReply(ok=True, exists=True, size=size, valid=f"{digest.algorithm}:{running.hexdigest()}" == digest)
        return BlobCommandReply(ok=False, error=f"unknown command {command!r}")


BLOBSTORE = web.AppKey("blobstore", Blobstore)


def _authorized(request: web.Request, store: Blobstore, action: str, digest: str) -> None:
    secret = store.config.meridian_service_secret
    header = request.headers.get("Authorization", "")
    if not secret or not header.startswith("Bearer "):
        raise web.HTTPUnauthorized(text="a blobstore token is required")
    try:
        tokens.verify(secret, header[7:], location=store.location, action=action, digest=digest)
    except tokens.TokenError as exc:
        raise web.HTTPForbidden(text=str(exc)) from None


def _digest(request: web.Request) -> Digest:
    try:
        return parse_digest(request.match_info["digest"])
    except InvalidDigest as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


async def get_blob(request: web.Request) -> web.StreamResponse:
    store: Blobstore = request.app[BLOBSTORE]
    digest = _digest(request)
    _authorized(request, store, "read", digest)
    path = paths.blob(digest)
    local = store.driver.local_file(path)
    if local is not None:
        if not local.is_file():
            raise web.HTTPNotFound(text=f"{digest} is not in {store.location}")
        BYTES_PULLED.labels(store.location).inc(local.stat().st_size)
        return web.FileResponse(local, chunk_size=256 * 1024, headers={"Docker-Content-Digest": digest})
    size = await store.driver.stat(path)
    if size is None:
        raise web.HTTPNotFound(text=f"{digest} is not in {store.location}")
    try:
        start, length, content_range = parse_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"}) from None
    headers = {"Docker-Content-Digest": digest, "Accept-Ranges": "bytes"}
    if content_range:
        headers["Content-Range"] = content_range
    response = web.StreamResponse(status=206 if content_range else 200, headers=headers)
    response.content_length = length
    await response.prepare(request)
    if request.method != "HEAD":
        async for block in store.driver.read(path, start, length):
            await response.write(block)
        BYTES_PULLED.labels(store.location).inc(length)
    await response.write_eof()
    return response


async def put_blob(request: web.Request) -> web.Response:
    store: Blobstore = request.app[BLOBSTORE]
    digest = _digest(request)
    _authorized(request, store, "write", digest)
    if refused := store.writes.problem():
        raise web.HTTPMethodNotAllowed("PUT", ["GET", "HEAD"], text=refused)
    path = paths.blob(digest)
    if await store.driver.stat(path) is not None:
        return web.Response(status=201, headers={"Docker-Content-Digest": digest})
    try:
        size = await store.driver.write(path, verified(request.content.iter_chunked(1 << 20), digest, request.content_length))
    except DigestMismatch as exc:
        raise web.HTTPBadRequest(text=f"digest mismatch: {exc}") from None
    BYTES_PUSHED.labels(store.location).inc(size)
    return web.Response(status=201, headers={"Docker-Content-Digest": digest})


def _object_key(request: web.Request, store: Blobstore, action: str, *, blob_ok: bool) -> str:
    """The key of an /objects request, after the token and the key's kind are checked: upload-area
    keys always, content addresses only where `blob_ok` (reads, and the target of an assembly)."""
    key = request.match_info["key"]
    _authorized(request, store, action, key)
    if not (paths.is_upload_key(key) or (blob_ok and paths.is_blob_key(key))):
        raise web.HTTPForbidden(text=f"{key} is not an object this API serves")
    return key


async def get_object(request: web.Request) -> web.StreamResponse:
    """Read an upload chunk or a blob by key (another region's gateway re-hashing its upload here)."""
    store: Blobstore = request.app[BLOBSTORE]
    key = _object_key(request, store, "object:read", blob_ok=True)
    size = await store.driver.stat(key)
    if size is None:
        raise web.HTTPNotFound(text=f"{key} is not in {store.location}")
    try:
        start, length, content_range = parse_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"}) from None
    response = web.StreamResponse(status=206 if content_range else 200,
                                  headers={"Content-Range": content_range} if content_range else {})
    response.content_length = length
    await response.prepare(request)
    if request.method != "HEAD" and length:
        async for block in store.driver.read(key, start, length):
            await response.write(block)
    await response.write_eof()
    return response


async def object_url(request: web.Request) -> web.Response:
    """A short-lived direct-download URL of a blob in this location (presigned), or null: another
    region's gateway redirects its client there instead of streaming the bytes through two hops."""
    store: Blobstore = request.app[BLOBSTORE]
    key = _object_key(request, store, "object:read", blob_ok=True)
    try:
        expires = min(max(int(request.query.get("expires", "300")), 1), 7 * 24 * 3600)
        size = int(request.query["size"]) if "size" in request.query else None
    except ValueError:
        raise web.HTTPBadRequest(text="expires and size must be whole numbers") from None
    found = await store.driver.stat(key)
    if found is None:  # never send a client to bytes that are not here
        raise web.HTTPNotFound(text=f"{key} is not in {store.location}")
    if size is not None and found != size:  # nor to a damaged copy: the gateway tries another
        log.error("object damaged; not signed", key=key, location=store.location, size=found, expected=size)
        raise web.HTTPNotFound(text=f"{key} in {store.location} holds {found} bytes, not {size}")
    return web.json_response({"url": await store.driver.redirect_url(key, expires)})


async def put_object(request: web.Request) -> web.Response:
    """Write an upload chunk (push failover: a gateway whose own location is down writes here)."""
    store: Blobstore = request.app[BLOBSTORE]
    key = _object_key(request, store, "object:write", blob_ok=False)
    if refused := store.writes.problem():
        raise web.HTTPMethodNotAllowed("PUT", ["GET", "HEAD"], text=refused)
    size = await store.driver.write(key, request.content.iter_chunked(1 << 20))
    BYTES_PUSHED.labels(store.location).inc(size)
    return web.json_response({"size": size}, status=201)


async def assemble_object(request: web.Request) -> web.Response:
    """Make a content address from upload chunks: {"parts": [...], "remove_parts": bool}."""
    store: Blobstore = request.app[BLOBSTORE]
    key = _object_key(request, store, "object:assemble", blob_ok=True)
    if not paths.is_blob_key(key):
        raise web.HTTPForbidden(text="only a content address can be assembled")
    try:
        body = await request.json()
        parts = body["parts"]
        remove_parts = bool(body.get("remove_parts"))
    except (ValueError, KeyError, TypeError):
        raise web.HTTPBadRequest(text='expected {"parts": [...], "remove_parts": bool}') from None
    if not isinstance(parts, list) or not all(isinstance(p, str) and paths.is_upload_key(p) for p in parts):
        raise web.HTTPForbidden(text="parts must be upload chunks")
    if remove_parts and len(parts) == 1:
        await store.driver.move(parts[0], key)
        size = await store.driver.stat(key) or 0
    else:
        size = await store.driver.concat(key, parts)
    return web.json_response({"size": size}, status=201)


async def delete_object(request: web.Request) -> web.Response:
    """Delete an upload chunk, or a whole upload folder (a key ending in '/')."""
    store: Blobstore = request.app[BLOBSTORE]
    key = _object_key(request, store, "object:delete", blob_ok=False)
    if key.endswith("/"):
        await store.driver.delete_prefix(key)
    else:
        await store.driver.delete(key)
    return web.Response(status=204)


async def metrics(request: web.Request) -> web.Response:
    body, content_type = render()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def health(request: web.Request) -> web.Response:
    store: Blobstore = request.app[BLOBSTORE]
    checks = {"bus": store.bus.connected, "storage": False}
    try:
        await asyncio.wait_for(store.driver.stat("health-probe"), 3)
        checks["storage"] = True
    except Exception:
        pass
    status = 200 if all(checks.values()) else 503
    return web.json_response({"data": {"services": checks}, "status_code": status}, status=status)


@web.middleware
async def metrics_middleware(request: web.Request, handler):
    loop = asyncio.get_running_loop()
    started = loop.time()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "other"
        REQUEST_METRICS.observe(route, request.method, status, loop.time() - started)


def create_app(config: Config, *, location: str | None = None, config_dir: Path | None = None) -> web.Application:
    location = location or config.preferred_locations()[0]
    app = web.Application(middlewares=[metrics_middleware], client_max_size=1024**4)

    async def lifecycle(app: web.Application):
        store = Blobstore(config, location)
        await store.start()
        app[BLOBSTORE] = store
        log.info("blobstore ready", location=location)
        yield
        await store.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/blobs/{digest}", get_blob)  # also answers HEAD
    app.router.add_put("/blobs/{digest}", put_blob)
    app.router.add_get("/objects/{key:.+}", get_object)  # also answers HEAD
    app.router.add_get("/urls/{key:.+}", object_url)
    app.router.add_put("/objects/{key:.+}", put_object)
    app.router.add_post("/objects/{key:.+}", assemble_object)
    app.router.add_delete("/objects/{key:.+}", delete_object)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    return app
