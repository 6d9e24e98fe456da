"""Health endpoints turn false when a dependency is really stopped, true when it returns, and answer
within the check timeout when a dependency hangs."""
from __future__ import annotations

import signal

import aiohttp

from shared.embedded import start_nats, start_seaweedfs
from tests.conftest import local_spec, s3_location
from tests.helpers import eventually

TIMEOUT = 1.0


async def health(reg, path: str = "/health/instance") -> tuple[int, dict]:
    # The probe must answer within the check timeout (plus slack), whatever hangs behind it.
    async with reg.http.get(f"{reg.url}{path}", timeout=aiohttp.ClientTimeout(total=TIMEOUT + 4)) as r:
        body = await r.json()
        assert body["status_code"] == r.status
        return r.status, body["data"]["services"]


async def test_all_healthy(make_registry):
    reg = await make_registry(MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC=TIMEOUT)
    for path in ("/health/instance", "/health"):
        assert await health(reg, path) == (200, {"database": True, "bus": True, "preferred_storage": True, "disk_space": True, "auth": True})
    for path in ("/health/endtoend", "/status"):
        assert await health(reg, path) == (200, {"database": True, "bus": True, "storage_local": True})
    assert await health(reg, "/health/warning") == (200, {"disk_space_warning": True})


async def test_disk_thresholds(make_registry):
    reg = await make_registry(DISKSPACE_HEALTH_WARNING_THRESHOLD=1.0, DISKSPACE_HEALTH_THRESHOLD=1.0)
    assert await health(reg, "/health/warning") == (503, {"disk_space_warning": False})
    status, services = await health(reg)
    assert status == 503 and services["disk_space"] is False and services["database"] is True


async def test_bus_check_follows_the_nats_server(make_registry, tmp_path):
    nats_server = start_nats(tmp_path / "nats")
    port = int(nats_server.url.rsplit(":", 1)[1])
    try:
        reg = await make_registry(NATS_URL=nats_server.url, MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC=TIMEOUT)
        assert (await health(reg))[0] == 200
        nats_server.stop()

        async def bus_down():
            status, services = await health(reg)
            return status == 503 and services["bus"] is False and services["database"] is True

        await eventually(bus_down, what="the bus check to fail")
        nats_server = start_nats(tmp_path / "nats", port=port)

        async def bus_back():
            return (await health(reg))[0] == 200

        await eventually(bus_back, timeout=30, what="the bus check to recover")
    finally:
        nats_server.stop()


async def test_storage_check_follows_seaweedfs_and_a_hang_still_answers(make_registry, own_seaweedfs):
    weed = own_seaweedfs
    server = weed["server"]
    reg = await make_registry(storage=(server.url, weed["bucket"]), MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC=TIMEOUT)
    assert (await health(reg))[1]["preferred_storage"] is True

    server.process.send_signal(signal.SIGSTOP)  # hung, not gone: requests wait forever
    status, services = await health(reg)
    assert status == 503 and services["preferred_storage"] is False and services["database"] is True
    server.process.send_signal(signal.SIGCONT)

    server.stop()
    status, services = await health(reg, "/health/endtoend")
    assert status == 503 and services["storage_s3"] is False
    weed["server"] = start_seaweedfs(server.folder, ports=server.extra["ports"])

    async def back():
        return (await health(reg))[0] == 200

    await eventually(back, timeout=30, what="the storage check to recover")


async def test_endtoend_sees_the_other_regions_location(make_regions, own_seaweedfs, tmp_path):
    server = own_seaweedfs["server"]
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": s3_location(server.url, own_seaweedfs["bucket"])},
                                 MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC=TIMEOUT)
    us = regions["us"]
    us.url = us.gateway_url
    assert await health(us, "/health/endtoend") == (200, {"database": True, "bus": True, "storage_us": True, "storage_eu": True})
    server.stop()
    status, services = await health(us, "/health/endtoend")
    assert status == 503 and services == {"database": True, "bus": True, "storage_us": True, "storage_eu": False}
    assert (await health(us, "/health/instance"))[0] == 200  # us itself is fine: keep it in the load balancer
