"""The gateway application: /v2 (OCI Distribution v1.1), /metrics, a basic /health/instance."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import time
from pathlib import Path

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from shared.bus import Bus
from shared.config import Config
from shared.db import close_pool, create_pool
from shared.errors import ApiError, RegistryError, unavailable_error
from shared.failures import dependency_down
from shared.heartbeats import Heartbeat
from shared.locations import Locations
from shared.logging import access, get_logger
from shared.metrics import UPLOADS_OPEN, RequestMetrics, observe_pool, render
from shared.model.accounts import dummy_password_hash
from shared.model.audit import AuditBuffer
from shared.model.locations import ensure_locations
from shared.outbox import OutboxRelay
from shared.registry import Registry, lookups, quota, uploads
from shared.servicekeys import PublicKeys
from shared.storage import prepare_location
from shared.switches import Switches

from . import health, ui
from .api.routes import dispatch as api_dispatch
from .auth import Authorizer, OpenAccess, TokenAccess
from .exports import resume_exports
from .forwarded import proxy_middleware
from .keys import InstanceKeys
from .logins import Logins
from .state import GATEWAY, ROUTE, Gateway
from .v2.routes import dispatch

log = get_logger("gateway")
SERVICE = "gateway"
REQUEST_METRICS = RequestMetrics(SERVICE)
# Request ids: a per-process random prefix and a counter; unique without a syscall per request.
_ID_PREFIX = os.urandom(4).hex()
_ids = itertools.count(1)


@web.middleware
async def registry_middleware(request: web.Request, handler):
    request_id = request.headers.get("X-Request-ID") or f"{_ID_PREFIX}{next(_ids):x}"
    structlog.contextvars.bind_contextvars(request_id=request_id, service=SERVICE)
    started = time.perf_counter()
    status = 500
    cancelled = False
    changes = lookups.watch()
    try:
        response = await handler(request)
        status = response.status
    except RegistryError as exc:
        status = exc.status
        response = web.Response(
            status=exc.status,
            body=exc.body() if request.method != "HEAD" else None,
            content_type="application/json",
            headers=exc.headers,
        )
        if exc.status >= 500:  # the access line has the status; this adds the code (a 401 is routine: a challenge)
            log.info("registry error", code=exc.code, status=exc.status, path=request.path)
    except web.HTTPException as exc:  # aiohttp's own answers (an unknown path outside /v2)
        status = exc.status
        log.info("request", method=request.method, path=loggable_path(request), status=status,
                 bytes=len((exc.text or "").encode()), duration_ms=round((time.perf_counter() - started) * 1000, 1),
                 request_id=request_id)
        raise
    except asyncio.CancelledError:
        cancelled = True
        raise
    except Exception as exc:
        down = dependency_down(exc)
        if down is None:
            log.exception("unhandled error", path=request.path, method=request.method)
            error = RegistryError("UNSUPPORTED", "internal error", status=500)
        else:  # nothing was changed; the client retries after Retry-After
            log.warning("dependency unavailable", what=down, path=request.path, method=request.method,
                        error=f"{type(exc).__name__}: {exc}")
            error = unavailable_error(down)
        status = error.status
        if request.path.startswith("/api/"):
            body = ApiError(error.status, error.message, error_type=error.code.lower()).body()
        else:
            body = error.body()
        response = web.Response(status=error.status, body=body if request.method != "HEAD" else None,
                                content_type="application/json", headers=error.headers)
    finally:
        if changes.changed and not cancelled:
            # This request moved or deleted a tag (or a repository, or a manifest): no gateway may
            # answer from before that once it has answered (shared/registry/lookups.py).
            gw = request.app[GATEWAY]
            await lookups.settle(changes, gw.pool, gw.config.meridian_lookup_cache_sec)
        elapsed = time.perf_counter() - started
        REQUEST_METRICS.observe(request.get(ROUTE, "other"), request.method, status, elapsed)
        structlog.contextvars.unbind_contextvars("request_id")
    if not response.prepared:
        response.headers["X-Request-ID"] = request_id
        response.headers["Docker-Distribution-API-Version"] = "registry/2.0"
    sent = response.body_length if response.prepared else _planned_length(response)
    access(method=request.method, path=loggable_path(request), status=status, bytes=sent,
           duration_ms=round(elapsed * 1000, 1), request_id=request_id)
    return response


def _planned_length(response: web.StreamResponse) -> int:
    """Bytes the response will send, before it is sent: its body's length, or the length it declares
    (a file response states its size only once it is prepared; 0 then)."""
    body = getattr(response, "body", None)
    if isinstance(body, bytes | bytearray):
        return len(body)
    size = getattr(body, "size", None)  # a payload (a str body, for one) knows its encoded size
    if isinstance(size, int):
        return size
    return response.content_length or 0


# Query parameters whose values may be credentials (tokens, signatures, passwords): logged as "***".
SECRET_PARAM_RE = re.compile(r"token|password|passwd|secret|signature|credential|sig$|key|code|auth", re.IGNORECASE)


def loggable_path(request: web.Request) -> str:
    """The path and query of the access log, with the values of credential-like parameters masked."""
    if not request.query_string:
        return request.path
    parts = []
    for name, value in request.query.items():
        parts.append(f"{name}={'***' if SECRET_PARAM_RE.search(name) else value}")
    return f"{request.path}?{'&'.join(parts)}"


async def metrics(request: web.Request) -> web.Response:
    gw = request.app.get(GATEWAY)
    if gw is not None:
        observe_pool("gateway", gw.pool)
        with contextlib.suppress(Exception):  # the database check reports that; the scrape still answers
            UPLOADS_OPEN.set(await uploads.count_open(gw.pool))
    body, content_type = render()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def ui_config(request: web.Request) -> web.Response:
    """What the web UI needs to know at load, Quay's `GET /config`: titles, branding, features, and the
    registry state so it can show a read-only banner."""
    gw = request.app[GATEWAY]
    config = gw.config
    return web.json_response({
        "config": {"REGISTRY_TITLE": config.registry_title, "REGISTRY_TITLE_SHORT": config.registry_title_short,
                   "BRANDING": config.branding, "SERVER_HOSTNAME": config.server_hostname,
                   "PREFERRED_URL_SCHEME": config.preferred_url_scheme, "TAG_EXPIRATION_OPTIONS": config.tag_expiration_options},
        "features": {"ANONYMOUS_ACCESS": config.feature_anonymous_access, "GARBAGE_COLLECTION": config.feature_garbage_collection,
                     "STORAGE_REPLICATION": config.feature_storage_replication, "LOG_EXPORT": config.feature_log_export,
                     "GENERAL_OCI_SUPPORT": config.feature_general_oci_support,
                     "QUOTA_MANAGEMENT": config.feature_quota_management},
        "registry_state": config.registry_state,
        "pushes_disabled": config.disable_pushes,
        "read_only_message": gw.switches.writes.problem(),
    })


def choose_authorizer(config: Config, pool, public_keys: PublicKeys) -> Authorizer:
    if config.meridian_insecure_open_access:
        return OpenAccess(pool)
    return TokenAccess(config, pool, public_keys)


async def _refresh_gauges(gw: Gateway) -> None:
    while True:
        with contextlib.suppress(Exception):
            UPLOADS_OPEN.set(await uploads.count_open(gw.pool))
        await asyncio.sleep(15)


def create_app(config: Config, *, authorizer: Authorizer | None = None, config_dir: Path | None = None) -> web.Application:
    middlewares: list[Middleware] = [registry_middleware]
    if config.proxy_count > 0:  # first, so every later middleware and handler sees the forwarded client
        middlewares.insert(0, proxy_middleware(config.proxy_count))
    app = web.Application(middlewares=middlewares, client_max_size=1024**4)

    async def lifecycle(app: web.Application):
        read_only = Switches.from_config(config).writes.read_only
        # Read-only mode: the database itself refuses writes from this process, so none can slip through.
        pool = await create_pool(config.db_uri, config.db_pool_size, read_only=read_only)
        keys = InstanceKeys(config, pool, config_dir)
        try:
            await keys.start()
        except Exception:
            await close_pool(pool)
            raise
        audit = AuditBuffer(pool, enabled=not read_only)
        audit.start()
        bus = Bus(config.nats_url, config.meridian_bus_prefix, name=f"gateway-{config.meridian_region}")
        await bus.connect()
        heartbeat = Heartbeat(bus, "gateway", config.meridian_region, config.meridian_heartbeat_interval_sec)
        locations = Locations(config, config_dir=config_dir)
        if not read_only:  # the region's own bucket is made here when missing (also `meridian storage init`)
            await prepare_location(locations.own_driver, log)
        locations.watch_own(interval=min(5.0, config.meridian_location_retry_after_sec),
                            timeout=config.meridian_health_check_timeout_sec, write=not read_only)
        location_ids = await ensure_locations(pool, list(config.storage_locations()), read_only=read_only)
        relay = OutboxRelay(pool, bus, relay_after=config.meridian_outbox_relay_after_sec)
        if not read_only:  # nothing is written, so nothing waits to be relayed
            relay.start()
        public_keys = PublicKeys(pool, ttl=config.meridian_token_recheck_sec)
        # Read-only mode keeps no lookups: a process that keeps them must register its lease (a write).
        kept_lookups: lookups.Lookups = lookups.Lookups(pool, 0 if read_only else config.meridian_lookup_cache_sec)
        kept_lookups.start()
        gw = Gateway(
            config=config,
            pool=pool,
            bus=bus,
            relay=relay,
            locations=locations,
            location_ids=location_ids,
            authorizer=authorizer or choose_authorizer(config, pool, public_keys),
            keys=keys,
            audit=audit,
            public_keys=public_keys,
            registry=Registry(pool, bus.subjects, config.meridian_region, relay, quota.policy_for(config),
                              lookup_lease_s=config.meridian_lookup_cache_sec),
            logins=Logins(config, pool, audit, read_only=read_only),
            lookups=kept_lookups,
        )
        await dummy_password_hash()  # made once, so the first unknown user costs what the others do
        app[GATEWAY] = gw
        await heartbeat.start()
        gauges = asyncio.get_running_loop().create_task(_refresh_gauges(gw))
        exports = None if read_only else asyncio.get_running_loop().create_task(resume_exports(gw))
        log.info("gateway ready", write_location=gw.write_location, read_only=gw.switches.writes.read_only)
        yield
        gauges.cancel()
        if exports is not None:
            exports.cancel()
        await heartbeat.stop()
        await kept_lookups.stop()
        await keys.stop()
        await audit.stop()
        await relay.stop()
        await bus.close()
        await locations.close()
        await close_pool(pool)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("*", "/v2", dispatch)
    # [\s\S]: a path may hold an encoded newline, which "." would not match (and aiohttp would answer in text).
    app.router.add_route("*", "/v2/{tail:[\\s\\S]*}", dispatch)
    app.router.add_route("*", "/api/v1/{tail:[\\s\\S]*}", api_dispatch)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/config", ui_config)
    health.add_routes(app)
    ui.add_routes(app)  # last: the web UI answers what no route above took
    return app
