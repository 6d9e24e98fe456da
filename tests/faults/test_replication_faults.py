"""Replication heals itself (issue 12): after each fault every pushed blob is placed in both
locations, verified by reading its bytes back from each region's own storage, with no operator
command, within the stated bound. See tests/faults/README.md."""
from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.faults.client import PatientClient, image_manifest, random_file
from tests.faults.harness import wait_until
from tests.helpers import LAYER_GZIP, sha256

pytestmark = [pytest.mark.faults]

LARGE_BLOB = 256 << 20
KILLS = 5                       # as many as MERIDIAN_REPLICATION_MAX_DELIVER: every delivery dies, then it is left running
BOUND_A = 180.0                 # after the last restart: the message back (ack wait 6 s) + a 256 MiB copy, with room
LEFTOVER_BOUND = 60.0           # after convergence: the interrupted copies' multipart uploads are gone
STORAGE_OUTAGE = 60.0           # > 8x the whole NAK back-off (1+2+2+2 s with the harness's tuning)
BOUND_B = 120.0                 # after the storage returns
NATS_OUTAGE = 90.0
BOUND_C = 60.0                  # after NATS returns


async def push_images_during(client: PatientClient, repository: str, outage: float, count: int | None = None,
                             every: float = 3.0) -> dict[str, int]:
    """Push small images (a config and a 128 KiB layer each) spread across `outage` seconds: `count`
    of them, or one every `every` seconds. The pacing is the fault's duration, not a wait for a
    condition."""
    started = time.monotonic()
    interval = outage / count if count else every
    blobs: dict[str, int] = {}
    index = 0
    while time.monotonic() - started < outage and (count is None or index < count):
        blobs.update(await client.push_image(repository, f"v{index}", [os.urandom(128 * 1024)]))
        index += 1
        next_slot = started + index * interval
        await asyncio.sleep(max(next_slot - time.monotonic(), 0))
    if count is not None:
        assert index == count, f"only {index} of {count} images were pushed during the {outage:.0f} s outage"
    await asyncio.sleep(max(started + outage - time.monotonic(), 0))
    return blobs


@pytest.mark.timeout(900)
async def test_a_replicator_killed_mid_copy_five_times_then_left_running(deployment, converged, tmp_path):
    """Region B's replicator is SIGKILLed in the middle of copying a 256 MiB blob, each time the copy
    is under way again, KILLS (= MERIDIAN_REPLICATION_MAX_DELIVER) times; then it is left running.
    The copy must still complete, and the interrupted copies' leftovers must go."""
    a, b = deployment.a, deployment.b
    big = tmp_path / "large.bin"
    digest = await asyncio.to_thread(random_file, big, LARGE_BLOB)
    replicator = b.services["replicator"]
    client = PatientClient(a.gateway_url)
    scenario_started = datetime.now(UTC) - timedelta(seconds=2)
    try:
        # B's replicator is down while the blob is pushed, so each copy below starts when we say.
        replicator.stop()
        await client.push_blob_file("faults-a/large", big, digest)
        config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()}).encode()
        await client.push_blob("faults-a/large", config)
        await client.push_manifest("faults-a/large", "v1", image_manifest(
            config, [{"mediaType": LAYER_GZIP, "digest": digest, "size": LARGE_BLOB}]))
        blobs = {digest: LARGE_BLOB, sha256(config): len(config)}
        interrupted: set[str] = set()

        for attempt in range(1, KILLS + 1):
            replicator.start()

            async def copy_under_way():
                if not replicator.running:
                    raise AssertionError(f"eu-west's replicator exited on its own:\n{replicator.tail()}")
                # Any multipart upload with a part is the big copy: nothing else that large is written now.
                for upload in await deployment.multipart_uploads(b):
                    if upload["UploadId"] not in interrupted and upload["PartCount"] >= 1 and upload["Initiated"] >= scenario_started:
                        return upload["UploadId"]
                return None

            upload_id = await wait_until(copy_under_way, 90, f"copy #{attempt} of the 256 MiB blob to be under way in eu-west",
                                         interval=0.2)
            replicator.kill()
            interrupted.add(upload_id)
            print(f"killed eu-west's replicator mid-copy ({attempt}/{KILLS})")
        assert (await deployment.placements([digest]))[digest] == {"us-east"}, "killed copies must place nothing"

        lifted = time.monotonic()
        await deployment.restart(b, "replicator")
        seconds = await deployment.wait_converged(blobs, BOUND_A, "256 MiB blob after 5 kills mid-copy", since=lifted)
        converged(seconds, BOUND_A)

        async def ours():  # multipart uploads begun during this scenario (earlier ones are not its business)
            return [u for u in await deployment.multipart_uploads(b) if u["Initiated"] >= scenario_started]

        async def no_leftovers():
            return not await ours()

        async def leftovers():
            found = await ours()
            return f"{len(found)} unfinished multipart upload(s) of the killed copies remain in eu-west's bucket"

        await wait_until(no_leftovers, LEFTOVER_BOUND, "the killed copies' multipart uploads to be aborted", interval=1,
                         explain=leftovers)
        assert not client.seen, [str(s) for s in client.seen]
        assert not deployment.unexpected_deaths(), deployment.unexpected_deaths()
    finally:
        big.unlink(missing_ok=True)
        await client.close()


@pytest.mark.timeout(600)
async def test_b_other_region_storage_down_longer_than_the_whole_backoff(deployment, converged):
    """Region B's SeaweedFS is down for STORAGE_OUTAGE seconds, many times the whole NAK back-off,
    while 20 images are pushed to region A; then it returns. Every blob must reach B."""
    a, b = deployment.a, deployment.b
    client = PatientClient(a.gateway_url)
    try:
        deployment.stop_storage(b)
        blobs = await push_images_during(client, "faults-b/app", STORAGE_OUTAGE, count=20)
        assert not client.seen, f"pushes to us-east failed while eu-west's storage was down: {[str(s) for s in client.seen]}"
        lifted = time.monotonic()
        await deployment.start_storage(b)
        seconds = await deployment.wait_converged(
            blobs, BOUND_B, f"20 images pushed while eu-west's storage was down {STORAGE_OUTAGE:.0f} s", since=lifted)
        converged(seconds, BOUND_B)
        assert not deployment.unexpected_deaths(), deployment.unexpected_deaths()
    finally:
        await client.close()


@pytest.mark.timeout(600)
async def test_c_nats_down_90_seconds_while_pushes_continue(deployment, converged):
    """NATS is SIGKILLed for 90 s while pushes to region A continue (each must succeed, no 5xx); then
    it restarts on its port with its store. Every blob pushed meanwhile must reach B."""
    a = deployment.a
    client = PatientClient(a.gateway_url)
    try:
        deployment.kill_nats()
        blobs = await push_images_during(client, "faults-c/app", NATS_OUTAGE, every=3.0)
        assert not client.seen, f"pushes failed while NATS was down: {[str(s) for s in client.seen]}"
        lifted = time.monotonic()
        deployment.start_nats()
        seconds = await deployment.wait_converged(blobs, BOUND_C, f"{len(blobs)} blobs pushed while NATS was down", since=lifted)
        converged(seconds, BOUND_C)
        assert not deployment.unexpected_deaths(), deployment.unexpected_deaths()
    finally:
        await client.close()
