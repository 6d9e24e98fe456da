"""backfill-replication, remove-location and verify-placements on two real regions."""
from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys

import yaml

from shared.config import parse_config
from shared.storage.paths import blob as blob_path
from tests.conftest import local_spec
from tests.helpers import eventually
from tests.integration.test_geo import drained, placements, push


async def meridian(tmp_path, doc: dict, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """Run the CLI without blocking the loop that serves the in-process regions it talks to."""
    path = tmp_path / f"config-{os.urandom(3).hex()}.yaml"
    path.write_text(yaml.safe_dump(doc))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args, "--config", str(path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 120)
    returncode = await process.wait()  # it has exited: communicate() waited for it
    return subprocess.CompletedProcess(args, returncode, out.decode(), err.decode())


async def test_backfill_after_adding_a_location(make_regions, tmp_path, db, servers, bus_prefix):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")},
                                 DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS=["us"])
    us, eu = regions["us"], regions["eu"]
    digests = [await push(us, "acme/app", os.urandom(5000)), await push(us, "acme/app", os.urandom(7000)),
               await push(us, "other/app", os.urandom(100))]
    await eventually(lambda: drained(eu), what="eu's replicator to skip the events")
    assert all([await placements(db, d) == ["us"] for d in digests])

    # The operator adds eu to the default locations and restarts eu's replicator.
    doc = dict(eu.doc, DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS=["us", "eu"])
    from services.replicator.app import Replicator

    await eu.replicator.stop()
    eu.replicator = Replicator(parse_config(doc))
    await eu.replicator.start()

    dry = await meridian(tmp_path, doc, "backfill-replication", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sorted(line.split()[2] for line in dry.stdout.splitlines() if line.startswith("would queue")) == sorted(digests)
    assert "3 blob(s) checked; would queue 3 missing copies" in dry.stdout
    await eventually(lambda: drained(eu), what="nothing to process")
    assert all([await placements(db, d) == ["us"] for d in digests])

    only_acme = await meridian(tmp_path, doc, "backfill-replication", "--dry-run", "--namespace", "acme")
    assert "2 blob(s) checked" in only_acme.stdout

    from services.replicator.tools import backfill

    out = io.StringIO()
    summary = await backfill(parse_config(doc), out=out)
    assert summary["queued"] == 3 and "backfill [" in out.getvalue()

    async def all_in_eu():
        return all([await placements(db, d) == ["eu", "us"] for d in digests])

    await eventually(all_in_eu, what="every missing blob to reach eu")
    for digest in digests:
        assert (tmp_path / "eu" / blob_path(digest)).is_file()
    assert (await backfill(parse_config(doc), out=io.StringIO()))["queued"] == 0


async def test_backfill_refuses_without_replication(tmp_path, database):
    result = await meridian(tmp_path, {"DB_URI": database}, "backfill-replication")
    assert result.returncode == 1 and "Storage replication is not enabled" in result.stderr


async def test_remove_location_refusals_confirmation_and_effect(make_regions, tmp_path, db):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")})
    us, eu = regions["us"], regions["eu"]
    digest = await push(us, "acme/app", os.urandom(3000))

    async def in_eu():
        return await placements(db, digest) == ["eu", "us"]

    await eventually(in_eu, what="replication to eu")
    async with eu.http.post(eu.v2("acme/app/blobs/uploads/")) as r:
        assert r.status == 202  # an upload session in eu

    still_configured = await meridian(tmp_path, dict(us.doc, DISABLE_PUSHES=True), "remove-location", "eu")
    assert still_configured.returncode == 1 and "still in DISTRIBUTED_STORAGE_CONFIG" in still_configured.stderr
    without_eu = dict(us.doc, DISTRIBUTED_STORAGE_CONFIG={"us": us.doc["DISTRIBUTED_STORAGE_CONFIG"]["us"]},
                      DISTRIBUTED_STORAGE_PREFERENCE=["us"], DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS=["us"],
                      MERIDIAN_BLOBSTORE_URLS={"us": us.doc["MERIDIAN_BLOBSTORE_URLS"]["us"]})
    pushes_on = await meridian(tmp_path, without_eu, "remove-location", "eu")
    assert pushes_on.returncode == 1 and "Pushes are not disabled" in pushes_on.stderr
    ready = dict(without_eu, DISABLE_PUSHES=True)
    unknown = await meridian(tmp_path, ready, "remove-location", "mars")
    assert unknown.returncode == 1 and "no storage location named 'mars'" in unknown.stderr
    declined = await meridian(tmp_path, ready, "remove-location", "eu", stdin="n\n")
    assert declined.returncode == 0 and "[y/n]" in declined.stdout and "Nothing was removed" in declined.stdout
    assert await placements(db, digest) == ["eu", "us"]

    accepted = await meridian(tmp_path, ready, "remove-location", "eu", stdin="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert "Removed 1 temporary upload(s)" in accepted.stdout
    assert "Deleted 1 placement(s) in eu" in accepted.stdout
    assert "Deleted location eu" in accepted.stdout
    assert await placements(db, digest) == ["us"]
    assert await db.fetchval("SELECT count(*) FROM storage_locations WHERE name = 'eu'") == 0


async def test_verify_placements_drops_lies_and_requeues(make_regions, tmp_path, db):
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")})
    us = regions["us"]
    lost, short, kept = [await push(us, "acme/app", os.urandom(4000)) for _ in range(3)]

    async def all_in_eu():
        return all([await placements(db, d) == ["eu", "us"] for d in (lost, short, kept)])

    await eventually(all_in_eu, what="replication to eu")
    (tmp_path / "eu" / blob_path(lost)).unlink()
    (tmp_path / "eu" / blob_path(short)).write_bytes(b"cut")  # damaged: fewer bytes than the blob

    # Run from region us: eu's bytes are checked through eu's blobstore over NATS.
    from services.replicator.tools import verify_placements

    out = io.StringIO()
    summary = await verify_placements(parse_config(us.doc), out=out)
    assert summary["checked"] == 6 and sorted(summary["dropped"]) == sorted([(lost, "eu"), (short, "eu")])
    assert await placements(db, lost) == ["us"] == await placements(db, short)
    assert await placements(db, kept) == ["eu", "us"]

    (tmp_path / "eu" / blob_path(kept)).unlink()
    result = await meridian(tmp_path, us.doc, "verify-placements", "--requeue")
    assert result.returncode == 0, result.stderr
    assert f"dropped placement of {kept} in eu" in result.stdout

    async def back_in_eu():
        return await placements(db, kept) == ["eu", "us"] and (tmp_path / "eu" / blob_path(kept)).is_file()

    await eventually(back_in_eu, what="the dropped blob to be copied to eu again")
