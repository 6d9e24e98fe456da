"""One push can be followed across services: the request id rides in the NATS header
Meridian-Request-Id into the replicator, whose log lines carry it."""
from __future__ import annotations

import nats
import structlog

from tests.conftest import local_spec
from tests.helpers import eventually, sha256


async def test_request_id_travels_from_push_to_replication(make_regions, tmp_path, servers, db):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")})
    us = regions["us"]
    prefix = us.doc["MERIDIAN_BUS_PREFIX"]
    seen = []
    nc = await nats.connect(servers.nats_url)

    async def collect(msg) -> None:
        seen.append(msg)

    await nc.subscribe(f"{prefix}.events.blob.written.>", cb=collect)
    data = b"follow me across services"
    try:
        with structlog.testing.capture_logs() as logs:
            async with us.http.post(us.v2("acme/app/blobs/uploads/"), params={"digest": sha256(data)}, data=data,
                                    headers={"X-Request-ID": "trace-4711"}) as r:
                assert r.status == 201 and r.headers["X-Request-ID"] == "trace-4711"

            async def replicated():
                return any(e.get("event") == "blob replicated" for e in logs)

            await eventually(replicated, what="eu to replicate the blob")
        assert seen and seen[0].headers["Meridian-Request-Id"] == "trace-4711"
        line = next(e for e in logs if e.get("event") == "blob replicated")
        assert line["request_id"] == "trace-4711" and line["digest"] == sha256(data)
    finally:
        await nc.close()
