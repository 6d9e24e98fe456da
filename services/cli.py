"""The `meridian` command: `up` (the embedded default), one service alone, and operator tools."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from shared.config import Config, ConfigError, load_config, parse_config, read_document
from shared.embedded import EmbeddedProcess, port_open
from shared.logging import configure_logging
from shared.tasks import read_outcome
from shared.tls import server_context

DEFAULT_DATA = Path(".meridian")


def _fail(message: str) -> NoReturn:
    print(f"meridian: {message}", file=sys.stderr)
    raise SystemExit(2)


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(str(exc))


def _prepare_workers(workers: int, metrics_dir: Path) -> None:
    """Before prometheus_client is imported: let every worker's metrics land in one folder."""
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


def _die_with_parent() -> None:
    # Linux: a worker gets SIGTERM when the process that started it goes away, even on SIGKILL.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def _log_json(args: argparse.Namespace) -> bool | None:
    """--json or --pretty force the log format; without either, JSON unless stderr is a terminal."""
    if getattr(args, "json", False):
        return True
    if getattr(args, "pretty", False):
        return False
    return None


# Gateway workers open the shared port together. Each worker starts (database, bus, storage), says so
# on a pipe and waits; the first process, once every worker has said so, tells them all to listen and
# listens itself. So when the registry first answers, every worker takes connections: clients that open
# keep-alive connections at once (load balancers, benchmarks) would otherwise all stay on whichever
# process listened first.
WORKER_HANDSHAKE_ENV = "MERIDIAN_WORKER_HANDSHAKE"  # "<fd to say started on>,<fd to wait for go on>"
WORKER_START_TIMEOUT_SEC = 60.0


@dataclass
class Worker:
    process: subprocess.Popen
    started: int  # read end: one byte once the worker has started, EOF if it exited
    go: int  # write end: one byte lets it listen


def _spawn_workers(count: int, config_path: Path, listen: str, log_json: bool | None) -> list[Worker]:
    command = [sys.executable, "-m", "services.cli", "gateway", "--config", str(config_path), "--listen", listen, "--reuse-port"]
    if log_json is not None:
        command.append("--json" if log_json else "--pretty")
    workers = []
    for _ in range(count):
        started_read, started_write = os.pipe()
        go_read, go_write = os.pipe()
        env = {**os.environ, WORKER_HANDSHAKE_ENV: f"{started_write},{go_read}"}
        process = subprocess.Popen(command, preexec_fn=_die_with_parent, env=env, pass_fds=(started_write, go_read))
        os.close(started_write)
        os.close(go_read)
        workers.append(Worker(process, started_read, go_write))
    return workers


async def _start_workers_listening(workers: list[Worker], timeout: float = WORKER_START_TIMEOUT_SEC) -> None:
    """Wait until every worker has started (or exited, or the timeout passed), then let them all listen."""

    async def started(worker: Worker) -> None:
        await asyncio.to_thread(os.read, worker.started, 1)  # a byte, or b"" when the worker exited

    waits = [asyncio.ensure_future(started(worker)) for worker in workers]
    if waits:
        _, late = await asyncio.wait(waits, timeout=timeout)
        if late:
            print(f"meridian: {len(late)} worker(s) not started after {timeout:.0f} s; serving without waiting for them",
                  file=sys.stderr, flush=True)
    for worker, wait in zip(workers, waits, strict=True):
        with contextlib.suppress(OSError):  # a worker that exited has closed its end
            os.write(worker.go, b"1")
        os.close(worker.go)
        if wait.done():  # a late worker's reader still waits on its pipe; that end closes with the process
            os.close(worker.started)


async def _worker_handshake() -> None:
    """In a worker started by _spawn_workers: say it has started, then wait for the word to listen."""
    handshake = os.environ.pop(WORKER_HANDSHAKE_ENV, None)
    if not handshake:
        return
    started_fd, go_fd = (int(fd) for fd in handshake.split(","))
    os.write(started_fd, b"1")
    os.close(started_fd)
    await asyncio.to_thread(os.read, go_fd, 1)
    os.close(go_fd)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Set by _cancelled_by_signal: a signal that came while the registry started, seen by _until_signal.
_stop_requested: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar("stop_requested", default=None)


async def _until_signal() -> None:
    requested = _stop_requested.get()
    if requested is not None:  # under _cancelled_by_signal: its handlers stay (a third signal still cuts a stop short)
        await requested.wait()
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _cancelled_by_signal(work: Coroutine[Any, Any, None]) -> None:
    """Run `work`; the first SIGINT or SIGTERM cancels it, so it stops at an await and its finally
    blocks run whole; a second signal does not cut that stop short, a third does; the same once the
    registry listens (_until_signal waits for the first). Before, the signal raised
    KeyboardInterrupt wherever the loop happened to be (inside the collector's transaction, the bus's
    flusher), the stop that followed broke on that half-done state, and workers outlived the embedded
    PostgreSQL. The cancellation alone is not enough: startup code may swallow it (asyncio.wait_for
    does on Python 3.11 when what it waits for ends at the same moment), so _until_signal also finds
    the stop already requested and returns at once."""
    loop = asyncio.get_running_loop()
    requested = asyncio.Event()
    _stop_requested.set(requested)  # before the task is made: it runs in a copy of this context
    task = asyncio.ensure_future(work)
    # _fail's SystemExit leaves the loop from inside the task, before the wait below returns: mark it
    # retrieved, or asyncio adds a "Task exception was never retrieved" traceback under the message.
    task.add_done_callback(read_outcome)
    received = 0

    def stop() -> None:
        nonlocal received
        received += 1
        if received == 1:
            requested.set()
            task.cancel()
        elif received == 2:
            print("meridian: stopping; a third Ctrl-C stops at once, without waiting for the stop to finish",
                  file=sys.stderr, flush=True)
        else:  # a stop that hangs: cut it short (the embedded servers are still stopped after this)
            task.cancel()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop)
    await asyncio.wait([task])
    if not task.cancelled():
        task.result()  # what went wrong, if anything did


async def _serve(apps: list[tuple[Any, str]], *, reuse_port: bool = False, ssl_context=None,
                 workers: list[Worker] | None = None, on_listening: Callable[[], None] | None = None) -> None:
    """Start the apps, then listen: a worker once the first process says so, the first process once its
    `workers` have started. `on_listening` runs once every app listens."""
    from aiohttp import web

    runners = []
    try:
        for app, _ in apps:
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=10)
            await runner.setup()
            runners.append(runner)
        await _worker_handshake()
        await _start_workers_listening(workers or [])
        for runner, (_, listen) in zip(runners, apps, strict=True):
            host, _, port = listen.rpartition(":")
            await web.TCPSite(runner, host or "0.0.0.0", int(port), backlog=1024, reuse_port=reuse_port,
                              ssl_context=ssl_context).start()
        if on_listening is not None:
            on_listening()
        await _until_signal()
    finally:
        for runner in runners:
            await runner.cleanup()


async def _prepare_database(config: Config) -> None:
    from shared.db import ensure_database, migrate

    await ensure_database(config.db_uri)
    await migrate(config.db_uri)


async def _check_migrated(config: Config) -> None:
    from shared.db import pending_migrations

    missing = await pending_migrations(config.db_uri)
    if missing:
        _fail(f"database {config.db_uri.rsplit('/', 1)[-1]} lacks migrations {', '.join(missing)}: run `meridian migrate --config ...`")


def _read_config_document(path: str | None) -> tuple[dict[str, Any], str, dict]:
    """(document, source name, key lines) of --config (read as `config validate` reads it, so a YAML
    error names file and line), or an empty document for the embedded default."""
    if not path:
        return {}, "embedded default", {}
    try:
        document = read_document(path)
    except ConfigError as exc:
        _fail(str(exc))
    if document.data is None:
        return {}, document.source, {}
    if not isinstance(document.data, dict):
        _fail(f"{path}: expected a mapping of keys to values, got {type(document.data).__name__}")
    return dict(document.data), document.source, document.lines


def _holds_files(folder: Path) -> bool:
    return folder.is_dir() and any(path.is_file() for path in folder.rglob("*"))


def _check_data_layout(data: Path, regions: list[str] | None) -> None:
    """Refuse to switch a --data folder between one region and --regions (or to drop a region): the
    images pushed before live in the other layout's storage folders and would answer 404."""
    earlier = sorted(p.name.removeprefix("storage-") for p in data.glob("storage-*") if _holds_files(p))
    if regions is None:
        if earlier:
            names = ",".join(earlier)
            _fail(f"{data} holds a registry run with --regions {names}; its images are in "
                  f"{', '.join(str(data / f'storage-{r}') for r in earlier)}. Run `meridian up --regions {names} "
                  f"--data {data}` to use it, or give one region its own folder: `meridian up --data {data}-single`")
        return
    if _holds_files(data / "storage"):
        _fail(f"{data} holds a one-region registry (its images are in {data / 'storage'}) and --regions keeps each "
              f"region's images elsewhere, so they would answer 404. Run `meridian up --data {data}` to use it, or "
              f"give the regions their own folder: `meridian up --regions {','.join(regions)} --data {data}-regions`")
    dropped = [r for r in earlier if r not in regions]
    if dropped:
        _fail(f"{data} was run with region(s) {', '.join(dropped)}, whose storage holds images; keep them: "
              f"`meridian up --regions {','.join(regions + dropped)} --data {data}`, or use another --data folder")


def _running_nats(data: Path) -> str | None:
    """The NATS URL of a `meridian up` running on this data folder, if one is."""
    try:
        url = (data / "nats" / "url").read_text().strip()
    except OSError:
        return None
    host, _, port = url.removeprefix("nats://").rpartition(":")
    return url if port.isdigit() and port_open(host or "127.0.0.1", int(port)) else None


def _start_embedded_nats(data: Path, started: list[Any]) -> str:
    from shared.embedded import start_nats

    nats = start_nats(data / "nats")
    started.append(nats)
    (data / "nats" / "url").write_text(nats.url)
    return nats.url


def _stop_embedded(started: list[Any], data: Path) -> None:
    for server in reversed(started):
        server.stop()
    if any(isinstance(server, EmbeddedProcess) for server in started):  # our NATS: no longer running
        (data / "nats" / "url").unlink(missing_ok=True)


def reachable_address(listen: str) -> str:
    """host:port at which a client on this machine reaches a server listening on `listen` (host:port):
    that address, or loopback for a wildcard ("0.0.0.0", "::", none). Never "localhost": it may
    resolve to ::1 only while `up` listens on 127.0.0.1 (docs/decisions.md, "`up` names the address
    it listens on")."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":  # asyncio binds "::" to IPv6 only
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def default_addresses(doc: dict[str, Any], host: str, port: int) -> None:
    """`up`'s MERIDIAN_LISTEN (--host:--port) and SERVER_HOSTNAME (which the start-up hint and the /v2
    token realm name) unless the configuration sets them: the host name is the address listened on."""
    listen = doc.setdefault("MERIDIAN_LISTEN", f"{host}:{port}")
    doc.setdefault("SERVER_HOSTNAME", reachable_address(str(listen)))


# Printed at start whenever `up` runs with open access (one region or several).
OPEN_ACCESS_NOTICE = ("  open access: anyone may push and pull without signing in (the development default; "
                      "`meridian up --config config.yaml` turns it off)")


def cmd_up(args: argparse.Namespace) -> None:
    from shared.embedded import EmbeddedPostgres

    data = Path(args.data).resolve()
    data.mkdir(parents=True, exist_ok=True)
    doc, source, lines = _read_config_document(args.config)
    regions = [r.strip() for r in args.regions.split(",") if r.strip()] if args.regions else None
    if "DISTRIBUTED_STORAGE_CONFIG" not in doc or regions:
        _check_data_layout(data, regions)
    if "NATS_URL" not in doc and _running_nats(data):
        _fail(f"another `meridian up` is running on {data}; stop it first, or use another --data folder")
    started: list[Any] = []
    # While the embedded servers start, SIGTERM stops `up` as Ctrl-C does: what has started is stopped,
    # not left running by the default action (which killed `up` outright). From then on
    # _cancelled_by_signal and _until_signal take both signals.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if "DB_URI" not in doc:
            postgres = EmbeddedPostgres(data / "postgres")
            started.append(postgres)
            doc["DB_URI"] = postgres.dsn("meridian")
        if "NATS_URL" not in doc:
            doc["NATS_URL"] = _start_embedded_nats(data, started)
        doc.setdefault("DISTRIBUTED_STORAGE_CONFIG", {"local": ["LocalStorage", {"storage_path": str(data / "storage")}]})
        default_addresses(doc, args.host, args.port)
        if not args.regions:
            doc.setdefault("MERIDIAN_NOTIFIER_ENABLED", True)  # up runs one (with --regions: in the first region)
        if not args.config:
            doc.setdefault("MERIDIAN_INSECURE_OPEN_ACCESS", True)
        if regions is not None:
            configure_logging(service="meridian", region=",".join(regions), json=_log_json(args))
            asyncio.run(_cancelled_by_signal(_run_up_regions(doc, args, data, regions)))
        else:
            try:
                config = parse_config(doc, source, lines=lines)
            except ConfigError as exc:
                _fail(str(exc))
            configure_logging(service="meridian", region=config.meridian_region, json=_log_json(args))
            _prepare_workers(args.workers, data / "metrics")
            generated = data / "config.generated.yaml"
            generated.write_text(yaml.safe_dump(doc, sort_keys=False))
            asyncio.run(_cancelled_by_signal(_run_up(config, args, generated)))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while the embedded servers started
        pass
    finally:
        for sig in STOP_SIGNALS:  # stopping: a second Ctrl-C waits for the embedded servers to stop
            signal.signal(sig, signal.SIG_IGN)
        _stop_embedded(started, data)
    print("Meridian stopped.", flush=True)


async def _run_up(config: Config, args: argparse.Namespace, config_path: Path) -> None:
    from services.gateway.app import create_app

    await _prepare_database(config)
    workers = _spawn_workers(args.workers - 1, config_path, config.meridian_listen, _log_json(args))

    def announce() -> None:  # only once it answers: a newcomer tries the address at once
        print(f"Meridian registry listening on http://{config.meridian_listen} (region {config.meridian_region}, "
              f"{args.workers} worker(s))", flush=True)
        if config.meridian_insecure_open_access:
            print(OPEN_ACCESS_NOTICE, flush=True)
        print(f"  try: skopeo copy --dest-tls-verify=false oci:./my-layout:latest docker://{config.server_hostname}/acme/hello:latest "
              "(README.md, Your first hour, makes ./my-layout)", flush=True)

    from services.gc.app import GcService

    notifier = None
    gc = GcService(config, config_dir=config_path.parent)
    try:
        notifier = await _start_notifier(config)
        await gc.start()  # one collector beside the gateway(s); KV locks would keep extra ones apart
        await _serve([(create_app(config), config.meridian_listen)], reuse_port=args.workers > 1, workers=workers,
                     on_listening=announce)
    finally:
        _stop(workers)  # first: nothing a stop below may raise leaves them running after the database stops
        await gc.stop()
        if notifier is not None:
            await notifier.stop()


async def _start_notifier(config: Config):
    """The notifier beside the gateway when this region runs one (MERIDIAN_NOTIFIER_ENABLED)."""
    if not config.meridian_notifier_enabled:
        return None
    from services.notifier.app import Notifier

    notifier = Notifier(config)
    try:
        await notifier.start()
    except BaseException:  # a stop (or a failure) half-way: close what it had opened
        with contextlib.suppress(Exception):
            await notifier.stop()
        raise
    return notifier


async def _in_region(region: str, work):
    """Run `work` in a task whose log context names `region`: what it starts (servers, consumers)
    inherits the context, so their log lines say which region they belong to."""
    import structlog

    async def bound():
        structlog.contextvars.bind_contextvars(region=region)
        return await work

    return await asyncio.create_task(bound())


async def _run_up_regions(doc: dict[str, Any], args: argparse.Namespace, data: Path, regions: list[str]) -> None:
    """Several regions in one process: a gateway per region on consecutive ports, a location per
    region (local folders), a blobstore and a replicator per region, replicating to every region."""
    from services.region import region_docs, start_region
    from shared.embedded import free_ports

    if len(set(regions)) != len(regions) or not all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", r) for r in regions):
        _fail(f"--regions {args.regions!r}: expected distinct names of lowercase letters, digits and '-', e.g. us,eu")
    if args.workers != 1:
        _fail("--workers is for one region; with --regions each region runs one gateway process")
    doc.pop("DISTRIBUTED_STORAGE_CONFIG", None)
    doc.pop("MERIDIAN_LISTEN", None)
    doc.setdefault("MERIDIAN_SERVICE_SECRET", os.urandom(24).hex())
    storage = {r: ["LocalStorage", {"storage_path": str(data / f"storage-{r}")}] for r in regions}
    gateway_ports = {args.port + index for index in range(len(regions))}
    blobstores = {r: f"127.0.0.1:{p}" for r, p in zip(regions, free_ports(len(regions), exclude=gateway_ports), strict=True)}
    docs = region_docs(doc, regions, {r: f"http://{listen}" for r, listen in blobstores.items()}, storage)
    docs[regions[0]].setdefault("MERIDIAN_NOTIFIER_ENABLED", True)  # one notifier serves every region
    try:
        first = parse_config(docs[regions[0]], args.config or "embedded default")
    except ConfigError as exc:
        _fail(str(exc))
    await _prepare_database(first)
    for index, region in enumerate(regions):
        docs[region]["SERVER_HOSTNAME"] = reachable_address(f"{args.host}:{args.port + index}")
    started = []
    notifiers = []
    try:
        # The notifier first: once a gateway answers, everything of `up` is running.
        notifiers = [n for n in [await _start_notifier(parse_config(docs[region])) for region in regions] if n is not None]
        for index, region in enumerate(regions):
            started.append(await _in_region(region, start_region(
                docs[region], gateway_listen=f"{args.host}:{args.port + index}", blobstore_listen=blobstores[region])))
            print(f"region {region}: registry on http://{args.host}:{args.port + index}, location {region} "
                  f"({data / f'storage-{region}'}), blobstore on http://{blobstores[region]}", flush=True)
        print("  a push to one region appears in the others once replicated; the "
              "Meridian-Storage-Location response header says which location served a blob", flush=True)
        if first.meridian_insecure_open_access:
            print(OPEN_ACCESS_NOTICE, flush=True)
        from services.gc.app import GcService

        gc = GcService(parse_config(docs[regions[0]]))  # gc may run anywhere; one is enough
        try:
            await _in_region(regions[0], gc.start())
            await _until_signal()
        finally:
            await gc.stop()
    finally:
        for notifier in notifiers:
            await notifier.stop()
        for region in reversed(started):
            await region.stop()


def _stop(workers: list[Worker]) -> None:
    for worker in workers:
        worker.process.terminate()
    for worker in workers:
        try:
            worker.process.wait(15)
        except subprocess.TimeoutExpired:
            worker.process.kill()


def cmd_gateway(args: argparse.Namespace) -> None:
    from services.gateway.app import create_app

    config = _load(args.config)
    configure_logging(service="gateway", region=config.meridian_region, json=_log_json(args))
    listen = args.listen or config.meridian_listen
    _prepare_workers(args.workers, Path(tempfile.gettempdir()) / f"meridian-metrics-{os.getpid()}")

    config_dir = Path(args.config).resolve().parent

    async def run() -> None:
        await _check_migrated(config)
        workers = _spawn_workers(args.workers - 1, Path(args.config), listen, _log_json(args))
        try:
            await _serve([(create_app(config, config_dir=config_dir), listen)],
                         reuse_port=args.reuse_port or args.workers > 1, ssl_context=server_context(config_dir),
                         workers=workers)
        finally:
            _stop(workers)

    asyncio.run(run())


def cmd_blobstore(args: argparse.Namespace) -> None:
    from services.blobstore.app import create_app

    config = _load(args.config)
    configure_logging(service="blobstore", region=config.meridian_region, json=_log_json(args))
    config_dir = Path(args.config).resolve().parent
    listen = args.listen or config.meridian_blobstore_listen
    asyncio.run(_serve([(create_app(config, config_dir=config_dir), listen)], ssl_context=server_context(config_dir)))


def cmd_replicator(args: argparse.Namespace) -> None:
    from services.replicator.app import Replicator

    config = _load(args.config)
    configure_logging(service="replicator", region=config.meridian_region, json=_log_json(args))
    if not config.feature_storage_replication:
        _fail("FEATURE_STORAGE_REPLICATION is false: there is nothing to replicate")

    async def run() -> None:
        from aiohttp import web

        from shared.metrics import observe_pool, render

        await _check_migrated(config)
        replicator = Replicator(config, config_dir=Path(args.config).resolve().parent)
        await replicator.start()

        async def metrics(request):
            observe_pool("replicator", replicator.pool)
            body, content_type = render()
            return web.Response(body=body, headers={"Content-Type": content_type})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, _, port = (args.listen or config.meridian_replicator_listen).rpartition(":")
        await web.TCPSite(runner, host or "0.0.0.0", int(port)).start()
        try:
            await _until_signal()
        finally:
            await runner.cleanup()
            await replicator.stop()

    asyncio.run(run())


def cmd_notifier(args: argparse.Namespace) -> None:
    from services.notifier.app import Notifier, create_app

    config = _load(args.config)
    configure_logging(service="notifier", region=config.meridian_region, json=_log_json(args))

    async def run() -> None:
        await _check_migrated(config)
        await _serve([(create_app(Notifier(config, config_dir=Path(args.config).resolve().parent)),
                       args.listen or config.meridian_notifier_listen)])

    asyncio.run(run())


def cmd_quota_check(args: argparse.Namespace) -> None:
    """Recompute every namespace's and repository's usage from the tags and manifests and compare it
    with what the changes kept; exit 1 on any difference."""
    from shared.registry import quota

    config = _load(args.config)
    report = asyncio.run(_with_db(config, quota.check))
    for problem in report.problems:
        print(f"meridian quota check: {problem}", file=sys.stderr)
    if report.problems:
        print(f"meridian quota check: {len(report.problems)} difference(s) (the first 50 of each kind shown)", file=sys.stderr)
        raise SystemExit(1)
    print(f"usage is exact: {report.namespaces} namespace(s) recomputed from scratch, no difference")


def cmd_health(args: argparse.Namespace) -> None:
    from services.health.app import create_app

    config = _load(args.config)
    configure_logging(service="health", region=config.meridian_region, json=_log_json(args))
    config_dir = Path(args.config).resolve().parent
    asyncio.run(_serve([(create_app(config, config_dir=config_dir), args.listen or config.meridian_health_listen)],
                       ssl_context=server_context(config_dir)))


def cmd_gc(args: argparse.Namespace) -> None:
    import json as json_module

    from services.gc.app import GcService, create_app

    if args.gc_command != "run":  # the service
        if not args.config:
            _fail("the gc service needs --config config.yaml (`meridian up` runs one itself; "
                  "`meridian gc run` makes one pass)")
        config = _load(args.config)
        configure_logging(service="gc", region=config.meridian_region, json=_log_json(args))
        asyncio.run(_serve([(create_app(GcService(config, config_dir=Path(args.config).resolve().parent)),
                             args.listen or config.meridian_gc_listen)]))
        return
    config = _tool_config(args, bus=True, storage=True)
    configure_logging(service="gc", region=config.meridian_region, json=_log_json(args))
    config_dir = Path(args.config).resolve().parent if args.config else Path(args.data).resolve()

    async def once() -> dict:
        await _check_migrated(config)
        service = GcService(config, config_dir=config_dir)
        try:
            collector = await service.open()
            report = await collector.run_once(dry_run=args.dry_run)
        finally:
            await service.stop()
        return {**report.summary(), "manifest_list": report.manifests, "blob_list": report.blobs}

    print(json_module.dumps(asyncio.run(once()), indent=2))


def cmd_migrate(args: argparse.Namespace) -> None:
    config = _tool_config(args)
    configure_logging(service="migrate", region=config.meridian_region)
    from shared.db import ensure_database, migrate

    async def run() -> list[str]:
        await ensure_database(config.db_uri)
        return await migrate(config.db_uri)

    applied = asyncio.run(run())
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "; the database is up to date"))


def cmd_config_validate(args: argparse.Namespace) -> None:
    """Every problem of the file at once, one line each with file and line; warnings (unknown keys)
    do not fail. Exit 2 when there is an error."""
    from shared.config import check_file, scrub

    config, problems = check_file(args.path)
    errors = [p for p in problems if not p.warning]
    for problem in problems:
        print(problem.render(args.path), file=sys.stderr)
    if errors:
        print(f"meridian: {args.path}: {len(errors)} error(s); nothing was started", file=sys.stderr)
        raise SystemExit(2)
    assert config is not None  # no error: check_file gave the Config
    opened = config.directly_opened_locations()
    remote = [name for name in config.distributed_storage_config if name not in opened]
    print(scrub(f"{args.path}: valid ({len(config.storage_locations())} storage location(s), preference "
                f"{' '.join(config.preferred_locations())}, region {config.meridian_region}"
                + (f"; reached through their blobstore: {' '.join(remote)}" if remote else "")
                + (f"; {len(problems)} warning(s)" if problems else "") + ")"))


def cmd_storage_init(args: argparse.Namespace) -> None:
    """Create the bucket (container, folder) of each location this region opens itself when missing."""
    from shared.config import scrub
    from shared.storage import open_driver

    config = _load(args.config)
    opened = config.directly_opened_locations()
    names = args.location or opened
    unknown = [name for name in names if name not in config.distributed_storage_config]
    if unknown:
        _fail(f"--location {' '.join(unknown)}: expected one of {', '.join(config.distributed_storage_config)}")
    remote = [name for name in names if name not in opened]
    if remote:
        _fail(f"{' '.join(remote)}: reached through its blobstore (MERIDIAN_BLOBSTORE_URLS); run `meridian storage "
              "init` in the region that owns it")
    locations = config.storage_locations()

    async def run() -> int:
        failed = 0
        for name in names:
            driver = open_driver(locations[name])
            try:
                created = await driver.prepare()
                print(f"{name} ({locations[name].driver}): {'created' if created else 'exists'}")
            except Exception as exc:  # noqa: BLE001 - reported per location, the others still run
                failed += 1
                print(scrub(f"meridian: {name} ({locations[name].driver}): {type(exc).__name__}: {exc}"), file=sys.stderr)
            finally:
                await driver.close()
        return failed

    if asyncio.run(run()):
        raise SystemExit(1)


def _run_tool(coro) -> dict:
    from services.replicator.tools import ToolRefused

    try:
        return asyncio.run(coro)
    except ToolRefused as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(1) from None


def cmd_backfill(args: argparse.Namespace) -> None:
    from services.replicator.tools import backfill

    _run_tool(backfill(_load(args.config), dry_run=args.dry_run, namespace=args.namespace))


def cmd_remove_location(args: argparse.Namespace) -> None:
    from services.replicator.tools import remove_location

    def confirm(question: str) -> bool:
        if args.yes:
            return True
        try:
            return input(question).strip().lower() in ("y", "yes")
        except EOFError:
            return False

    _run_tool(remove_location(_load(args.config), args.name, confirm=confirm))


def cmd_verify_placements(args: argparse.Namespace) -> None:
    from services.replicator.tools import verify_placements

    _run_tool(verify_placements(_load(args.config), requeue=args.requeue, location=args.location))


def _tool_config(args: argparse.Namespace, *, bus: bool = False, storage: bool = False) -> Config:
    """The config of a command that reaches the database (and, with `bus`, NATS; with `storage`, the
    blobs). What the config lacks comes from `meridian up`'s embedded servers for --data (default
    .meridian): its PostgreSQL (joined when `up` runs, else started for this command and stopped
    after), the NATS of a running `up` (else one started for this command) and its storage folder."""
    import atexit

    from shared.embedded import EmbeddedPostgres

    doc, source, lines = _read_config_document(args.config)
    data = Path(args.data).resolve()
    started: list[Any] = []
    atexit.register(_stop_embedded, started, data)
    if "DB_URI" not in doc:
        print(f"meridian: using the embedded database of {data} (the one `meridian up --data {args.data}` uses); "
              "set DB_URI in the config for another", file=sys.stderr)
        data.mkdir(parents=True, exist_ok=True)
        postgres = EmbeddedPostgres(data / "postgres")
        started.append(postgres)
        doc["DB_URI"] = postgres.dsn("meridian")
    if bus and "NATS_URL" not in doc:
        doc["NATS_URL"] = _running_nats(data) or _start_embedded_nats(data, started)
    if storage and "DISTRIBUTED_STORAGE_CONFIG" not in doc:
        _check_data_layout(data, None)
        doc["DISTRIBUTED_STORAGE_CONFIG"] = {"local": ["LocalStorage", {"storage_path": str(data / "storage")}]}
    try:
        config = parse_config(doc, source, lines=lines)
    except ConfigError as exc:
        _fail(str(exc))
    if started:  # a database `up` never used for this folder yet: make it usable
        asyncio.run(_prepare_database(config))
    return config


async def _with_db(config: Config, work):
    import asyncpg

    conn = await asyncpg.connect(config.db_uri)
    try:
        return await work(conn)
    finally:
        await conn.close()


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        _fail("the passwords differ")
    return first


def cmd_user_create(args: argparse.Namespace) -> None:
    from shared.model import accounts

    config = _tool_config(args)
    problem = accounts.namespace_name_problem(args.username)
    if problem:
        _fail(problem)
    password = _password(args)
    problem = accounts.password_problem(password)
    if problem:
        _fail(problem)

    async def work(conn):
        async with conn.transaction():
            await accounts.create_user(conn, args.username, password, args.email)

    try:
        asyncio.run(_with_db(config, work))
    except accounts.NameTaken as exc:
        _fail(str(exc))
    superuser = " (a superuser: listed in SUPER_USERS)" if accounts.is_superuser(args.username, config.super_users) else ""
    print(f"created user {args.username}{superuser}")


def cmd_user_token(args: argparse.Namespace) -> None:
    from shared.model import accounts

    config = _tool_config(args)

    async def work(conn):
        user_id = await accounts.user_id_by_name(conn, args.username)
        if user_id is None:
            _fail(f"no user {args.username!r}")
        return (await accounts.create_api_token(conn, user_id, args.title))[1]

    print(asyncio.run(_with_db(config, work)))


def cmd_keys_generate(args: argparse.Namespace) -> None:
    from shared.servicekeys import SigningKey, write_key_files

    base = Path(args.name)
    base.parent.mkdir(parents=True, exist_ok=True)
    try:
        written = write_key_files(SigningKey.generate(), base)
    except FileExistsError:
        _fail(f"{base.with_suffix('.pem')} exists; choose another NAME or remove it")
    print("wrote " + ", ".join(str(p) for p in written))
    print(f"next: meridian keys add {base.with_suffix('.jwk')} --expiration DAYS --config config.yaml")


def cmd_keys_add(args: argparse.Namespace) -> None:
    import json as json_module

    from shared import servicekeys

    config = _tool_config(args)
    try:
        jwk = json_module.loads(Path(args.jwk).read_text())
        kid = servicekeys.thumbprint(jwk)
    except (OSError, ValueError, KeyError) as exc:
        _fail(f"{args.jwk} is not a public JWK written by `meridian keys generate`: {exc}")
    if jwk.get("kid", kid) != kid:
        _fail(f"{args.jwk}: its kid does not match its key")
    expires = servicekeys.expiry_in(args.expiration)

    async def work(conn):
        if await servicekeys.is_registered(conn, kid):
            _fail(f"key {kid} is already registered; use `meridian keys extend {kid}`")
        await servicekeys.register(conn, kid=kid, name=args.name or Path(args.jwk).stem, service=config.instance_service_key_service,
                                   jwk={**jwk, "kid": kid}, expires_at=expires, approval_type="cli", approved_by=_operator())

    asyncio.run(_with_db(config, work))
    until = expires.isoformat() if expires else "never"
    print(f"registered and approved key {kid} (expires {until})")


def _operator() -> str:
    return os.environ.get("USER", "cli")


def cmd_keys_list(args: argparse.Namespace) -> None:
    from shared import servicekeys

    for row in asyncio.run(_with_db(_tool_config(args), servicekeys.all_keys)):
        expires = row["expires_at"].isoformat() if row["expires_at"] else "never"
        print(f"{row['kid']}  {row['name']}  service={row['service']}  approved={row['approval_type'] or 'no'}  expires={expires}")


def _on_key(args: argparse.Namespace, change, done: str) -> None:
    """Run change(conn) -> whether the key existed; say `done` or that there is no such key."""
    if not asyncio.run(_with_db(_tool_config(args), change)):
        _fail(f"no key {args.kid}; `meridian keys list` shows them")
    print(done)


def cmd_keys_extend(args: argparse.Namespace) -> None:
    from shared import servicekeys

    _on_key(args, lambda conn: servicekeys.extend(conn, args.kid, args.expiration),
            f"key {args.kid} now expires " + (f"in {args.expiration} days" if args.expiration is not None else "never"))


def cmd_keys_approve(args: argparse.Namespace) -> None:
    from shared import servicekeys

    _on_key(args, lambda conn: servicekeys.approve(conn, args.kid, "cli", _operator()), f"approved key {args.kid}")


def cmd_keys_delete(args: argparse.Namespace) -> None:
    from shared import servicekeys

    _on_key(args, lambda conn: servicekeys.delete(conn, args.kid), f"deleted key {args.kid}; tokens it signed stop working within "
                                                                  "MERIDIAN_TOKEN_RECHECK_SEC (5 s by default)")


class _ShowDefaults(argparse.HelpFormatter):
    """Help that names each option's default, where it has one worth naming."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.option_strings and "%(default)" not in text and action.default not in (None, False, argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meridian", description="Meridian, a geo-replicated OCI registry",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The ./meridian script in the repository adds two commands:\n"
               "  ./meridian test [PYTEST ARGS]   run the test suite (installs what is missing; starts PostgreSQL,\n"
               "                                  NATS and SeaweedFS when they do not run)\n"
               "  ./meridian bench [ARGS]         Meridian and CNCF Distribution side by side (bench/README.md)\n"
               "Commands that reach the database (user, keys, migrate, gc run) use the embedded PostgreSQL of\n"
               "--data (default .meridian) when the config has no DB_URI, like `meridian up`.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def log_flags(parser: argparse.ArgumentParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--pretty", action="store_true", help="human-readable logs (the default on a terminal)")
        group.add_argument("--json", action="store_true", help="JSON logs, one event a line (the default otherwise)")

    def data_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--data", default=str(DEFAULT_DATA),
                            help="the folder of `meridian up`, whose embedded PostgreSQL is used when the config has "
                                 "no DB_URI (default: %(default)s)")

    up = sub.add_parser("up", help="run the registry on the embedded default (NATS, PostgreSQL, local storage)",
                        formatter_class=_ShowDefaults,
                        description="Run the whole registry in one process. Without --config: anonymous push and "
                                    "pull (open access, for development). Stop it with Ctrl-C.")
    up.add_argument("--config", help="config.yaml; keys it lacks (DB_URI, NATS_URL, storage) use embedded defaults, "
                                     "and open access is off unless it sets MERIDIAN_INSECURE_OPEN_ACCESS")
    up.add_argument("--data", default=str(DEFAULT_DATA), help="folder for embedded servers and storage")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on")
    up.add_argument("--port", type=int, default=8080, help="port of the registry (with --regions, of the first region)")
    up.add_argument("--workers", type=int, default=1, help="gateway processes sharing the port (SO_REUSEPORT)")
    up.add_argument("--regions", help="run several regions in one process, e.g. us,eu (gateways on --port, --port+1, "
                                      "...); a --data folder stays one-region or multi-region")
    log_flags(up)
    up.set_defaults(func=cmd_up)

    def service(name: str, func, text: str, listen: str, *, config_required: bool = True) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=text)
        parser.add_argument("--config", required=config_required,
                            help="config.yaml" if config_required else "config.yaml (the service needs one)")
        parser.add_argument("--listen", help=listen)
        log_flags(parser)
        parser.set_defaults(func=func)
        return parser

    gateway = service("gateway", cmd_gateway, "run the gateway service alone", "host:port (default MERIDIAN_LISTEN)")
    gateway.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    gateway.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    service("blobstore", cmd_blobstore, "run the blobstore of this region's location alone",
            "host:port (default MERIDIAN_BLOBSTORE_LISTEN)")
    service("replicator", cmd_replicator, "run this region's replicator alone",
            "host:port for /metrics (default MERIDIAN_REPLICATOR_LISTEN)")
    service("health", cmd_health, "run this region's health service alone (/health/*, /metrics)",
            "host:port (default MERIDIAN_HEALTH_LISTEN)")
    service("notifier", cmd_notifier, "run a notifier (webhook, Slack and e-mail notifications; any number, anywhere)",
            "host:port for /metrics (default MERIDIAN_NOTIFIER_LISTEN)")
    gc = service("gc", cmd_gc, "run the garbage collector service, or one pass with `gc run`",
                 "host:port for /metrics (default MERIDIAN_GC_LISTEN)", config_required=False)

    backfill = sub.add_parser("backfill-replication", help="queue every blob missing from a location it must reach")
    backfill.add_argument("--config", required=True)
    backfill.add_argument("--dry-run", action="store_true", help="list what would be queued; change nothing")
    backfill.add_argument("--namespace", help="only blobs of this namespace")
    backfill.set_defaults(func=cmd_backfill)

    remove = sub.add_parser("remove-location", help="forget a storage location (asks first)")
    remove.add_argument("name")
    remove.add_argument("--config", required=True)
    remove.add_argument("--yes", action="store_true", help="do not ask")
    remove.set_defaults(func=cmd_remove_location)

    verify = sub.add_parser("verify-placements", help="drop placements whose bytes are missing or short")
    verify.add_argument("--config", required=True)
    verify.add_argument("--requeue", action="store_true", help="queue replication for what was dropped")
    verify.add_argument("--location", help="only this location")
    verify.set_defaults(func=cmd_verify_placements)

    user = sub.add_parser("user", help="user accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser("create", help="create a user (superusers are listed in SUPER_USERS)")
    create.add_argument("username")
    create.add_argument("--email")
    create.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    create.add_argument("--config", help="config.yaml (default: the embedded default of --data)")
    data_option(create)
    create.set_defaults(func=cmd_user_create)
    token = user_sub.add_parser("token", help="print a new API bearer token for a user (for scripts)")
    token.add_argument("username")
    token.add_argument("--title", default="cli")
    token.add_argument("--config", help="config.yaml (default: the embedded default of --data)")
    data_option(token)
    token.set_defaults(func=cmd_user_token)

    keys = sub.add_parser("keys", help="service keys that sign registry tokens (read-only mode needs one)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    generate = keys_sub.add_parser("generate", help="write NAME.pem, NAME.jwk and NAME.kid")
    generate.add_argument("name")
    generate.set_defaults(func=cmd_keys_generate)
    add = keys_sub.add_parser("add", help="register and approve a public key (NAME.jwk)")
    add.add_argument("jwk")
    add.add_argument("--name", help="a label (default: the file name)")
    add.add_argument("--expiration", type=int, help="days until it expires (default: never)")
    add.add_argument("--config", help="config.yaml (default: the embedded default of --data)")
    data_option(add)
    add.set_defaults(func=cmd_keys_add)
    listing = keys_sub.add_parser("list", help="list keys")
    listing.add_argument("--config", help="config.yaml (default: the embedded default of --data)")
    data_option(listing)
    listing.set_defaults(func=cmd_keys_list)
    extend = keys_sub.add_parser("extend", help="set a key's expiry to DAYS from now")
    extend.add_argument("kid")
    extend.add_argument("--expiration", type=int, help="days from now (default: never)")
    extend.add_argument("--config", help="config.yaml (default: the embedded default of --data)")
    data_option(extend)
    extend.set_defaults(func=cmd_keys_extend)
    for name, func, text in (("approve", cmd_keys_approve, "approve a registered key"),
                             ("delete", cmd_keys_delete, "delete a key; tokens it signed stop working within seconds")):
        one = keys_sub.add_parser(name, help=text)
        one.add_argument("kid")
        one.add_argument("--config", help="config.yaml (default: the embedded default of --data)")
        data_option(one)
        one.set_defaults(func=func)

    gc_sub = gc.add_subparsers(dest="gc_command")
    gc_run = gc_sub.add_parser("run", help="one pass, then exit; prints what was (or would be) collected as JSON")
    gc_run.add_argument("--once", action="store_true", help=argparse.SUPPRESS)  # the only mode; kept for scripts
    gc_run.add_argument("--dry-run", action="store_true", help="report what would go; change nothing")
    gc_run.add_argument("--config", help="config.yaml (default: the embedded default of --data)")
    data_option(gc_run)
    log_flags(gc_run)
    gc_run.set_defaults(func=cmd_gc)

    quota_parser = sub.add_parser("quota", help="storage quota tools")
    quota_sub = quota_parser.add_subparsers(dest="quota_command", required=True)
    check = quota_sub.add_parser("check", help="recompute every namespace's usage from scratch and compare (exit 1 on a "
                                               "difference)")
    check.add_argument("--config", required=True)
    check.set_defaults(func=cmd_quota_check)

    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("--config", help="config.yaml (default: the embedded default of --data)")
    data_option(mig)
    mig.set_defaults(func=cmd_migrate)

    config = sub.add_parser("config", help="config tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    validate = config_sub.add_parser("validate", help="check a config.yaml: every problem at once, with file and line")
    validate.add_argument("path")
    validate.set_defaults(func=cmd_config_validate)

    storage = sub.add_parser("storage", help="storage tools")
    storage_sub = storage.add_subparsers(dest="storage_command", required=True)
    init = storage_sub.add_parser("init", help="create the buckets (containers, folders) of this region's locations "
                                              "when missing")
    init.add_argument("--config", required=True)
    init.add_argument("--location", action="append", help="only this location (repeatable; default: every location "
                                                          "this region opens itself)")
    init.set_defaults(func=cmd_storage_init)
    return parser


def main(argv: list[str] | None = None) -> None:
    from shared import eventloop

    args = build_parser().parse_args(argv)
    eventloop.install()
    args.func(args)


if __name__ == "__main__":
    main()
