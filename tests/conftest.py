"""Real servers for the tests: PostgreSQL, NATS (JetStream) and SeaweedFS (S3).

A server already running on its standard loopback port is used (PostgreSQL 5432, NATS 4222);
otherwise one starts from its PyPI wheel on free ports. SeaweedFS always starts here. Each test gets
its own database (from a migrated template), its own stream/subject prefix and its own bucket, and
everything is removed afterwards.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import nats
import pytest
import pytest_asyncio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aiohttp import web
from nats.js.errors import NotFoundError

from shared.config import Config, parse_config
from shared.db import migrate, with_database
from shared.embedded import LOCAL_POSTGRES, free_port, free_ports, local_or_embedded, start_seaweedfs

S3_KEY = "meridian-test"
S3_SECRET = "meridian-test-secret"


@dataclass
class Servers:
    postgres_dsn: str
    nats_url: str
    workdir: Path
    started: list[Any] = field(default_factory=list)
    _s3_url: str | None = None

    def s3_url(self) -> str:
        if self._s3_url is None:
            weed = start_seaweedfs(self.workdir / "seaweedfs")
            self.started.append(weed)
            self._s3_url = weed.url
        return self._s3_url


@pytest.fixture(scope="session")
def servers():
    workdir = Path(tempfile.mkdtemp(prefix="meridian-tests-"))
    dsn, nats_url, started = local_or_embedded(workdir, postgres_dsn=os.environ.get("MERIDIAN_TEST_PG", LOCAL_POSTGRES))
    found = Servers(dsn, nats_url, workdir, started)
    yield found
    for server in reversed(found.started):
        server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest_asyncio.fixture(scope="session")
async def template_db(servers):
    name = f"meridian_tmpl_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(servers.postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await migrate(with_database(servers.postgres_dsn, name))
    yield name
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest_asyncio.fixture
async def database(servers, template_db):
    name = f"meridian_t_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(servers.postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield with_database(servers.postgres_dsn, name)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest_asyncio.fixture
async def bus_prefix(servers):
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    nc = await nats.connect(servers.nats_url)
    # The event stream and the KV buckets (gc locks, service heartbeats) a test's services made.
    for stream in (f"{prefix.upper()}_EVENTS", f"KV_{prefix}_locks", f"KV_{prefix}_heartbeats"):
        with contextlib.suppress(NotFoundError):  # that test never made it
            await nc.jetstream().delete_stream(stream)
    await nc.close()


def s3_client(url: str, key: str = S3_KEY, secret: str = S3_SECRET):
    # Short timeouts, one attempt: the creation loop below retries, so a slow start never hangs it.
    return get_session().create_client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret,
        config=AioConfig(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1}),
    )


def run_async(coro):
    """Run a coroutine to completion from sync code, even while the test loop is running."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _create_bucket(url: str, name: str, key: str = S3_KEY, secret: str = S3_SECRET) -> None:
    async with s3_client(url, key, secret) as s3:
        for _ in range(50):  # SeaweedFS accepts bucket creation about a second after S3 opens
            try:
                await s3.create_bucket(Bucket=name)
                return
            except Exception:
                await asyncio.sleep(0.2)
    raise RuntimeError("SeaweedFS refused to create a bucket")


async def _remove_bucket(url: str, name: str, key: str = S3_KEY, secret: str = S3_SECRET) -> None:
    async with s3_client(url, key, secret) as s3:
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=name):
            for item in page.get("Contents", []):
                await s3.delete_object(Bucket=name, Key=item["Key"])
        uploads = await s3.list_multipart_uploads(Bucket=name)
        for upload in uploads.get("Uploads", []):
            await s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        await s3.delete_bucket(Bucket=name)


@pytest.fixture
def bucket(servers):
    """A fresh bucket on SeaweedFS: (S3 URL, bucket name)."""
    url = servers.s3_url()
    name = f"meridian-{uuid.uuid4().hex[:12]}"
    run_async(_create_bucket(url, name))
    yield url, name
    run_async(_remove_bucket(url, name))


def s3_location(url: str, bucket: str, driver: str = "S3Storage") -> list:
    host, port = url.removeprefix("http://").split(":")
    return [driver, {"host": host, "port": int(port), "is_secure": False, "s3_bucket": bucket,
                     "s3_access_key": S3_KEY, "s3_secret_key": S3_SECRET, "storage_path": "/registry"}]


@dataclass
class RunningRegistry:
    url: str
    config: Config
    doc: dict
    runner: web.AppRunner
    http: aiohttp.ClientSession

    def v2(self, path: str) -> str:
        return f"{self.url}/v2/{path.lstrip('/')}"

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")


@pytest_asyncio.fixture
async def make_registry(servers, database, bus_prefix, tmp_path):
    running: list[RunningRegistry] = []

    async def start(storage: str | tuple[str, str] = "local", **overrides) -> RunningRegistry:
        """storage: "local", or (s3 url, bucket) from the `bucket` fixture."""
        port = free_port()
        if isinstance(storage, tuple):
            locations = {"s3": s3_location(*storage)}
        else:
            locations = {"local": ["LocalStorage", {"storage_path": str(tmp_path / "storage")}]}
        doc = {
            "SERVER_HOSTNAME": f"127.0.0.1:{port}",
            "DB_URI": database,
            "DB_POOL_SIZE": 10,
            "NATS_URL": servers.nats_url,
            "MERIDIAN_BUS_PREFIX": bus_prefix,
            "DISTRIBUTED_STORAGE_CONFIG": locations,
            "MERIDIAN_INSECURE_OPEN_ACCESS": True,
            "MERIDIAN_OUTBOX_RELAY_AFTER_SEC": 1.0,
            **overrides,
        }
        config = parse_config(doc)
        from services.gateway.app import create_app

        runner = web.AppRunner(create_app(config), access_log=None, shutdown_timeout=5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        http = aiohttp.ClientSession()
        registry = RunningRegistry(f"http://127.0.0.1:{port}", config, doc, runner, http)
        running.append(registry)
        return registry

    yield start
    for registry in running:
        await registry.http.close()
        await registry.runner.cleanup()


@pytest_asyncio.fixture
async def registry(make_registry):
    return await make_registry()


@pytest_asyncio.fixture
async def db(database):
    conn = await asyncpg.connect(database)
    yield conn
    await conn.close()


@pytest.fixture
def make_bucket(servers):
    """Factory for extra fresh buckets: make_bucket() -> (S3 URL, bucket name); removed afterwards."""
    made: list[tuple[str, str]] = []

    def make() -> tuple[str, str]:
        url = servers.s3_url()
        name = f"meridian-{uuid.uuid4().hex[:12]}"
        run_async(_create_bucket(url, name))
        made.append((url, name))
        return url, name

    yield make
    for url, name in made:
        run_async(_remove_bucket(url, name))


SERVICE_SECRET = "test-secret-" + "x" * 40


@pytest_asyncio.fixture
async def make_regions(servers, database, bus_prefix, tmp_path):
    """Start regions (gateway + blobstore + replicator each) sharing one database and bus.

    make_regions({"us": storage_spec, "eu": storage_spec}, replicate={"eu": False}, **config_overrides)
    returns {name: RegionServices}; each RegionServices also gets `.http` and `.v2(path)`.
    """
    from services.region import RegionServices, region_docs, start_region

    @dataclass
    class StartedRegion(RegionServices):
        http: aiohttp.ClientSession | None = None
        doc: dict = field(default_factory=dict)

        def v2(self, path: str) -> str:
            return f"{self.gateway_url}/v2/{path.lstrip('/')}"

    started: list[StartedRegion] = []
    sessions: list[aiohttp.ClientSession] = []

    async def make(storage: dict[str, list], *, replicate: dict[str, bool] | None = None, server_ssl=None,
                   config_dir=None, **overrides):
        names = list(storage)
        ports = free_ports(2 * len(names))
        blobstore_ports = dict(zip(names, ports[: len(names)], strict=True))
        gateway_ports = dict(zip(names, ports[len(names):], strict=True))
        scheme = "https" if server_ssl is not None else "http"
        urls = {name: f"{scheme}://127.0.0.1:{port}" for name, port in blobstore_ports.items()}
        base = {
            "DB_URI": database, "DB_POOL_SIZE": 8, "NATS_URL": servers.nats_url, "MERIDIAN_BUS_PREFIX": bus_prefix,
            "MERIDIAN_INSECURE_OPEN_ACCESS": True, "MERIDIAN_SERVICE_SECRET": SERVICE_SECRET,
            "MERIDIAN_OUTBOX_RELAY_AFTER_SEC": 1.0, "MERIDIAN_REPLICATION_ACK_WAIT_SEC": 5,
            "MERIDIAN_REPLICATION_MAX_BACKOFF_SEC": 1, "MERIDIAN_LOCATION_RETRY_AFTER_SEC": 1,
            **overrides,
        }
        docs = region_docs(base, names, urls, storage)
        regions = {}
        for name in names:
            services = await start_region(
                docs[name], gateway_listen=f"127.0.0.1:{gateway_ports[name]}", blobstore_listen=f"127.0.0.1:{blobstore_ports[name]}",
                replicate=(replicate or {}).get(name, True), config_dir=config_dir, server_ssl=server_ssl,
            )
            connector = aiohttp.TCPConnector(ssl=server_ssl and _client_ssl(config_dir))
            # The same services (runners, replicator), with the test's client session and config document.
            http = aiohttp.ClientSession(connector=connector)
            sessions.append(http)
            region = StartedRegion(**vars(services), http=http, doc=docs[name])
            started.append(region)
            regions[name] = region
        return regions

    yield make
    for session in sessions:
        await session.close()
    for region in reversed(started):
        await region.stop()


def _client_ssl(config_dir):
    from shared.tls import client_context

    return client_context(config_dir)


def local_spec(path) -> list:
    return ["LocalStorage", {"storage_path": str(path)}]


@pytest.fixture
def own_seaweedfs(tmp_path):
    """A SeaweedFS server of the test's own, with bucket "own-bucket", that the test may freeze
    (SIGSTOP), stop and restart on its ports: {"server": EmbeddedProcess, "bucket": name}."""
    import signal

    server = start_seaweedfs(tmp_path / "weed")
    run_async(_create_bucket(server.url, "own-bucket"))
    holder: dict[str, Any] = {"server": server, "bucket": "own-bucket"}
    yield holder
    holder["server"].process.send_signal(signal.SIGCONT)
    holder["server"].stop()


@pytest_asyncio.fixture
async def service_key(database, tmp_path):
    """A pre-provisioned, approved service key (what `meridian keys generate` + `keys add` make), as the
    config overrides read-only mode needs."""
    import datetime as dt

    from shared.servicekeys import SigningKey, register, write_key_files

    key = SigningKey.generate()
    write_key_files(key, tmp_path / "readonly-key")
    conn = await asyncpg.connect(database)
    try:
        await register(conn, kid=key.kid, name="test read-only key", service="quay", jwk=key.jwk,
                       expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1), approval_type="cli")
    finally:
        await conn.close()
    return {"INSTANCE_SERVICE_KEY_LOCATION": str(tmp_path / "readonly-key.pem"),
            "INSTANCE_SERVICE_KEY_KID_LOCATION": str(tmp_path / "readonly-key.kid")}


@pytest_asyncio.fixture
async def make_world(make_registry, database):
    """Registries with token auth and the cast of tests/identity_world.py: make_world(**config_overrides)."""
    from tests.identity_world import build_world

    built = []

    async def make(**overrides):
        world = await build_world(make_registry, database, **overrides)
        built.append(world)
        return world

    yield make
    for world in built:
        await world.close()
        await world.conn.close()


@pytest_asyncio.fixture
async def world(make_world):
    return await make_world()


@pytest.fixture(scope="session")
def azurite(servers):
    """Azurite (the Azure Storage emulator) on a free loopback port: its blob account URL."""
    from tests.storage_servers import start_azurite

    server = start_azurite(servers.workdir / "azurite")
    yield server.url
    server.stop()


@pytest.fixture
def azure_container(azurite):
    """A fresh container on Azurite: (account URL, container name); removed afterwards."""
    from azure.storage.blob.aio import BlobServiceClient

    from tests.storage_servers import AZURITE_ACCOUNT, AZURITE_KEY

    name = f"meridian-{uuid.uuid4().hex[:12]}"
    credential = {"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}

    async def create():
        async with BlobServiceClient(azurite, credential=credential) as service:
            await service.create_container(name)

    async def remove():
        async with BlobServiceClient(azurite, credential=credential) as service:
            await service.delete_container(name)

    run_async(create())
    yield azurite, name
    run_async(remove())


@pytest.fixture(scope="session")
def sts_seaweedfs(servers):
    """A SeaweedFS that checks credentials and runs STS (AssumeRole), for STSS3Storage."""
    from tests.storage_servers import start_sts_seaweedfs

    server = start_sts_seaweedfs(servers.workdir / "sts-seaweedfs")
    yield server.url
    server.stop()


@pytest.fixture
def sts_bucket(sts_seaweedfs):
    """A fresh bucket on the STS SeaweedFS, made with the account's own keys: (S3 URL, bucket name)."""
    from tests.storage_servers import STS_ADMIN_KEY, STS_ADMIN_SECRET

    name = f"meridian-{uuid.uuid4().hex[:12]}"
    keys = {"key": STS_ADMIN_KEY, "secret": STS_ADMIN_SECRET}
    run_async(_create_bucket(sts_seaweedfs, name, **keys))
    yield sts_seaweedfs, name
    run_async(_remove_bucket(sts_seaweedfs, name, **keys))
