"""Health endpoints turn false when a dependency is really stopped, true when it returns, and answer
within the check timeout when a dependency hangs. /health/instance and /health/endtoend fail only for
what stops that instance or region from serving; what degrades without stopping service (the bus,
another region's storage, a silent replicator) is reported by /health/warning, so a load balancer
following the first two never takes a healthy part out."""
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
        assert await health(reg, path) == (200, {"database": True, "storage": True, "disk_space": True,
                                                 "service_key": True, "auth": True})
    for path in ("/health/endtoend", "/status"):
        assert await health(reg, path) == (200, {"database": True, "storage": True, "service_gateway": True})
    assert await health(reg, "/health/warning") == (200, {"disk_space_warning": True, "bus": True, "events_published": True,
                                                          "preferred_storage": True, "service_default_gateway": True})


async def test_disk_thresholds(make_registry):
    reg = await make_registry(DISKSPACE_HEALTH_WARNING_THRESHOLD=1.0, DISKSPACE_HEALTH_THRESHOLD=1.0)
    status, warnings = await health(reg, "/health/warning")
    assert status == 503 and warnings["disk_space_warning"] is False and warnings["preferred_storage"] is True
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
            status, services = await health(reg, "/health/warning")
            return status == 503 and services["bus"] is False and services["disk_space_warning"] is True

        await eventually(bus_down, what="the bus warning")
        # Pushes and pulls work without the bus (events wait in the outbox): the instance stays in.
        assert (await health(reg))[0] == 200 and (await health(reg, "/health/endtoend"))[0] == 200
        nats_server = start_nats(tmp_path / "nats", port=port)

        async def bus_back():
            return (await health(reg, "/health/warning"))[0] == 200

        await eventually(bus_back, timeout=30, what="the bus check to recover")
    finally:
        nats_server.stop()


async def test_storage_check_follows_seaweedfs_and_a_hang_still_answers(make_registry, own_seaweedfs):
    weed = own_seaweedfs
    server = weed["server"]
    reg = await make_registry(storage=(server.url, weed["bucket"]), MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC=TIMEOUT)
    assert (await health(reg))[1]["storage"] is True

    server.process.send_signal(signal.SIGSTOP)  # hung, not gone: requests wait forever
    status, services = await health(reg)
    # One region, one location: nothing can take the pushes, so this instance cannot serve.
    assert status == 503 and services["storage"] is False and services["database"] is True
    assert (await health(reg, "/health/warning"))[1]["preferred_storage"] is False
    server.process.send_signal(signal.SIGCONT)

    server.stop()
    status, services = await health(reg, "/health/endtoend")
    assert status == 503 and services["storage"] is False
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
    every_service = {f"service_{r}_{s}": True for r in ("us", "eu") for s in ("gateway", "blobstore", "replicator")}
    assert await health(us, "/health/endtoend") == (200, {"database": True, "storage": True, "service_gateway": True})
    status, warnings = await health(us, "/health/warning")
    assert status == 200 and {k: v for k, v in warnings.items() if k.startswith(("service_", "storage_"))} == {
        "storage_eu": True, **every_service}
    server.stop()
    # eu's storage is down: us still serves, so a global balancer must keep it; the warning says why.
    assert (await health(us, "/health/endtoend"))[0] == 200
    assert (await health(us, "/health/instance"))[0] == 200
    status, warnings = await health(us, "/health/warning")
    assert status == 503 and warnings["storage_eu"] is False and warnings["preferred_storage"] is True


async def test_database_check_follows_the_postgres_server(make_registry, tmp_path, template_db, servers):
    import asyncpg

    from shared.db import migrate
    from shared.embedded import EmbeddedPostgres

    postgres = EmbeddedPostgres(tmp_path / "pg")
    try:
        admin = await asyncpg.connect(postgres.dsn("postgres"))
        await admin.execute('CREATE DATABASE "health"')
        await admin.close()
        await migrate(postgres.dsn("health"))
        reg = await make_registry(DB_URI=postgres.dsn("health"), MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC=TIMEOUT)
        assert (await health(reg))[0] == 200
        postgres.stop()  # connections refused from now on

        async def database_down():
            status, services = await health(reg)
            return status == 503 and services["database"] is False and services["disk_space"] is True

        await eventually(database_down, what="the database check to fail")
        postgres = EmbeddedPostgres(tmp_path / "pg")

        async def database_back():
            return (await health(reg))[0] == 200

        await eventually(database_back, timeout=30, what="the database check to recover")
    finally:
        postgres.stop()


async def test_a_hung_nats_still_gets_an_answer_within_the_timeout(make_registry, tmp_path):
    nats_server = start_nats(tmp_path / "nats")
    try:
        reg = await make_registry(NATS_URL=nats_server.url, MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC=TIMEOUT)
        assert (await health(reg))[0] == 200
        nats_server.process.send_signal(signal.SIGSTOP)
        # health() itself fails if the answer takes longer than the timeout + slack
        status, services = await health(reg, "/health/warning")
        assert status == 503 and services["bus"] is False and services["disk_space_warning"] is True
        assert (await health(reg))[0] == 200  # a hung bus does not take the instance out
    finally:
        nats_server.process.send_signal(signal.SIGCONT)
        nats_server.stop()


async def test_service_key_check_and_failure_messages_only_for_superusers(make_registry, db):
    from shared.model import accounts

    reg = await make_registry(MERIDIAN_INSECURE_OPEN_ACCESS=False, SUPER_USERS=["root"], MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC=TIMEOUT)
    tokens = {}
    async with db.transaction():
        for name in ("root", "pleb"):
            tokens[name] = (await accounts.create_api_token(db, await accounts.create_user(db, name, "a long password")))[1]
    assert (await health(reg))[0] == 200
    await db.execute("UPDATE service_keys SET expires_at = now() - interval '1 minute'")
    status, services = await health(reg)
    assert status == 503 and services["service_key"] is False and services["database"] is True
    for who, sees in (("root", True), ("pleb", False), (None, False)):
        headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
        async with reg.http.get(f"{reg.url}/health/instance", headers=headers) as r:
            data = (await r.json())["data"]
        assert ("failures" in data) is sees, who
        if sees:
            assert "expired" in data["failures"]["service_key"] and "meridian keys extend" in data["failures"]["service_key"]


async def test_health_service_follows_every_regions_heartbeats(make_regions, tmp_path):
    from aiohttp import web

    from services.health.app import create_app
    from services.replicator.app import Replicator
    from shared.config import parse_config
    from shared.embedded import free_port

    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")},
                                 MERIDIAN_HEARTBEAT_INTERVAL_SEC=0.5, MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC=TIMEOUT)
    port = free_port()
    runner = web.AppRunner(create_app(parse_config(regions["us"].doc)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    probe = type("Probe", (), {"url": f"http://127.0.0.1:{port}", "http": regions["us"].http})()
    try:
        status, services = await health(probe, "/health/warning")
        assert status == 200
        assert {k for k in services if k.startswith("service_")} == {
            f"service_{r}_{s}" for r in ("us", "eu") for s in ("gateway", "blobstore", "replicator", "health")
            if (r, s) != ("eu", "health")}
        assert await health(probe, "/health/endtoend") == (200, {"database": True, "storage": True, "service_gateway": True})
        # eu's replicator dies without a word: its heartbeat goes stale.
        eu = regions["eu"]
        eu.replicator.heartbeat._task.cancel()

        async def stale():
            status, services = await health(probe, "/health/warning")
            return status == 503 and services["service_eu_replicator"] is False and services["service_us_replicator"] is True

        await eventually(stale, timeout=15, what="the silent replicator to be reported")
        assert (await health(probe, "/health/instance"))[0] == 200  # us itself is fine
        assert (await health(probe, "/health/endtoend"))[0] == 200  # and so is the region: pushes and pulls work
        await eu.replicator.stop()
        eu.replicator = Replicator(parse_config(eu.doc))
        await eu.replicator.start()

        async def back():
            return (await health(probe, "/health/warning"))[0] == 200

        await eventually(back, timeout=15, what="the restarted replicator to be seen")
        async with regions["us"].http.get(f"{probe.url}/metrics") as r:
            assert r.status == 200 and "meridian_http_requests_total" in await r.text()
    finally:
        await runner.cleanup()
