"""The gc service: a Collector pass every GARBAGE_COLLECTION_FREQUENCY seconds, and /metrics (with,
after each pass, every namespace's usage and limits and the registry's size).

Any number of gc processes may run in any region: KV locks keep two of them off one repository,
and the global phases (purges, blob sweep, upload cleanup) run in one place at a time.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import structlog
from aiohttp import web

from shared.bus import Bus
from shared.config import Config
from shared.db import close_pool, create_pool
from shared.heartbeats import Heartbeat
from shared.locations import Locations
from shared.logging import get_logger
from shared.metrics import QUOTA_LIMIT, QUOTA_REJECT, QUOTA_USAGE, REGISTRY_SIZE, observe_pool, render
from shared.model.locations import ensure_locations
from shared.registry import quota
from shared.tasks import cancel_and_wait

from .collector import Collector

log = get_logger("gc")


class GcService:
    def __init__(self, config: Config, *, config_dir: Path | None = None) -> None:
        self.config = config
        self.config_dir = config_dir
        self.pool: asyncpg.Pool | None = None
        self.bus: Bus | None = None
        self.locations: Locations | None = None
        self.collector: Collector | None = None
        self._task: asyncio.Task | None = None
        self.heartbeat: Heartbeat | None = None
        self._observed: set[str] = set()  # namespaces with usage gauges

    async def open(self) -> Collector:
        pool = self.pool = await create_pool(self.config.db_uri, max(2, min(self.config.db_pool_size, 5)))
        bus = self.bus = Bus(self.config.nats_url, self.config.meridian_bus_prefix, name=f"gc-{self.config.meridian_region}")
        await bus.connect()
        locations = self.locations = Locations(self.config, config_dir=self.config_dir)
        await ensure_locations(pool, list(self.config.storage_locations()))
        collector = self.collector = Collector(self.config, pool, bus, locations)
        await collector.open()
        return collector

    def _opened_pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError("open() first")
        return self.pool

    async def start(self) -> None:
        collector = await self.open()
        self.heartbeat = Heartbeat(self.bus, "gc", self.config.meridian_region, self.config.meridian_heartbeat_interval_sec)
        await self.heartbeat.start()
        self._task = asyncio.get_running_loop().create_task(self._run(collector))
        log.info("gc ready", frequency=self.config.garbage_collection_frequency)

    async def _run(self, collector: Collector) -> None:
        structlog.contextvars.bind_contextvars(service="gc")  # this task's lines, also inside `meridian up`
        while True:
            try:
                await collector.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gc pass failed; the next one retries")
            try:
                await self.observe_usage()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("usage metrics not refreshed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.config.garbage_collection_frequency)

    async def observe_usage(self) -> None:
        """meridian_registry_size_bytes, and meridian_quota_*_bytes per namespace when
        MERIDIAN_METRICS_PER_NAMESPACE is on (they name every namespace and its private usage)."""
        REGISTRY_SIZE.set(await quota.registry_size(self._opened_pool()))
        if not self.config.meridian_metrics_per_namespace:
            return
        default = self.config.default_system_reject_quota_bytes
        seen: set[str] = set()
        for row in await quota.usage_by_namespace(self._opened_pool()):
            seen.add(row["name"])
            QUOTA_USAGE.labels(row["name"]).set(row["usage_bytes"])
            QUOTA_LIMIT.labels(row["name"]).set(row["limit_bytes"] if row["limit_bytes"] is not None else default)
            reject = row["reject_bytes"] if row["limit_bytes"] is not None else default
            QUOTA_REJECT.labels(row["name"]).set(reject or 0)
        for gone in self._observed - seen:  # namespaces deleted since the last pass
            for gauge in (QUOTA_USAGE, QUOTA_LIMIT, QUOTA_REJECT):
                gauge.remove(gone)
        self._observed = seen

    async def stop(self) -> None:
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        if self._task is not None:
            await cancel_and_wait(self._task)
        if self.collector is not None:
            await self.collector.relay.stop()  # waits for the publishes of the last changes
        if self.locations is not None:
            await self.locations.close()
        if self.bus is not None:
            await self.bus.close()
        if self.pool is not None:
            await close_pool(self.pool)


SERVICE = web.AppKey("gc", GcService)


async def metrics(request: web.Request) -> web.Response:
    observe_pool("gc", request.app[SERVICE].pool)
    body, content_type = render()
    return web.Response(body=body, headers={"Content-Type": content_type})


def create_app(service: GcService) -> web.Application:
    app = web.Application()
    app[SERVICE] = service

    async def lifecycle(app):
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/metrics", metrics)
    return app
