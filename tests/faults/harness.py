"""Two regions in production shape, for fault injection.

Every service is its own OS process started with the `meridian` CLI and a region's config.yaml, as an
operator runs it. Each region has its own SeaweedFS (its storage location); the regions share one
PostgreSQL and one NATS that belong to this harness (never the machine's 5432 / 4222, which other
tests use), so a test may SIGKILL, SIGSTOP and restart any of them on the same ports.

    Deployment
    ├── postgres   PostgreSQL (pgserver's binaries, run as the `pgserver` user when root)
    ├── nats       nats-server with JetStream, its store on disk so a restart keeps the stream
    └── regions    us-east (A), eu-west (B): each a SeaweedFS + gateway, blobstore, replicator, gc, health

Each process writes its log to <workdir>/logs/<name>.log (kept across restarts); `log_tails()` gives
the end of each for a failure report.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import importlib.util
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from shared.embedded import EmbeddedProcess, free_ports, start_nats, start_seaweedfs
from shared.storage import paths

REPO_ROOT = Path(__file__).resolve().parents[2]
S3_KEY = "meridian-faults"
S3_SECRET = "meridian-faults-secret"
SERVICE_SECRET = "fault-suite-" + "s" * 40
SERVICES = ("gateway", "blobstore", "replicator", "gc", "health")
STORAGE_PATH = "/registry"

# The replication knobs the scenarios are written against (docs/geo-replication.md): five deliveries,
# a NAK back-off capped at 2 s (so the whole back-off, 1+2+2+2 s, is spent in about 7 s), an ack wait
# of 6 s (a killed replicator's message comes back after 6 s), the circuit breaker open for 5 s.
TUNING = {
    "MERIDIAN_REPLICATION_MAX_DELIVER": 5,
    "MERIDIAN_REPLICATION_MAX_BACKOFF_SEC": 2,
    "MERIDIAN_REPLICATION_ACK_WAIT_SEC": 6,
    "MERIDIAN_REPLICATION_CONCURRENCY": 4,
    "MERIDIAN_LOCATION_RETRY_AFTER_SEC": 5,
    "MERIDIAN_OUTBOX_RELAY_AFTER_SEC": 2,
    "MERIDIAN_HEALTH_CHECK_TIMEOUT_SEC": 2,
    "MERIDIAN_HEARTBEAT_INTERVAL_SEC": 2,
    "DB_POOL_SIZE": 6,
    # Anti-entropy and cleanup at a test's pace (production: 30 s, 60 s, 600 s, 30 s).
    "MERIDIAN_RECONCILE_INTERVAL_SEC": 2,
    "MERIDIAN_RECONCILE_GRACE_SEC": 2,
    "MERIDIAN_PARTIAL_OBJECT_MAX_AGE_SEC": 20,
    "GARBAGE_COLLECTION_FREQUENCY": 5,
}


async def wait_until(predicate: Callable[[], Awaitable[Any]], timeout: float, what: str, interval: float = 0.25,
                     explain: Callable[[], Awaitable[str]] | None = None, started: float | None = None) -> Any:
    """Wait for an async predicate to return a truthy value, with a deadline of `timeout` seconds from
    `started` (time.monotonic(); default now); `explain` says what is still missing when it fails."""
    deadline = (time.monotonic() if started is None else started) + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f": {await explain()}" if explain else ""
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s{detail}")
        await asyncio.sleep(interval)


def _tail(path: Path, lines: int, skip: str | None = None) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - 256 * 1024, 0))
            text = handle.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    kept = [line if len(line) <= 600 else line[:600] + " ..." for line in text.splitlines() if not (skip and skip in line)]
    return "\n".join(kept[-lines:])


def _die_with_parent(sig: int) -> None:
    """Linux: the child gets `sig` when the test process goes away, even on SIGKILL, so an
    interrupted run leaves no registry behind (its own session shields it from the terminal)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG


class Process:
    """One OS process the harness owns: started in its own session so a signal reaches it (and any
    children) and nothing else; its output appended to one log file across restarts."""

    def __init__(self, name: str, command: list[str], log_path: Path, *, user: str | None = None,
                 cwd: Path | None = None, env: dict | None = None, death_signal: int = signal.SIGTERM) -> None:
        self.name = name
        self.death_signal = death_signal
        self.command = command
        self.log_path = log_path
        self.user = user
        self.cwd = cwd
        self.env = env
        self.popen: subprocess.Popen | None = None
        self.expected_down = False  # set while a test keeps it down on purpose
        self.paused = False

    def start(self) -> None:
        assert not self.running, f"{self.name} is already running"
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== fault harness: starting {self.name} at {time.strftime('%H:%M:%S')} =====\n".encode())
            log.flush()
            self.popen = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                          user=self.user, cwd=self.cwd, env=self.env,
                                          preexec_fn=lambda: _die_with_parent(self.death_signal))
        self.expected_down = False

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def signal(self, sig: int) -> None:
        """Send `sig` to the process and everything in its session (postgres' backends, for one)."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would; waits until it is gone."""
        self.expected_down = True
        self.signal(signal.SIGCONT)  # a stopped process must not keep its session alive
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()
        self._note("killed with SIGKILL")

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True
        self._note("paused with SIGSTOP")

    def resume(self) -> None:
        if self.paused:
            self.signal(signal.SIGCONT)
            self.paused = False
            self._note("resumed with SIGCONT")

    def stop(self, timeout: float = 15) -> None:
        self.expected_down = True
        if not self.running:
            return
        assert self.popen is not None  # it is running
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait()

    def _note(self, what: str) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"===== fault harness: {self.name} {what} at {time.strftime('%H:%M:%S')} =====\n".encode())

    def tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)


class Postgres:
    """PostgreSQL of the harness's own, on a fixed port across restarts. pgserver's binaries (a Python
    dependency, so a fresh clone has them); as root they run as pgserver's `pgserver` system user.
    The postmaster is our direct child, so SIGKILL takes it and its backends down like a crash."""

    def __init__(self, folder: Path, port: int) -> None:
        # The wheel's binaries, found without importing pgserver (its import warns about XDG dirs).
        spec = importlib.util.find_spec("pgserver")
        assert spec is not None and spec.submodule_search_locations, "pgserver (a test dependency) is not installed"
        self.bin = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.user = None
        if os.geteuid() == 0:  # postgres refuses to run as root; pgserver uses this user too
            self.user = "pgserver"
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                subprocess.run(["useradd", "-s", "/bin/bash", self.user], check=True, capture_output=True)
        folder.mkdir(parents=True, exist_ok=True)
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            _open_path_to(folder)
        subprocess.run([str(self.bin / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "utf8"],
                       check=True, capture_output=True, user=self.user)
        self.process = Process("postgres", [
            str(self.bin / "postgres"), "-D", str(self.data), "-p", str(port), "-k", str(self.data),
            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "fsync=off",
            "-c", "shared_buffers=64MB",
        ], folder / "postgres.log", user=self.user, death_signal=signal.SIGQUIT)  # SIGQUIT: immediate shutdown
        if self.user:
            Path(self.process.log_path).touch()
            os.chown(self.process.log_path, entry.pw_uid, entry.pw_gid)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def start(self, timeout: float = 60) -> None:
        self.process.start()

        async def accepting():
            if not self.process.running:
                raise AssertionError(f"postgres exited:\n{self.process.tail()}")
            try:
                conn = await asyncpg.connect(self.dsn(), timeout=2)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                return False
            await conn.close()
            return True

        await wait_until(accepting, timeout, "PostgreSQL to accept connections")


def _open_path_to(path: Path) -> None:
    """Let another user traverse the folders down to `path` (mkdtemp makes them 0700)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        parent.chmod(mode | 0o055)
        if parent == Path(parent.anchor):
            break


class Nats:
    """nats-server with JetStream on a fixed port; its store stays on disk across restarts."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.server: EmbeddedProcess | None = None
        self.url = f"nats://127.0.0.1:{port}"

    def start(self) -> None:
        self.server = start_nats(self.folder, port=self.port)

    @property
    def running(self) -> bool:
        return self.server is not None and self.server.process.poll() is None

    def kill(self) -> None:
        if self.server is not None and self.server.process.poll() is None:
            self.server.process.kill()
            self.server.process.wait()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def tail(self, lines: int = 40) -> str:
        return _tail(self.folder / "nats.log", lines)


class SeaweedFS:
    """One region's S3 storage, restartable on the same ports with the same data."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.server: EmbeddedProcess | None = None
        self.ports: tuple[int, int, int, int] | None = None

    def start(self) -> None:
        self.server = start_seaweedfs(self.folder, ports=self.ports)
        self.ports = self.server.extra["ports"]

    @property
    def url(self) -> str:
        assert self.ports is not None
        return f"http://127.0.0.1:{self.ports[0]}"

    @property
    def running(self) -> bool:
        return self.server is not None and self.server.process.poll() is None

    def stop(self) -> None:
        """Storage goes away (a graceful stop: the data on disk is the storage's, not ours to lose)."""
        if self.server is not None:
            self.server.process.send_signal(signal.SIGCONT)
            self.server.stop()

    def pause(self) -> None:
        assert self.server is not None, "start() first"
        self.server.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.server is not None, "start() first"
        self.server.process.send_signal(signal.SIGCONT)

    def tail(self, lines: int = 40) -> str:
        # SeaweedFS runs without S3 auth and warns on every signed request; those lines say nothing.
        return _tail(self.folder / "weed.log", lines, skip="InvalidAccessKeyId")


def s3_client(url: str):
    return get_session().create_client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
        config=AioConfig(s3={"addressing_style": "path"}, connect_timeout=3, read_timeout=30, retries={"max_attempts": 1}),
    )


@dataclass
class Region:
    name: str          # also its storage location's name
    folder: Path
    bucket: str
    ports: dict[str, int]
    storage: SeaweedFS
    config_path: Path
    services: dict[str, Process] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def blobstore_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['blobstore']}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def v2(self, path: str) -> str:
        return f"{self.gateway_url}/v2/{path.lstrip('/')}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.ports['gateway']}"

    def object_key(self, digest: str) -> str:
        return f"{STORAGE_PATH.strip('/')}/{paths.blob(digest)}"


@dataclass
class Stored:
    """What a location's own storage holds for a digest, read straight from its S3 bucket."""
    present: bool
    size: int | None = None
    digest: str | None = None


class Deployment:
    """Two regions, us-east (A) and eu-west (B), in production shape; see the module docstring."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        ports = free_ports(2 + 2 * len(SERVICES))
        self.postgres = Postgres(workdir / "postgres", ports[0])
        self.nats = Nats(workdir / "nats", ports[1])
        service_ports = ports[2:]
        self.regions: dict[str, Region] = {}
        for index, name in enumerate(("us-east", "eu-west")):
            own = dict(zip(SERVICES, service_ports[index * len(SERVICES):(index + 1) * len(SERVICES)], strict=True))
            folder = workdir / name
            folder.mkdir(parents=True, exist_ok=True)
            self.regions[name] = Region(name, folder, f"meridian-{name}", own, SeaweedFS(folder / "seaweedfs"),
                                        folder / "config.yaml")
        self.http: aiohttp.ClientSession | None = None

    @property
    def a(self) -> Region:
        return self.regions["us-east"]

    @property
    def b(self) -> Region:
        return self.regions["eu-west"]

    @property
    def locations(self) -> list[str]:
        return list(self.regions)

    # ----- set-up -----------------------------------------------------------------------------------

    def config_doc(self, region: Region) -> dict:
        """The region's config.yaml as an operator writes it (docs/geo-replication.md, compose/): the
        other region's location is reached through its blobstore, so only where it is is given."""
        storage = {}
        for other in self.regions.values():
            host, port = other.storage.url.removeprefix("http://").split(":")
            params: dict[str, Any] = {"host": host, "port": int(port), "is_secure": False,
                                      "s3_bucket": other.bucket, "storage_path": STORAGE_PATH}
            if other is region:
                params.update(s3_access_key=S3_KEY, s3_secret_key=S3_SECRET)
            storage[other.name] = ["S3Storage", params]
        return {
            "SERVER_HOSTNAME": region.host,
            "MERIDIAN_REGION": region.name,
            "DB_URI": self.postgres.dsn("meridian"),
            "NATS_URL": self.nats.url,
            "FEATURE_STORAGE_REPLICATION": True,
            "DISTRIBUTED_STORAGE_CONFIG": storage,
            "DISTRIBUTED_STORAGE_PREFERENCE": [region.name] + [n for n in self.regions if n != region.name],
            "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS": list(self.regions),
            "MERIDIAN_BLOBSTORE_URLS": {r.name: r.blobstore_url for r in self.regions.values()},
            "MERIDIAN_SERVICE_SECRET": SERVICE_SECRET,
            "MERIDIAN_INSECURE_OPEN_ACCESS": True,
            "MERIDIAN_LISTEN": f"127.0.0.1:{region.ports['gateway']}",
            "MERIDIAN_BLOBSTORE_LISTEN": f"127.0.0.1:{region.ports['blobstore']}",
            "MERIDIAN_REPLICATOR_LISTEN": f"127.0.0.1:{region.ports['replicator']}",
            "MERIDIAN_GC_LISTEN": f"127.0.0.1:{region.ports['gc']}",
            "MERIDIAN_HEALTH_LISTEN": f"127.0.0.1:{region.ports['health']}",
            **TUNING,
        }

    def _cli(self, region: Region, *args: str) -> list[str]:
        return [sys.executable, "-m", "services.cli", *args, "--config", str(region.config_path)]

    async def start(self) -> None:
        await self.postgres.start()
        self.nats.start()
        for region in self.regions.values():
            region.storage.start()
        for region in self.regions.values():
            await self._create_bucket(region)
            region.config_path.write_text(yaml.safe_dump(self.config_doc(region), sort_keys=False))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        migrate = subprocess.run(self._cli(self.a, "migrate"), cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        assert migrate.returncode == 0, f"meridian migrate failed:\n{migrate.stdout}{migrate.stderr}"
        for region in self.regions.values():
            for service in SERVICES:
                region.services[service] = Process(f"{region.name}.{service}", self._cli(region, service),
                                                   self.workdir / "logs" / f"{region.name}.{service}.log",
                                                   cwd=REPO_ROOT, env=env)
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30, sock_connect=3))
        for region in self.regions.values():
            for process in region.services.values():
                process.start()
        await self.wait_ready()

    async def _create_bucket(self, region: Region) -> None:
        async def created():
            try:
                async with s3_client(region.storage.url) as s3:
                    try:
                        await s3.head_bucket(Bucket=region.bucket)
                    except Exception:
                        await s3.create_bucket(Bucket=region.bucket)
                return True
            except Exception:
                return False  # SeaweedFS accepts bucket creation a moment after S3 opens

        await wait_until(created, 30, f"bucket {region.bucket} to be created")

    # ----- readiness and faults ---------------------------------------------------------------------

    async def service_ready(self, region: Region, service: str) -> bool:
        process = region.services[service]
        if not process.running:
            raise AssertionError(f"{process.name} exited:\n{process.tail()}")
        path = "/v2/" if service == "gateway" else "/metrics"
        assert self.http is not None, "start() first"
        try:
            async with self.http.get(region.url(service) + path, timeout=aiohttp.ClientTimeout(total=5)) as r:
                return r.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def wait_service(self, region: Region, service: str, timeout: float = 60) -> None:
        await wait_until(lambda: self.service_ready(region, service), timeout, f"{region.name} {service} to be ready")

    async def wait_ready(self, timeout: float = 90) -> None:
        for region in self.regions.values():
            for service in SERVICES:
                await self.wait_service(region, service, timeout)

    async def restart(self, region: Region, service: str, timeout: float = 60) -> None:
        """Start a service again on the same ports (after a kill or stop) and wait until it answers."""
        process = region.services[service]
        if process.running:
            process.stop()
        process.start()
        await self.wait_service(region, service, timeout)

    def kill_postgres(self) -> None:
        """SIGKILL the postmaster and its backends together, like a crash of the database host."""
        self.postgres.process.kill()

    async def start_postgres(self) -> None:
        await self.postgres.start()

    def kill_nats(self) -> None:
        self.nats.kill()

    def start_nats(self) -> None:
        self.nats.start()

    def stop_storage(self, region: Region) -> None:
        region.storage.stop()

    async def start_storage(self, region: Region) -> None:
        region.storage.start()

        async def answering():
            try:
                async with s3_client(region.storage.url) as s3:
                    await s3.head_bucket(Bucket=region.bucket)
                return True
            except Exception:
                return False

        await wait_until(answering, 60, f"{region.name}'s storage to answer again")

    def unexpected_deaths(self) -> list[str]:
        """Services that exited although no test stopped them: a fault must not crash a service."""
        dead = []
        for region in self.regions.values():
            for process in region.services.values():
                if not process.running and not process.expected_down:
                    code = process.popen.returncode if process.popen else None
                    dead.append(f"{process.name} (exit code {code}):\n{process.tail(20)}")
        return dead

    async def heal(self) -> None:
        """Undo whatever a test left: resume paused processes, start what is down, wait until ready."""
        if not self.postgres.process.running:
            await self.postgres.start()
        self.postgres.process.resume()
        if not self.nats.running:
            self.nats.start()
        assert self.nats.server is not None  # started
        self.nats.server.process.send_signal(signal.SIGCONT)
        for region in self.regions.values():
            if not region.storage.running:
                await self.start_storage(region)
            region.storage.resume()
            for process in region.services.values():
                process.resume()
                if not process.running:
                    process.start()
        await self.wait_ready()

    async def healthy(self) -> bool:
        try:
            await asyncio.wait_for(self.heal(), 120)
            return not self.unexpected_deaths()
        except Exception:
            return False

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        for region in self.regions.values():
            for process in region.services.values():
                process.stop()
        for region in self.regions.values():
            region.storage.stop()
        self.nats.stop()
        self.postgres.process.stop()

    def log_tails(self, lines: int = 40) -> dict[str, str]:
        tails = {"postgres": self.postgres.process.tail(lines), "nats": self.nats.tail(lines)}
        for region in self.regions.values():
            tails[f"{region.name}.seaweedfs"] = region.storage.tail(lines)
            for process in region.services.values():
                tails[process.name] = process.tail(lines)
        return tails

    # ----- what is placed where ---------------------------------------------------------------------

    async def db(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.postgres.dsn("meridian"), timeout=5)

    async def placements(self, digests: list[str]) -> dict[str, set[str]]:
        """digest -> the locations the database says hold it."""
        conn = await self.db()
        try:
            rows = await conn.fetch(
                "SELECT b.digest, l.name FROM blobs b JOIN blob_placements p ON p.blob_id = b.id "
                "JOIN storage_locations l ON l.id = p.location_id WHERE b.digest = ANY($1::text[])", digests)
        finally:
            await conn.close()
        found: dict[str, set[str]] = {d: set() for d in digests}
        for row in rows:
            found[row["digest"]].add(row["name"])
        return found

    async def stored(self, region: Region, digest: str) -> Stored:
        """Read the blob's bytes from the region's own S3 bucket and hash them (streamed)."""
        async with s3_client(region.storage.url) as s3:
            return await self._stored(s3, region, digest)

    @staticmethod
    async def _stored(s3, region: Region, digest: str) -> Stored:
        try:
            obj = await s3.get_object(Bucket=region.bucket, Key=region.object_key(digest))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return Stored(False)
            raise
        hasher = hashlib.sha256()
        size = 0
        body = obj["Body"]
        try:
            while block := await body.read(1 << 20):
                hasher.update(block)
                size += len(block)
        finally:
            body.close()
        return Stored(True, size, "sha256:" + hasher.hexdigest())

    async def multipart_uploads(self, region: Region, key_prefix: str | None = None) -> list[dict]:
        """Unfinished S3 multipart uploads in the region's bucket (interrupted copies or uploads) whose
        key starts with `key_prefix` (default: anything under the location's storage path)."""
        prefix = key_prefix if key_prefix is not None else STORAGE_PATH.strip("/") + "/"
        async with s3_client(region.storage.url) as s3:
            found = await s3.list_multipart_uploads(Bucket=region.bucket, Prefix=prefix)
            uploads = found.get("Uploads", [])
            unfinished = []
            for upload in uploads:
                try:
                    parts = await s3.list_parts(Bucket=region.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                except s3.exceptions.NoSuchUpload:  # completed or aborted since it was listed: not unfinished
                    continue
                upload["PartCount"] = len(parts.get("Parts", []))
                unfinished.append(upload)
        return unfinished

    async def missing(self, blobs: dict[str, int]) -> list[str]:
        """Placements the database still lacks for `blobs` (digest -> size) in some location."""
        placed = await self.placements(list(blobs))
        return [f"{digest[:19]} not placed in {location}" for digest in blobs for location in self.locations
                if location not in placed[digest]]

    async def verify_bytes(self, blobs: dict[str, int]) -> None:
        """Read every blob back from every location's own storage and hash it. A placement whose bytes
        are absent or different is corruption: it fails at once (waiting would never heal it)."""
        gate = asyncio.Semaphore(4)
        async with contextlib.AsyncExitStack() as stack:
            clients = {name: await stack.enter_async_context(s3_client(region.storage.url))
                       for name, region in self.regions.items()}

            async def one(digest: str, size: int, location: str) -> str | None:
                async with gate:
                    stored = await self._stored(clients[location], self.regions[location], digest)
                if not stored.present or stored.size != size or stored.digest != digest:
                    return f"CORRUPT: {digest} is placed in {location} but its storage holds {stored} (expected {size} bytes)"
                return None

            found = await asyncio.gather(*(one(d, size, loc) for d, size in blobs.items() for loc in self.locations))
        corrupt = [problem for problem in found if problem]
        assert not corrupt, "\n".join(corrupt)

    async def wait_converged(self, blobs: dict[str, int], bound: float, what: str, since: float | None = None) -> float:
        """Wait until every blob is placed in every location (the database), then check each copy's
        bytes in each location's own storage. `since` (time.monotonic(); default now) is when the
        fault was lifted. Returns the seconds from then until the placements were complete; fails with
        what is still missing if that takes longer than `bound`, or if any copy is wrong."""
        started = time.monotonic() if since is None else since
        last: list[str] = []

        async def converged():
            nonlocal last
            try:
                last = await self.missing(blobs)
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                last = [f"could not check: {type(exc).__name__}: {exc}"]
            return not last

        async def explain():
            shown = last[:10] + ([f"... and {len(last) - 10} more"] if len(last) > 10 else [])
            return f"{len(last)} placement(s) missing of {len(blobs) * len(self.locations)}: " + "; ".join(shown)

        await wait_until(converged, bound, f"{what}: convergence of {len(blobs)} blob(s) in {', '.join(self.locations)}",
                         interval=0.5, explain=explain, started=started)
        seconds = time.monotonic() - started
        await self.verify_bytes(blobs)
        return seconds
