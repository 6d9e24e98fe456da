"""Health checks in Quay's shape, shared by the health service and every gateway.

/health/instance (alias /health): this region: database, bus, the preferred storage location, disk
space, the instance service key, auth, and this region's services (from heartbeats).
/health/endtoend (alias /status): what a global load balancer needs: database, bus, every storage
location, every region's services.
/health/warning: disk_space_warning.

Body `{"data":{"services":{...}},"status_code":200|503}`; HTTP status = status_code. Each check is
bounded by MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC so a hung dependency answers 503 fast. Why a check failed
goes to the log (`[FAILED HEALTH CHECK]`) and, for superusers only, into `data.failures`.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from shared import heartbeats
from shared.config import Config, LocalStorageParams
from shared.logging import get_logger
from shared.servicekeys import usable_problem
from shared.storage import paths

log = get_logger("health")
Check = Callable[[], Awaitable[bool]]


class CheckFailed(Exception):
    """A check that knows why it failed."""


@dataclass
class HealthContext:
    config: Config
    pool: object
    bus: object
    locations: object
    signing_kid: Callable[[], str | None]  # the key this process signs with, if any
    config_dir: Path | None = None

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
        except asyncio.TimeoutError:
            failures[name] = f"timed out after {timeout} s"
        except Exception as exc:
            failures[name] = f"{type(exc).__name__}: {exc}"
        log.warning("[FAILED HEALTH CHECK]", check=name, error=failures[name])
        return False

    results = await asyncio.gather(*(one(n, c) for n, c in checks.items()))
    return dict(zip(checks, results)), failures


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
    if isinstance(location.params, LocalStorageParams):
        paths.append(location.params.storage_path)
    return paths


def _common(ctx: HealthContext) -> dict[str, Check]:
    async def database() -> bool:
        return await ctx.pool.fetchval("SELECT true")

    async def bus() -> bool:
        if not ctx.bus.connected:
            raise CheckFailed("not connected to NATS")
        await ctx.bus.nc.flush(timeout=ctx.config.meridian_health_check_timeout_sec)
        return True

    return {"database": database, "bus": bus}


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
            return response.status == 200

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
    return expected


async def instance_checks(ctx: HealthContext) -> dict[str, Check]:
    config = ctx.config
    checks = _common(ctx)

    async def disk_space() -> bool:
        low = [p for p in _disk_paths(ctx) if _free_fraction(p) < config.diskspace_health_threshold]
        if low:
            raise CheckFailed(f"less than {config.diskspace_health_threshold:.0%} free on {', '.join(low)}")
        return True

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

    checks.update({"preferred_storage": storage_check(ctx, ctx.locations.own), "disk_space": disk_space,
                   "service_key": service_key, "auth": auth})
    beats = await _beats(ctx)
    for service in expected_services(config):
        checks[f"service_{service}"] = _service_check(beats, config.meridian_region, service)
    return checks


async def _beats(ctx: HealthContext):
    try:
        return heartbeats.alive(await asyncio.wait_for(heartbeats.read_all(ctx.bus), ctx.config.meridian_health_check_timeout_sec))
    except Exception as exc:
        log.warning("[FAILED HEALTH CHECK] heartbeats unreadable", error=f"{type(exc).__name__}: {exc}")
        return None


def _service_check(beats, region: str, service: str) -> Check:
    async def check() -> bool:
        if beats is None:
            raise CheckFailed("heartbeats unreadable (the bus is down?)")
        if not beats.get((region, service)):
            raise CheckFailed(f"no {service} of region {region} has sent a heartbeat recently")
        return True

    return check


async def endtoend_checks(ctx: HealthContext) -> dict[str, Check]:
    checks = _common(ctx)
    for name in ctx.config.storage_locations():
        if ctx.locations.reachable(name):
            checks[f"storage_{name}"] = storage_check(ctx, name)
    beats = await _beats(ctx)
    known = set(beats or {}) | {(ctx.config.meridian_region, s) for s in expected_services(ctx.config)}
    for region, service in sorted(known):
        checks[f"service_{region}_{service}"] = _service_check(beats, region, service)
    return checks


async def warning_checks(ctx: HealthContext) -> dict[str, Check]:
    async def disk_space_warning() -> bool:
        low = [p for p in _disk_paths(ctx) if _free_fraction(p) < ctx.config.diskspace_health_warning_threshold]
        if low:
            raise CheckFailed(f"less than {ctx.config.diskspace_health_warning_threshold:.0%} free on {', '.join(low)}")
        return True

    return {"disk_space_warning": disk_space_warning}


KINDS = {"instance": instance_checks, "endtoend": endtoend_checks, "warning": warning_checks}
PATHS = {"/health": "instance", "/health/instance": "instance", "/health/endtoend": "endtoend", "/status": "endtoend",
         "/health/warning": "warning"}


async def evaluate(ctx: HealthContext, kind: str, *, show_failures: bool) -> tuple[bytes, int]:
    services, failures = await run(await KINDS[kind](ctx), ctx.config.meridian_health_check_timeout_sec)
    return body(services, failures if show_failures else None)
