"""A dependency or a process of the push path fails while clients push: PostgreSQL killed, a gateway
killed mid-upload, the region's own storage down. Clients get 503 + Retry-After or succeed, never
another 5xx; nothing is corrupt; everything converges with no operator command. See
tests/faults/README.md."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time

import aiohttp
import pytest

from tests.e2e.clients import attempt
from tests.faults.client import PatientClient, image_manifest
from tests.faults.harness import wait_until
from tests.helpers import LAYER_GZIP, sha256
from tests.images import single_image

pytestmark = [pytest.mark.faults]

POSTGRES_OUTAGE = 8.0
BOUND_D = 60.0      # after PostgreSQL accepts connections again
BOUND_E = 60.0      # after the upload completed on the restarted gateway
BOUND_F = 120.0     # after region A's storage returns
CHUNK = 8 << 20


@pytest.mark.timeout(600)
async def test_d_postgres_killed_for_8_seconds_during_pushes(deployment, converged):
    """PostgreSQL (postmaster and backends) is SIGKILLed for ~8 s while a client pushes images to
    region A and has a chunked upload open. Every answer is a success or a 503 with Retry-After
    (never a 500); the client retries; the open upload session survives; after PostgreSQL returns
    everything converges."""
    a = deployment.a
    client = PatientClient(a.gateway_url, give_up_after=120)
    pushed: dict[str, int] = {}
    images_done = 0
    stop_pushing = asyncio.Event()

    async def pusher():
        nonlocal images_done
        while not stop_pushing.is_set():
            pushed.update(await client.push_image("faults-d/app", f"v{images_done}", [os.urandom(256 * 1024)]))
            images_done += 1

    task = asyncio.get_running_loop().create_task(pusher())
    try:
        # A chunked upload opened before the blip and finished after it.
        session_data = os.urandom(2 * CHUNK)
        _, headers, _ = await client.request("POST", client.v2("faults-d/chunked/blobs/uploads/"), expect={202})
        location = headers["Location"]
        _, headers, _ = await client.request("PATCH", a.gateway_url + location, expect={202}, body=session_data[:CHUNK],
                                             headers={"Content-Range": f"0-{CHUNK - 1}", "Content-Type": "application/octet-stream"})
        location = headers["Location"]
        await wait_until(_pushed_at_least(task, lambda: images_done, 2), 60, "two images to be pushed before the fault")

        deployment.kill_postgres()
        outage_started = time.monotonic()
        done_before = images_done
        # The second chunk is sent during the outage: the client retries it until the database is back.
        second = asyncio.get_running_loop().create_task(client.request(
            "PATCH", a.gateway_url + location, expect={202}, body=session_data[CHUNK:],
            headers={"Content-Range": f"{CHUNK}-{2 * CHUNK - 1}", "Content-Type": "application/octet-stream"}))
        await asyncio.sleep(POSTGRES_OUTAGE)  # the outage itself
        lifted = time.monotonic()
        await deployment.start_postgres()
        outage_ended = time.monotonic()
        print(f"PostgreSQL was down {outage_ended - outage_started:.1f} s; {images_done - done_before} image(s) completed meanwhile")

        _, headers, _ = await second
        _, headers, _ = await client.request("PUT", a.gateway_url + headers["Location"], expect={201},
                                             params={"digest": sha256(session_data)})
        pushed[sha256(session_data)] = len(session_data)
        after = images_done
        await wait_until(_pushed_at_least(task, lambda: images_done, after + 2), 90, "two more images to be pushed after the fault")
        stop_pushing.set()
        await task

        during = client.seen_between(outage_started, outage_ended + 5)
        print(f"{len(during)} failed answer(s) around the outage: " + ", ".join(sorted({str(s.status) for s in during})))
        assert during, "no request met the outage: the fault was not exercised"
        # Both outcomes are reported together: what the clients were told, and whether it converged.
        problems = []
        if client.violations():
            problems.append(f"with PostgreSQL down the gateway must answer 503 with Retry-After; {len(client.violations())} "
                            "answer(s) were not:\n  " + "\n  ".join(str(s) for s in client.violations()[:8]))
        try:
            seconds = await deployment.wait_converged(pushed, BOUND_D, f"{len(pushed)} blobs pushed around a PostgreSQL kill",
                                                      since=lifted)
            converged(seconds, BOUND_D)
        except AssertionError as exc:
            problems.append(str(exc))
        problems.extend(deployment.unexpected_deaths())
        assert not problems, "\n".join(problems)
    finally:
        stop_pushing.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


def _pushed_at_least(task: asyncio.Task, count, target: int):
    """A predicate: `count()` reached `target`; re-raises the pusher's failure at once if it died."""
    async def predicate() -> bool:
        if task.done():
            task.result()
            raise AssertionError("the pusher stopped")
        return count() >= target

    return predicate


@pytest.mark.timeout(600)
async def test_e_gateway_killed_mid_chunked_upload(deployment, converged):
    """Region A's gateway is SIGKILLed while a PATCH of a chunked upload is streaming; the client
    retries on the restarted gateway (resuming from the Range it reports, or starting over if the
    session is gone). The blob must be exactly the client's bytes everywhere, converge to B, and
    the killed request must leave no blob or placement behind."""
    a = deployment.a
    client = PatientClient(a.gateway_url)
    conn = await deployment.db()
    scenario_started = await conn.fetchval("SELECT now()")
    data = os.urandom(5 * CHUNK)
    digest = sha256(data)
    repository = "faults-e/app"
    try:
        _, headers, _ = await client.request("POST", client.v2(f"{repository}/blobs/uploads/"), expect={202})
        location = headers["Location"]
        for index in range(2):
            piece = data[index * CHUNK:(index + 1) * CHUNK]
            _, headers, _ = await client.request("PATCH", a.gateway_url + location, expect={202}, body=piece, headers={
                "Content-Range": f"{index * CHUNK}-{(index + 1) * CHUNK - 1}", "Content-Type": "application/octet-stream"})
            location = headers["Location"]

        half_sent = asyncio.Event()
        never = asyncio.Event()

        async def slow_third_chunk():
            third = data[2 * CHUNK:3 * CHUNK]
            for offset in range(0, CHUNK // 2, 1 << 20):
                yield third[offset:offset + (1 << 20)]
                await asyncio.sleep(0.05)
            half_sent.set()
            await never.wait()  # the rest never comes: the gateway dies first

        async def interrupted_patch():
            try:
                async with client.http.patch(a.gateway_url + location, data=slow_third_chunk(), headers={
                        "Content-Range": f"{2 * CHUNK}-{3 * CHUNK - 1}", "Content-Type": "application/octet-stream"}) as r:
                    return r.status
            except Exception as exc:
                return exc

        patch = asyncio.get_running_loop().create_task(interrupted_patch())
        await asyncio.wait_for(half_sent.wait(), 60)
        await asyncio.sleep(0.5)  # let the half chunk reach the gateway and its storage write begin
        a.services["gateway"].kill()
        outcome = await asyncio.wait_for(patch, 30)
        assert isinstance(outcome, Exception), f"the PATCH to a killed gateway cannot succeed, got {outcome}"
        await deployment.restart(a, "gateway")

        # The client retries: it asks where the upload stands and resumes there, or starts over.
        status, headers, _ = await client.request("GET", a.gateway_url + location, expect={204, 404})
        if status == 204:
            end = int(headers["Range"].split("-")[1])
            # Exactly the two acknowledged chunks: more would count bytes the client never finished
            # sending, less would lose bytes the registry acknowledged.
            assert end + 1 == 2 * CHUNK, f"after the kill the upload reports Range {headers['Range']}, expected 0-{2 * CHUNK - 1}"
            offset = end + 1
            print(f"resumed the upload at {offset} bytes")
        else:
            _, headers, _ = await client.request("POST", client.v2(f"{repository}/blobs/uploads/"), expect={202})
            offset = 0
            print("the upload session was gone: started over")
        location = headers["Location"]
        rest = data[offset:]
        _, headers, _ = await client.request("PATCH", a.gateway_url + location, expect={202}, body=rest, headers={
            "Content-Range": f"{offset}-{len(data) - 1}", "Content-Type": "application/octet-stream"})
        completed_upload = headers["Location"].split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        _, headers, _ = await client.request("PUT", a.gateway_url + headers["Location"], expect={201}, params={"digest": digest})
        assert headers["Docker-Content-Digest"] == digest
        config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()}).encode()
        await client.push_blob(repository, config)
        await client.push_manifest(repository, "v1", image_manifest(config, [{"mediaType": LAYER_GZIP, "digest": digest,
                                                                              "size": len(data)}]))
        blobs = {digest: len(data), sha256(config): len(config)}
        seconds = await deployment.wait_converged(blobs, BOUND_E, "a chunked upload interrupted by a gateway kill")
        converged(seconds, BOUND_E)

        _, _, pulled = await client.request("GET", client.v2(f"{repository}/blobs/{digest}"), expect={200})
        assert sha256(pulled) == digest, "the blob served after the retry is not the client's bytes"

        created = {r["digest"] for r in await conn.fetch("SELECT digest FROM blobs WHERE created_at >= $1", scenario_started)}
        assert created == set(blobs), f"blobs other than the pushed ones appeared: {created - set(blobs)}"
        orphans = await conn.fetch(
            "SELECT b.digest, l.name FROM blob_placements p JOIN blobs b ON b.id = p.blob_id "
            "JOIN storage_locations l ON l.id = p.location_id WHERE p.created_at >= $1 AND NOT (b.digest = ANY($2::text[]))",
            scenario_started, list(blobs))
        assert not orphans, f"placements of blobs nobody pushed: {[dict(r) for r in orphans]}"
        assert await conn.fetchval("SELECT count(*) FROM upload_sessions WHERE id::text = $1", completed_upload) == 0, \
            "the completed upload session is still there"
        assert not client.violations(), [str(s) for s in client.violations()]
        assert not deployment.unexpected_deaths(), deployment.unexpected_deaths()
    finally:
        await conn.close()
        await client.close()


def _layout_blobs(root, descriptor: dict) -> dict[str, int]:
    """The blobs (config and layers) of an OCI layout's image."""
    manifest = json.loads((root / "blobs" / "sha256" / descriptor["digest"].split(":")[1]).read_text())
    return {d["digest"]: d["size"] for d in [manifest["config"], *manifest["layers"]]}


@pytest.mark.timeout(600)
async def test_f_own_storage_down_push_fails_over_and_replicates_back(deployment, converged, tmp_path):
    """Region A's own SeaweedFS is down while clients push to A: skopeo and an HTTP client must both
    succeed (the bytes go to the next location in A's preference, B, through its blobstore), a pull
    from A must work meanwhile, and once A's storage returns the blobs replicate back to A."""
    a = deployment.a
    client = PatientClient(a.gateway_url, give_up_after=60)
    try:
        deployment.stop_storage(a)

        async def noticed() -> bool:
            # The gateway probes its own location every few seconds; pushes fail over once it has seen
            # the outage (a push in the instant before that gets 503 + Retry-After on its first chunk).
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{a.gateway_url}/metrics") as r:
                    return 'meridian_location_up{location="us-east"} 0.0' in await r.text()

        await wait_until(noticed, 30, "us-east's gateway to notice its storage is down")
        _, image = single_image(tmp_path / "src")
        target = f"docker://{a.host}/faults-f/app:v1"
        code, output = await attempt("skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false",
                                     f"oci:{tmp_path / 'src'}:latest", target, timeout=180)
        assert code == 0, f"skopeo could not push to us-east while its storage was down (exit {code}):\n{output[-3000:]}"
        blobs = _layout_blobs(tmp_path / "src", image)
        blobs.update(await client.push_image("faults-f/http", "v1", [os.urandom(512 * 1024)]))
        assert not client.seen, f"pushes failed while us-east's storage was down: {[str(s) for s in client.seen]}"

        code, output = await attempt("skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", target,
                                     f"oci:{tmp_path / 'back'}:latest", timeout=180)
        assert code == 0, f"skopeo could not pull from us-east while its storage was down (exit {code}):\n{output[-3000:]}"
        for digest in blobs.keys() & _layout_blobs(tmp_path / "src", image).keys():
            pulled = (tmp_path / "back" / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
            assert "sha256:" + hashlib.sha256(pulled).hexdigest() == digest

        lifted = time.monotonic()
        await deployment.start_storage(a)
        seconds = await deployment.wait_converged(blobs, BOUND_F, "blobs pushed to us-east while its storage was down", since=lifted)
        converged(seconds, BOUND_F)
        assert not deployment.unexpected_deaths(), deployment.unexpected_deaths()
    finally:
        await client.close()
