"""Health endpoints in Quay's shape, each check bounded by MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC.

/health/instance (alias /health): this instance: database, bus, preferred storage, disk space, auth.
/health/endtoend (alias /status): what a global load balancer needs: database, bus, every location.
/health/warning: disk_space_warning.
Body `{"data":{"services":{...}},"status_code":200|503}`; HTTP status = status_code. Failure messages
go to the log (`[FAILED HEALTH CHECK]`), not to anonymous callers.
"""
from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from typing import Awaitable, Callable

from aiohttp import web

from shared.config import LocalStorageParams
from shared.logging import get_logger

from .v2.base import GATEWAY

log = get_logger("health")
Check = Callable[[], Awaitable[bool]]


async def _run(checks: dict[str, Check], timeout: float) -> dict[str, bool]:
    async def one(name: str, check: Check) -> bool:
        try:
            return bool(await asyncio.wait_for(check(), timeout))
        except asyncio.TimeoutError:
            log.warning("[FAILED HEALTH CHECK] timed out", check=name, timeout=timeout)
        except Exception as exc:
            log.warning("[FAILED HEALTH CHECK]", check=name, error=f"{type(exc).__name__}: {exc}")
        return False

    results = await asyncio.gather(*(one(n, c) for n, c in checks.items()))
    return dict(zip(checks, results))


def _answer(services: dict[str, bool]) -> web.Response:
    status = 200 if all(services.values()) else 503
    return web.json_response({"data": {"services": services}, "status_code": status}, status=status,
                             headers={"Cache-Control": "no-store"})


def _free_fraction(path: str) -> float:
    usage = shutil.disk_usage(path)
    return usage.free / usage.total if usage.total else 1.0


def _disk_paths(gw) -> list[str]:
    paths = [tempfile.gettempdir()]
    location = gw.config.storage_locations()[gw.write_location]
    if isinstance(location.params, LocalStorageParams):
        paths.append(location.params.storage_path)
    return paths


def _checks_common(gw) -> dict[str, Check]:
    async def database() -> bool:
        return await gw.pool.fetchval("SELECT true")

    async def bus() -> bool:
        if not gw.bus.connected:
            return False
        await gw.bus.nc.flush(timeout=gw.config.meridian_health_check_timeout_sec)
        return True

    return {"database": database, "bus": bus}


def _storage_check(gw, name: str) -> Check:
    async def check() -> bool:
        locations = gw.locations
        if name in locations.drivers:
            driver = locations.drivers[name]
            if gw.read_only:  # no writes in read-only mode: a listing proves the store answers
                await driver.stat("health/_verify")
                return True
            key = f"health/_verify-{uuid.uuid4().hex}"
            await driver.put_bytes(key, b"testing 123")
            try:
                return await driver.get_bytes(key) == b"testing 123"
            finally:
                await driver.delete(key)
        async with locations.http().get(f"{locations.remote_urls[name]}/health") as response:
            return response.status == 200

    return check


async def instance(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]

    async def disk_space() -> bool:
        return all(_free_fraction(p) >= gw.config.diskspace_health_threshold for p in _disk_paths(gw))

    async def auth() -> bool:
        return gw.authorizer is not None

    checks = _checks_common(gw)
    checks.update({"preferred_storage": _storage_check(gw, gw.write_location), "disk_space": disk_space, "auth": auth})
    return _answer(await _run(checks, gw.config.meridian_health_check_timeout_sec))


async def endtoend(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    checks = _checks_common(gw)
    for name in gw.config.storage_locations():
        if gw.locations.reachable(name):
            checks[f"storage_{name}"] = _storage_check(gw, name)
    return _answer(await _run(checks, gw.config.meridian_health_check_timeout_sec))


async def warning(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]

    async def disk_space_warning() -> bool:
        return all(_free_fraction(p) >= gw.config.diskspace_health_warning_threshold for p in _disk_paths(gw))

    return _answer(await _run({"disk_space_warning": disk_space_warning}, gw.config.meridian_health_check_timeout_sec))


def add_routes(app: web.Application) -> None:
    for path, handler in (("/health", instance), ("/health/instance", instance), ("/health/endtoend", endtoend),
                          ("/status", endtoend), ("/health/warning", warning)):
        app.router.add_get(path, handler)
