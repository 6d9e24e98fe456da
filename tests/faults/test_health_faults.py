"""Health semantics for load balancers under faults (issue 12, item 5): a fault that leaves a region
able to serve must not take it out of rotation, and must show in /health/warning. See
tests/faults/README.md."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

pytestmark = [pytest.mark.faults]

WINDOW = 20.0   # seconds of polling once the fault is in place: several health-check timeouts (2 s)


async def probe(http: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
        body = await response.json(content_type=None)
        return response.status, body.get("data", {}).get("services", {})


def false_keys(services: dict) -> list[str]:
    return sorted(name for name, ok in services.items() if ok is False)


async def watch(http, urls: dict[str, str], window: float) -> dict[str, list[tuple[int, dict]]]:
    """Poll each endpoint about once a second for `window` seconds; every answer, in order."""
    answers: dict[str, list[tuple[int, dict]]] = {label: [] for label in urls}
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        started = time.monotonic()
        for label, url in urls.items():
            try:
                answers[label].append(await probe(http, url))
            except (aiohttp.ClientError, TimeoutError) as exc:
                answers[label].append((0, {"error": str(exc)}))
        await _pace(started, 1.0)
    return answers


async def _pace(started: float, period: float) -> None:
    await asyncio.sleep(max(started + period - time.monotonic(), 0))


def not_ok(answers: list[tuple[int, dict]]) -> list[str]:
    return [f"{status} (false: {', '.join(false_keys(services)) or services})" for status, services in answers if status != 200]


@pytest.mark.timeout(300)
async def test_g1_nats_down_instance_health_stays_up_and_warns(deployment):
    """With NATS down, pushes and pulls still work (scenario c), so `/health/instance` of every
    gateway (and of each region's health service) must stay 200; `/health/warning` reports the bus."""
    http = deployment.http
    urls = {}
    for region in deployment.regions.values():
        urls[f"{region.name} gateway /health/instance"] = f"{region.gateway_url}/health/instance"
        urls[f"{region.name} health /health/instance"] = f"{region.url('health')}/health/instance"
    warning = f"{deployment.a.gateway_url}/health/warning"
    deployment.kill_nats()
    answers = await watch(http, {**urls, "us-east gateway /health/warning": warning}, WINDOW)
    warnings = answers.pop("us-east gateway /health/warning")
    deployment.start_nats()
    await deployment.wait_ready()

    failures = {label: not_ok(seen) for label, seen in answers.items() if not_ok(seen)}
    print("warning answers with NATS down: " + "; ".join(f"{s} false={false_keys(v)}" for s, v in warnings[-3:]))
    assert not failures, f"with NATS down, /health/instance took instances out of rotation: {failures}"
    assert any(any("bus" in key for key in false_keys(services)) for _, services in warnings), \
        f"/health/warning never reported the bus down: {warnings[-1]}"


@pytest.mark.timeout(300)
async def test_g2_other_region_storage_down_endtoend_stays_up_and_warns(deployment):
    """With region B's storage down, region A can still serve (its own storage holds its pushes, and
    B's copies are a replica): A's `/health/endtoend` (gateway and health service) must stay 200, and
    A's `/health/warning` names B's location."""
    a, b = deployment.a, deployment.b
    http = deployment.http
    urls = {"us-east gateway /health/endtoend": f"{a.gateway_url}/health/endtoend",
            "us-east health /health/endtoend": f"{a.url('health')}/health/endtoend",
            "us-east gateway /health/warning": f"{a.gateway_url}/health/warning"}
    deployment.stop_storage(b)
    answers = await watch(http, urls, WINDOW)
    warnings = answers.pop("us-east gateway /health/warning")
    await deployment.start_storage(b)

    failures = {label: not_ok(seen) for label, seen in answers.items() if not_ok(seen)}
    print("warning answers with eu-west's storage down: " + "; ".join(f"{s} false={false_keys(v)}" for s, v in warnings[-3:]))
    assert not failures, f"with eu-west's storage down, us-east's /health/endtoend took the healthy region out: {failures}"
    assert any(any(b.name in key for key in false_keys(services)) for _, services in warnings), \
        f"us-east's /health/warning never named {b.name}: {warnings[-1]}"
