"""/metrics on every service parses as Prometheus text, and the named metrics move with traffic."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from shared.config import parse_config
from shared.embedded import free_port
from tests.conftest import local_spec
from tests.helpers import eventually, push_blob, push_image


async def scrape(http, url: str) -> dict[tuple[str, tuple], float]:
    async with http.get(f"{url}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    samples = {}
    for family in text_string_to_metric_families(text):  # raises on anything that is not Prometheus text
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples, name: str, **labels) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


async def test_every_service_serves_metrics_that_move(make_regions, tmp_path):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")})
    us = regions["us"]
    us.url = us.gateway_url
    gateway = await scrape(us.http, us.gateway_url)
    blobstore = await scrape(us.http, us.blobstore_url)

    await push_image(us, "acme/app", "v1")
    async with us.http.get(us.v2("acme/app/manifests/v1")) as r:
        assert r.status == 200
    layer = await push_blob(us, "acme/app", os.urandom(10000))
    async with us.http.get(us.v2(f"acme/app/blobs/{layer}")) as r:
        await r.read()
    async with us.http.post(us.v2("acme/app/blobs/uploads/")) as r:  # one upload left open
        assert r.status == 202

    async def replicated():
        after = await scrape(us.http, us.gateway_url)
        done = total(after, "meridian_bus_consumed_total", consumer="replicator-eu") >= 3 and \
            total(after, "meridian_replication_copies_total", location="eu") >= 3
        return done and after

    after = await eventually(replicated, what="eu's replicator to consume the pushes")
    assert total(after, "meridian_http_requests_total", service="gateway", route="manifest", method="PUT", status="201") == \
        total(gateway, "meridian_http_requests_total", service="gateway", route="manifest", method="PUT", status="201") + 1
    assert total(after, "meridian_http_request_duration_seconds_count", service="gateway", route="manifest") > \
        total(gateway, "meridian_http_request_duration_seconds_count", service="gateway", route="manifest")
    assert total(after, "meridian_bytes_pushed_total") >= total(gateway, "meridian_bytes_pushed_total") + 10000
    assert total(after, "meridian_bytes_pulled_total") >= total(gateway, "meridian_bytes_pulled_total") + 10000
    assert total(after, "meridian_upload_sessions_open") >= 1
    assert total(after, "meridian_db_pool_connections", service="gateway", state="max") == 8
    assert total(after, "meridian_bus_published_total") > total(gateway, "meridian_bus_published_total")
    blobstore_after = await scrape(us.http, us.blobstore_url)
    assert "meridian_http_requests_total" in {n for n, _ in blobstore_after}
    assert total(blobstore_after, "meridian_bytes_pulled_total") >= total(blobstore, "meridian_bytes_pulled_total")


async def test_gc_health_and_standalone_replicator_serve_metrics(make_regions, tmp_path, db):
    import aiohttp

    from services.gc.app import GcService
    from services.gc.app import create_app as create_gc
    from services.health.app import create_app as create_health

    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")},
                                 replicate={"eu": False})
    us, eu = regions["us"], regions["eu"]
    runners = []
    async with aiohttp.ClientSession() as http:
        try:
            urls = {}
            for name, app in (("gc", create_gc(GcService(parse_config({**us.doc, "GARBAGE_COLLECTION_FREQUENCY": 0.2})))),
                              ("health", create_health(parse_config(us.doc)))):
                runner = web.AppRunner(app)
                await runner.setup()
                port = free_port()
                await web.TCPSite(runner, "127.0.0.1", port).start()
                runners.append(runner)
                urls[name] = f"http://127.0.0.1:{port}"

            async def passes():
                return total(await scrape(http, urls["gc"]), "quay_gc_iterations_total") >= 2

            await eventually(passes, what="gc passes to be counted")
            async with http.get(f"{urls['health']}/health/instance") as r:
                assert r.status == 200
            health = await scrape(http, urls["health"])
            assert total(health, "meridian_http_requests_total", service="health", route="instance") >= 1
            assert total(health, "meridian_db_pool_connections", service="health", state="max") == 4

            # eu's replicator alone, as an operator runs it: its own process and /metrics.
            config = tmp_path / "eu.yaml"
            config.write_text(yaml.safe_dump(eu.doc))
            port = free_port()
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.cli", "replicator", "--config", str(config), "--listen", f"127.0.0.1:{port}",
                cwd=str(Path(__file__).resolve().parents[2]), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            try:
                us.url = us.gateway_url
                await push_blob(us, "acme/app", os.urandom(5000))

                async def copied():
                    try:
                        samples = await scrape(http, f"http://127.0.0.1:{port}")
                    except aiohttp.ClientError:
                        return False
                    return total(samples, "meridian_replication_copies_total", location="eu") >= 1 and \
                        total(samples, "meridian_bus_consumed_total", consumer="replicator-eu") >= 1 and \
                        total(samples, "meridian_db_pool_connections", service="replicator", state="max") > 0

                await eventually(copied, timeout=30, what="the standalone replicator's metrics to move")
            finally:
                process.terminate()
                await process.wait()
        finally:
            for runner in runners:
                await runner.cleanup()
