"""A chunked upload whose requests reach different gateway processes still completes correctly."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import aiohttp
import pytest_asyncio
import yaml

from shared.embedded import free_port
from tests.helpers import eventually, sha256


@pytest_asyncio.fixture
async def second_gateway(registry, tmp_path):
    """The same registry (database, bus, storage) served by another OS process."""
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(registry.doc))
    port = free_port()
    with open(tmp_path / "gateway2.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "gateway", "--config", str(config_path), "--listen", f"127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    async def answering():
        if process.poll() is not None:
            raise AssertionError(f"second gateway exited: {(tmp_path / 'gateway2.log').read_text()}")
        try:
            async with registry.http.get(f"{url}/v2/") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    await eventually(answering, timeout=30, what="second gateway to answer")
    yield url
    process.terminate()
    process.wait(10)


async def rehash_count(http, url: str) -> float:
    async with http.get(f"{url}/metrics") as r:
        text = await r.text()
    match = re.search(r"^meridian_upload_rehash_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_chunks_alternate_between_two_processes(registry, second_gateway):
    first = registry.url
    data = os.urandom(5 * 1024 * 1024 + 11)
    pieces = [data[i : i + 1024 * 1024] for i in range(0, len(data), 1024 * 1024)]
    http = registry.http
    async with http.post(f"{first}/v2/acme/split/blobs/uploads/") as r:
        assert r.status == 202
        location = r.headers["Location"]
    offset = 0
    for index, piece in enumerate(pieces):
        target = first if index % 2 == 0 else second_gateway
        headers = {"Content-Range": f"{offset}-{offset + len(piece) - 1}"}
        async with http.patch(target + location, data=piece, headers=headers) as r:
            assert r.status == 202, await r.text()
            offset += len(piece)
            assert r.headers["Range"] == f"0-{offset - 1}"
            location = r.headers["Location"]
    before = await rehash_count(http, second_gateway)
    # The last chunk went to the first process, so the second lacks the running hash: it re-reads.
    async with http.put(second_gateway + location, params={"digest": sha256(data)}) as r:
        assert r.status == 201, await r.text()
    assert await rehash_count(http, second_gateway) == before + 1
    for url in (first, second_gateway):
        async with http.get(f"{url}/v2/acme/split/blobs/{sha256(data)}") as r:
            assert await r.read() == data


async def test_upload_finished_where_it_ran_needs_no_rehash(registry, second_gateway):
    data = os.urandom(2 * 1024 * 1024)
    http = registry.http
    async with http.post(f"{second_gateway}/v2/acme/local/blobs/uploads/") as r:
        location = r.headers["Location"]
    async with http.patch(second_gateway + location, data=data[:1024 * 1024]) as r:
        location = r.headers["Location"]
    async with http.patch(second_gateway + location, data=data[1024 * 1024:]) as r:
        location = r.headers["Location"]
    before = await rehash_count(http, second_gateway)
    async with http.put(second_gateway + location, params={"digest": sha256(data)}) as r:
        assert r.status == 201, await r.text()
    assert await rehash_count(http, second_gateway) == before


async def test_wrong_digest_across_processes_discards_the_upload(registry, second_gateway, db):
    http = registry.http
    async with http.post(f"{registry.url}/v2/acme/bad/blobs/uploads/") as r:
        location = r.headers["Location"]
    async with http.patch(registry.url + location, data=b"abc") as r:
        location = r.headers["Location"]
    async with http.put(second_gateway + location, params={"digest": sha256(b"xyz")}) as r:
        assert r.status == 400
        assert (await r.json())["errors"][0]["code"] == "DIGEST_INVALID"
    assert await db.fetchval("SELECT count(*) FROM upload_sessions") == 0
    assert await db.fetchval("SELECT count(*) FROM blobs") == 0
