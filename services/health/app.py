"""The health service: one per region, the place a load balancer asks. It serves the same endpoints
as every gateway (shared/health.py), plus /metrics, and beats like every other service."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from shared import health
from shared.bus import Bus
from shared.callers import is_superuser_caller
from shared.config import Config
from shared.db import close_pool, create_pool
from shared.heartbeats import Heartbeat
from shared.locations import Locations
from shared.logging import get_logger
from shared.metrics import RequestMetrics, observe_pool, render
from shared.servicekeys import ServiceKeyError, load_key_files

log = get_logger("health")
CONTEXT = web.AppKey("health", health.HealthContext)
REQUEST_METRICS = RequestMetrics("health")


def _signing_kid(config: Config, config_dir: Path | None):
    """In read-only mode the gateways sign with the operator's key: check that one. Otherwise this
    process signs nothing and the check looks for any usable key."""
    if config.registry_state != "readonly":
        return lambda: None
    base = config_dir or Path.cwd()

    def kid() -> str | None:
        try:
            pem, kid_file = (Path(p) if Path(p).is_absolute() else base / p for p in (
                config.instance_service_key_location, config.instance_service_key_kid_location))
            return load_key_files(pem, kid_file).kid
        except ServiceKeyError as exc:
            return f"unreadable ({exc})"

    return kid


def handler(kind: str):
    async def handle(request: web.Request) -> web.Response:
        ctx = request.app[CONTEXT]
        try:
            # Only Bearer API tokens here: this service signs no sessions and takes no cookies.
            show = await is_superuser_caller(ctx.pool, ctx.config, None, authorization=request.headers.get("Authorization", ""))
        except Exception:
            show = False
        payload, status = await health.evaluate(ctx, kind, show_failures=show)
        REQUEST_METRICS.observe(kind, "GET", status, 0.0)
        return web.Response(body=payload, status=status, content_type="application/json", headers={"Cache-Control": "no-store"})

    return handle


async def metrics(request: web.Request) -> web.Response:
    if CONTEXT in request.app:
        observe_pool("health", request.app[CONTEXT].pool)
    body, content_type = render()
    return web.Response(body=body, headers={"Content-Type": content_type})


def create_app(config: Config, *, config_dir: Path | None = None) -> web.Application:
    app = web.Application()

    async def lifecycle(app: web.Application):
        pool = await create_pool(config.db_uri, 4, read_only=config.registry_state == "readonly")
        bus = Bus(config.nats_url, config.meridian_bus_prefix, name=f"health-{config.meridian_region}")
        await bus.connect()
        locations = Locations(config, config_dir=config_dir)
        heartbeat = Heartbeat(bus, "health", config.meridian_region, config.meridian_heartbeat_interval_sec)
        await heartbeat.start()
        app[CONTEXT] = health.HealthContext(config, pool, bus, locations, _signing_kid(config, config_dir), config_dir)
        log.info("health ready", region=config.meridian_region)
        yield
        await heartbeat.stop()
        await locations.close()
        await bus.close()
        await close_pool(pool)

    app.cleanup_ctx.append(lifecycle)
    for path, kind in health.PATHS.items():
        app.router.add_get(path, handler(kind))
    app.router.add_get("/metrics", metrics)
    return app
