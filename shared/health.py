"""Health checks in Quay's shape, shared by the health service and every gateway.

Each endpoint fails (503) only for what stops the thing it speaks for, so a load balancer that follows
it never takes a healthy part out:

/health/instance (alias /health) — can THIS instance serve pushes and pulls? database, storage (the
  region's own location answers writes, or, while it is down, a location pushes fail over to does),
  disk space, the instance service key, auth. For a region's local load balancer.
/health/endtoend (alias /status) — can this REGION serve? database, storage as above, and a gateway of
  the region beating (when heartbeats can be read). For a global load balancer choosing regions.
/health/warning — what degrades without stopping service: disk space running low, the bus (while it
  is down events wait in the outbox), events waiting to be published, the own location when pushes
  fail over, other regions' locations, every region's services (heartbeats), and under-replication
  (copies missing longer than MERIDIAN_UNDER_REPLICATION_WARNING_SEC). Nobody should take an instance
  out for these; someone should look.

Body `{"data":{"services":{...}},"status_code":200|503}`; HTTP status = status_code. Each check is
bounded by MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC so a hung dependency answers 503 fast. Why a check failed
goes to the log (`[FAILED HEALTH CHECK]`) and, for superusers only, into `data.failures`.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from shared import heartbeats
from shared.bus import Bus
from shared.config import Config, LocalStorageParams
from shared.locations import Locations
from shared.logging import get_logger
from shared.model import Db
from shared.servicekeys import usable_problem
from shared.storage import paths

log = get_logger("health")
Check = Callable[[], Awaitable[bool]]


class CheckFailed(Exception):
    """A check that knows why it failed."""


@dataclass
class HealthContext:
    config: Config
    pool: Db
    bus: Bus
    locations: Locations
    signing_kid: Callable[[], str | None]  # the key this process signs with, if any
    config_dir: Path | None = None
    served_by: str = "health"  # the service answering: a gateway answering is a gateway of the region that works

    @property
    def read_only(self) -> bool:
        return self.config.registry_state == "readonly"


async def run(checks: dict[str, Check], timeout: float) -> tuple[dict[str, bool], dict[str, str]]:
    failures: dict[str, str] = {}

    async def one(name: str, check: Check) -> bool:
        try:
            if await asyncio.wait_for(check(), timeout):
                return True
            failures[name] = "check returned false"
        except TimeoutError:
            failures[name] = f"timed out after {timeout} s"
        except Exception as exc:
            failures[name] = f"{type(exc).__name__}: {exc}"
        log.warning("[FAILED HEALTH CHECK]", check=name, error=failures[name])
        return False

    results = await asyncio.gather(*(one(n, c) for n, c in checks.items()))
    return dict(zip(checks, results, strict=True)), failures


def body(services: dict[str, bool], failures: dict[str, str] | None) -> tuple[bytes, int]:
    status = 200 if all(services.values()) else 503
    data: dict = {"services": services}
    if failures:
        data["failures"] = failures
    return json.dumps({"data": data, "status_code": status}).encode(), status


def _free_fraction(path: str) -> float:
    usage = shutil.disk_usage(path)
    return usage.free / usage.total if usage.total else 1.0


def _disk_paths(ctx: HealthContext) -> list[str]:
    paths = [tempfile.gettempdir()]
    location = ctx.config.storage_locations()[ctx.locations.own]
    if isinstance(location.params, LocalStorageParams) and location.params.storage_path is not None:
        paths.append(location.params.storage_path)
    return paths


async def _database(ctx: HealthContext) -> bool:
    return await ctx.pool.fetchval("SELECT true")


def _bus(ctx: HealthContext) -> Check:
    async def check() -> bool:
        nc = ctx.bus.nc
        if nc is None or not ctx.bus.connected:
            raise CheckFailed("not connected to NATS (events wait in the outbox and go out when it returns)")
        # nats-py annotates the timeout as int but passes it to asyncio.wait_for: fractions of a second work.
        await nc.flush(timeout=ctx.config.meridian_health_check_timeout_sec)  # type: ignore[arg-type]
        return True

    return check


def storage_check(ctx: HealthContext, name: str) -> Check:
    async def check() -> bool:
        locations = ctx.locations
        if name in locations.drivers:
            driver = locations.drivers[name]
            if ctx.read_only:  # no writes in read-only mode: a stat proves the store answers
                await driver.stat(paths.HEALTH_STAT)
                return True
            key = paths.health_probe()
            await driver.put_bytes(key, b"testing 123")
            try:
                return await driver.get_bytes(key) == b"testing 123"
            finally:
                await driver.delete(key)
        async with locations.http().get(f"{locations.remote_urls[name]}/health") as response:
            if response.status != 200:
                raise CheckFailed(f"the blobstore of {name} answered {response.status}")
            return True

    return check


def serving_storage_check(ctx: HealthContext) -> Check:
    """The region's own location, or — while it is down — any location in the preference order that
    pushes fail over to and pulls are served from."""
    async def check() -> bool:
        problems = []
        for name in ctx.locations.preference:
            if not ctx.locations.reachable(name):
                continue
            try:
                if await storage_check(ctx, name)():
                    return True
            except Exception as exc:
                problems.append(f"{name}: {type(exc).__name__}: {exc}")
        raise CheckFailed("no storage location answers: " + "; ".join(problems))

    return check


def expected_services(config: Config) -> list[str]:
    """The services this region must run, unless MERIDIAN_HEALTH_SERVICES names them."""
    if config.meridian_health_services is not None:
        return list(config.meridian_health_services)
    expected = ["gateway"]
    own = config.preferred_locations()[0]
    if own in config.meridian_blobstore_urls:
        expected.append("blobstore")
    if config.feature_storage_replication:
        expected.append("replicator")
    if config.meridian_notifier_enabled:
        expected.append("notifier")
    return expected


def _disk_check(ctx: HealthContext, threshold: float) -> Check:
    async def check() -> bool:
        low = [p for p in _disk_paths(ctx) if _free_fraction(p) < threshold]
        if low:
            raise CheckFailed(f"less than {threshold:.0%} free on {', '.join(low)}")
        return True

    return check


async def instance_checks(ctx: HealthContext) -> dict[str, Check]:
    config = ctx.config

    async def database() -> bool:
        return await _database(ctx)

    async def service_key() -> bool:
        kid = ctx.signing_kid()
        if kid is None:  # a process that signs nothing: some approved key must exist for the gateways
            found = await ctx.pool.fetchval(
                "SELECT kid FROM service_keys WHERE approved_at IS NOT NULL AND (expires_at IS NULL OR expires_at > now()) "
                "AND service = $1 LIMIT 1", config.instance_service_key_service)
            if found is None:
                raise CheckFailed("no approved, unexpired service key is registered")
            return True
        problem = await usable_problem(ctx.pool, kid)
        if problem:
            raise CheckFailed(problem)
        return True

    async def auth() -> bool:
        await ctx.pool.fetchval("SELECT count(*) FROM (SELECT 1 FROM users LIMIT 1) AS u")
        return True

    return {"database": database, "storage": serving_storage_check(ctx),
            "disk_space": _disk_check(ctx, config.diskspace_health_threshold), "service_key": service_key, "auth": auth}


async def _beats(ctx: HealthContext):
    try:
        return heartbeats.alive(await asyncio.wait_for(heartbeats.read_all(ctx.bus), ctx.config.meridian_health_check_timeout_sec))
    except Exception as exc:
        log.warning("[FAILED HEALTH CHECK] heartbeats unreadable", error=f"{type(exc).__name__}: {exc}")
        return None


def _service_check(beats, region: str, service: str, *, unknown_is_fine: bool = False) -> Check:
    async def check() -> bool:
        if beats is None:
            if unknown_is_fine:  # the bus is down: /health/warning says so; this cannot be judged now
                return True
            raise CheckFailed("heartbeats unreadable (the bus is down?)")
        if not beats.get((region, service)):
            raise CheckFailed(f"no {service} of region {region} has sent a heartbeat recently")
        return True

    return check


async def endtoend_checks(ctx: HealthContext) -> dict[str, Check]:
    beats = await _beats(ctx)

    async def database() -> bool:
        return await _database(ctx)

    async def alive() -> bool:
        return True

    gateway = alive if ctx.served_by == "gateway" else _service_check(beats, ctx.config.meridian_region, "gateway",
                                                                        unknown_is_fine=True)
    return {"database": database, "storage": serving_storage_check(ctx), "service_gateway": gateway}


async def warning_checks(ctx: HealthContext) -> dict[str, Check]:
    config = ctx.config
    checks: dict[str, Check] = {"disk_space_warning": _disk_check(ctx, config.diskspace_health_warning_threshold),
                                "bus": _bus(ctx)}

    async def events_published() -> bool:
        waiting = await ctx.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE created_at < clock_timestamp() - make_interval(secs => $1)",
            config.meridian_outbox_relay_after_sec + 30)
        if waiting:
            raise CheckFailed(f"{waiting} event(s) wait in the outbox for the bus")
        return True

    checks["events_published"] = events_published
    checks["preferred_storage"] = storage_check(ctx, ctx.locations.own)
    for name in config.storage_locations():
        if name != ctx.locations.own and ctx.locations.reachable(name):
            checks[f"storage_{name}"] = storage_check(ctx, name)
    beats = await _beats(ctx)
    known = set(beats or {}) | {(config.meridian_region, s) for s in expected_services(config)}
    for region, service in sorted(known):
        checks[f"service_{region}_{service}"] = _service_check(beats, region, service)
    if config.feature_storage_replication:
        checks["replication"] = _replication_check(ctx)
    return checks


def _replication_check(ctx: HealthContext) -> Check:
    from shared.registry import replication

    async def check() -> bool:
        config = ctx.config
        lagging = []
        ids = {r["name"]: r["id"] for r in await ctx.pool.fetch("SELECT id, name FROM storage_locations")}
        for name in config.storage_locations():
            if name not in ids:
                continue
            blobs, size, oldest = await replication.under_replication(
                ctx.pool, ids[name], default_target=name in config.distributed_storage_default_locations,
                grace_s=config.meridian_reconcile_grace_sec)
            if blobs and oldest > config.meridian_under_replication_warning_sec:
                lagging.append(f"{name}: {blobs} blob(s), {size} bytes missing, the oldest for {oldest:.0f} s")
        if lagging:
            raise CheckFailed("under-replicated: " + "; ".join(lagging))
        return True

    return check
KINDS = {"instance": instance_checks, "endtoend": endtoend_checks, "warning": warning_checks}
PATHS = {"/health": "instance", "/health/instance": "instance", "/health/endtoend": "endtoend", "/status": "endtoend",
         "/health/warning": "warning"}


async def evaluate(ctx: HealthContext, kind: str, *, show_failures: bool) -> tuple[bytes, int]:
    services, failures = await run(await KINDS[kind](ctx), ctx.config.meridian_health_check_timeout_sec)
    return body(services, failures if show_failures else None)
