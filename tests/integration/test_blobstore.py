"""The blobstore's own protocol: signed tokens, ranged reads, verified PUT, NATS commands."""
from __future__ import annotations

import json
import os

import aiohttp
import nats
import pytest_asyncio
from aiohttp import web

from shared import tokens
from shared.config import parse_config
from shared.embedded import free_port
from shared.storage.paths import blob as blob_path
from tests.conftest import SERVICE_SECRET, local_spec
from tests.helpers import sha256


@pytest_asyncio.fixture
async def blobstore(servers, bus_prefix, tmp_path, database):
    from services.blobstore.app import create_app

    port = free_port()
    config = parse_config({
        "DB_URI": database, "NATS_URL": servers.nats_url, "MERIDIAN_BUS_PREFIX": bus_prefix,
        "DISTRIBUTED_STORAGE_CONFIG": {"here": local_spec(tmp_path / "here")},
        "MERIDIAN_BLOBSTORE_URLS": {"here": f"http://127.0.0.1:{port}"}, "MERIDIAN_SERVICE_SECRET": SERVICE_SECRET,
    })
    runner = web.AppRunner(create_app(config), shutdown_timeout=5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession() as http:
        yield http, f"http://127.0.0.1:{port}", tmp_path / "here"
    await runner.cleanup()


def bearer(action: str, digest: str, location: str = "here", secret: str = SERVICE_SECRET) -> dict:
    return {"Authorization": f"Bearer {tokens.sign(secret, location=location, action=action, digest=digest)}"}


async def test_put_then_get_with_range(blobstore):
    http, url, root = blobstore
    data = os.urandom(100_000)
    digest = sha256(data)
    async with http.put(f"{url}/blobs/{digest}", data=data, headers=bearer("write", digest)) as r:
        assert r.status == 201
    assert (root / blob_path(digest)).read_bytes() == data
    async with http.get(f"{url}/blobs/{digest}", headers={**bearer("read", digest), "Range": "bytes=5-9"}) as r:
        assert r.status == 206 and await r.read() == data[5:10]
    async with http.head(f"{url}/blobs/{digest}", headers=bearer("read", digest)) as r:
        assert r.status == 200 and int(r.headers["Content-Length"]) == len(data)


async def test_put_with_wrong_bytes_stores_nothing(blobstore):
    http, url, root = blobstore
    digest = sha256(b"the real thing")
    async with http.put(f"{url}/blobs/{digest}", data=b"an impostor", headers=bearer("write", digest)) as r:
        assert r.status == 400 and "digest mismatch" in await r.text()
    assert not (root / blob_path(digest)).exists()
    assert not [p for p in (root / ".tmp").iterdir()]


async def test_tokens_are_required_and_bound(blobstore):
    http, url, root = blobstore
    data = b"guarded"
    digest = sha256(data)
    async with http.put(f"{url}/blobs/{digest}", data=data, headers=bearer("write", digest)) as r:
        assert r.status == 201
    other = sha256(b"other")
    for headers, status in [
        ({}, 401),
        ({"Authorization": "Bearer not-a-token"}, 403),
        (bearer("read", other), 403),                      # another digest
        (bearer("read", digest, location="elsewhere"), 403),  # another location
        (bearer("read", digest, secret="wrong-secret-" + "y" * 40), 403),
        (bearer("write", digest), 403),                    # another action
    ]:
        async with http.get(f"{url}/blobs/{digest}", headers=headers) as r:
            assert r.status == status, headers
    async with http.put(f"{url}/blobs/{other}", data=b"other", headers=bearer("read", other)) as r:
        assert r.status == 403
    async with http.get(f"{url}/blobs/{other}", headers=bearer("read", other)) as r:
        assert r.status == 404


async def test_nats_commands(blobstore, servers, bus_prefix):
    http, url, root = blobstore
    data = os.urandom(1000)
    digest = sha256(data)
    async with http.put(f"{url}/blobs/{digest}", data=data, headers=bearer("write", digest)) as r:
        assert r.status == 201
    nc = await nats.connect(servers.nats_url)
    try:
        async def ask(command: str, value: str) -> dict:
            reply = await nc.request(f"{bus_prefix}.blobstore.here.{command}", json.dumps({"digest": value}).encode(), timeout=5)
            return json.loads(reply.data)

        assert await ask("stat", digest) == {"ok": True, "exists": True, "size": 1000, "valid": None, "error": None}
        assert await ask("verify", digest) == {"ok": True, "exists": True, "size": 1000, "valid": True, "error": None}
        (root / blob_path(digest)).write_bytes(b"x" + data[1:])
        assert (await ask("verify", digest))["valid"] is False
        assert (await ask("delete", digest))["ok"] is True
        assert await ask("stat", digest) == {"ok": True, "exists": False, "size": None, "valid": None, "error": None}
        assert (await ask("stat", "sha256:nope"))["ok"] is False
    finally:
        await nc.close()
