"""Quay's own documented geo-replication configs (tests/fixtures/quay-*.yaml, copied from Quay's
documentation) validate as written and run a two-region registry once only their hosts, ports,
credentials (and the documentation's placeholder bucket names) point at local servers: every S3-family
location on SeaweedFS, the GoogleCloudStorage ones through GCS's S3-interoperable API on SeaweedFS.

Each region is configured the way Quay's docs say: the same file everywhere, the region's preference
(and here its name) from the environment."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from services.region import start_region
from shared.config import parse_config
from shared.embedded import free_port
from shared.storage import open_driver
from shared.storage.paths import blob as blob_path
from tests.conftest import S3_KEY, S3_SECRET
from tests.helpers import eventually, sha256

FIXTURES = Path(__file__).parent.parent / "fixtures"
STANDALONE = FIXTURES / "quay-georeplication-standalone.yaml"
OPENSHIFT = FIXTURES / "quay-georeplication-openshift.yaml"


@pytest.mark.parametrize("fixture", [STANDALONE, OPENSHIFT], ids=["standalone", "openshift"])
def test_quay_documented_configs_validate_as_written(fixture):
    env = {k: v for k, v in os.environ.items() if k not in ("QUAY_DISTRIBUTED_STORAGE_PREFERENCE",
                                                             "MERIDIAN_DISTRIBUTED_STORAGE_PREFERENCE", "MERIDIAN_REGION")}
    result = subprocess.run([sys.executable, "-m", "services.cli", "config", "validate", str(fixture)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert "valid (2 storage location(s), preference usstorage eustorage" in result.stdout
    assert result.stderr == ""  # not even a warning: every key of Quay's example is known
    for region in ("usstorage", "eustorage"):  # as each cluster runs it
        result = subprocess.run([sys.executable, "-m", "services.cli", "config", "validate", str(fixture)],
                                capture_output=True, text=True, timeout=60,
                                env={**env, "QUAY_DISTRIBUTED_STORAGE_PREFERENCE": region})
        assert result.returncode == 0, result.stderr
        assert f"preference {region}" in result.stdout


def _point_at(doc: dict, url: str, buckets: dict[str, str]) -> dict:
    """Only hosts, ports, credentials and placeholder bucket names change."""
    doc = copy.deepcopy(doc)
    host, port = url.removeprefix("http://").split(":")
    for name, (driver, params) in doc["DISTRIBUTED_STORAGE_CONFIG"].items():
        if driver in ("RHOCSStorage", "RadosGWStorage"):
            params.update(hostname=host, port=port, access_key=S3_KEY, secret_key=S3_SECRET)
        elif driver == "S3Storage":
            params.update(host=f"http://{host}", port=port, s3_access_key=S3_KEY, s3_secret_key=S3_SECRET)
        elif driver == "GoogleCloudStorage":
            params.update(endpoint_url=url, access_key=S3_KEY, secret_key=S3_SECRET)
        else:
            raise AssertionError(f"unexpected driver {driver}")
        if name in buckets:
            params["bucket_name" if "bucket_name" in params else "s3_bucket"] = buckets[name]
    return doc


async def _run_two_regions(doc: dict, harness: dict, db, bucket_of: dict[str, str]) -> None:
    regions, sessions = {}, []
    try:
        for region, location in (("us", "usstorage"), ("eu", "eustorage")):
            # What each region's environment says; the file is the same for both.
            environ = {"QUAY_DISTRIBUTED_STORAGE_PREFERENCE": f"{location} {'eustorage' if location == 'usstorage' else 'usstorage'}",
                       "MERIDIAN_REGION": region}
            config = parse_config({**doc, **harness}, environ=environ)
            assert config.meridian_region == region and config.preferred_locations()[0] == location
            regions[region] = await start_region(config, gateway_listen=f"127.0.0.1:{free_port()}")
            sessions.append(aiohttp.ClientSession())
        us, eu = regions["us"], regions["eu"]
        data = os.urandom(2 * 1024 * 1024 + 17)
        digest = sha256(data)
        async with sessions[0].post(f"{us.gateway_url}/v2/acme/app/blobs/uploads/", params={"digest": digest}, data=data) as r:
            assert r.status == 201, await r.text()

        async def placed_in_both() -> bool:
            rows = await db.fetch("SELECT l.name FROM blob_placements p JOIN blobs b ON b.id = p.blob_id "
                                  "JOIN storage_locations l ON l.id = p.location_id WHERE b.digest = $1", digest)
            return sorted(r["name"] for r in rows) == ["eustorage", "usstorage"]

        await eventually(placed_in_both, timeout=30, what="the blob to be replicated to eustorage")
        # The bytes are in eustorage's own bucket, and eu serves them from there.
        eu_store = open_driver(eu.config.storage_locations()["eustorage"])
        try:
            assert await eu_store.get_bytes(blob_path(digest)) == data
        finally:
            await eu_store.close()
        async with sessions[1].get(f"{eu.gateway_url}/v2/acme/app/blobs/{digest}") as r:
            assert r.status == 200
            # served from eu's own copy: a redirect to a signed URL of eustorage
            assert (r.history[0] if r.history else r).headers.get("Meridian-Storage-Location") == "eustorage"
            assert await r.read() == data
        assert set(bucket_of.values()) == {eu.config.storage_locations()[n].params.s3().bucket for n in bucket_of}
    finally:
        for session in sessions:
            await session.close()
        for started in regions.values():
            await started.stop()


def _harness(servers, database, bus_prefix) -> dict:
    """The test's own database, bus and open access (no accounts in this test), and fast retries."""
    return {"DB_URI": database, "NATS_URL": servers.nats_url, "MERIDIAN_BUS_PREFIX": bus_prefix,
            "MERIDIAN_INSECURE_OPEN_ACCESS": True, "MERIDIAN_OUTBOX_RELAY_AFTER_SEC": 1.0,
            "MERIDIAN_REPLICATION_ACK_WAIT_SEC": 5, "MERIDIAN_REPLICATION_MAX_BACKOFF_SEC": 1,
            "MERIDIAN_LOCATION_RETRY_AFTER_SEC": 1}


async def test_standalone_rhocs_and_s3_config_runs_two_regions(servers, database, bus_prefix, make_bucket, db):
    doc = yaml.safe_load(STANDALONE.read_text())
    # Step 2 of the same procedure in Quay's docs: replicate every image to both engines.
    doc["DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS"] = ["usstorage", "eustorage"]
    (url, us_bucket), (_, eu_bucket) = make_bucket(), make_bucket()
    buckets = {"usstorage": us_bucket, "eustorage": eu_bucket}
    await _run_two_regions(_point_at(doc, url, buckets), _harness(servers, database, bus_prefix), db, buckets)


async def test_openshift_google_cloud_storage_config_runs_two_regions(servers, database, bus_prefix, db):
    from tests.conftest import _create_bucket, _remove_bucket

    doc = yaml.safe_load(OPENSHIFT.read_text())
    url = servers.s3_url()
    buckets = {name: params["bucket_name"] for name, (_, params) in doc["DISTRIBUTED_STORAGE_CONFIG"].items()}
    for name in buckets.values():  # the documentation's own bucket names
        await _create_bucket(url, name)
    try:
        await _run_two_regions(_point_at(doc, url, {}), _harness(servers, database, bus_prefix), db, buckets)
    finally:
        for name in buckets.values():
            await _remove_bucket(url, name)
