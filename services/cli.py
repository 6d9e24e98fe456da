"""The `meridian` command: `up` (the embedded default), one service alone, and operator tools."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from shared.config import Config, ConfigError, load_config, parse_config
from shared.logging import configure_logging

DEFAULT_DATA = Path(".meridian")


def _fail(message: str) -> "NoReturn":  # noqa: F821
    print(f"meridian: {message}", file=sys.stderr)
    raise SystemExit(2)


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(str(exc))


async def _serve(apps: list[tuple[Any, str]]) -> None:
    from aiohttp import web

    runners = []
    for app, listen in apps:
        host, _, port = listen.rpartition(":")
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host or "0.0.0.0", int(port), backlog=1024).start()
        runners.append(runner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for runner in runners:
            await runner.cleanup()


async def _prepare_database(config: Config) -> None:
    from shared.db import ensure_database, migrate

    await ensure_database(config.db_uri)
    await migrate(config.db_uri)


async def _check_migrated(config: Config) -> None:
    import asyncpg

    from shared.db import migrations

    conn = await asyncpg.connect(config.db_uri)
    try:
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    except asyncpg.UndefinedTableError:
        applied = set()
    finally:
        await conn.close()
    missing = [name for version, name, _ in migrations() if version not in applied]
    if missing:
        _fail(f"database {config.db_uri.rsplit('/', 1)[-1]} lacks migrations {', '.join(missing)}: run `meridian migrate --config ...`")


def cmd_up(args: argparse.Namespace) -> None:
    from shared.embedded import EmbeddedPostgres, start_nats

    data = Path(args.data).resolve()
    data.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {}
    if args.config:
        doc = yaml.safe_load(Path(args.config).read_text()) or {}
    started: list[Any] = []
    try:
        if "DB_URI" not in doc:
            postgres = EmbeddedPostgres(data / "postgres")
            started.append(postgres)
            doc["DB_URI"] = postgres.dsn("meridian")
        if "NATS_URL" not in doc:
            nats = start_nats(data / "nats")
            started.append(nats)
            doc["NATS_URL"] = nats.url
        doc.setdefault("DISTRIBUTED_STORAGE_CONFIG", {"local": ["LocalStorage", {"storage_path": str(data / "storage")}]})
        doc.setdefault("SERVER_HOSTNAME", f"localhost:{args.port}")
        doc.setdefault("MERIDIAN_LISTEN", f"{args.host}:{args.port}")
        if not args.config:
            doc.setdefault("MERIDIAN_INSECURE_OPEN_ACCESS", True)
        try:
            config = parse_config(doc, args.config or "embedded default")
        except ConfigError as exc:
            _fail(str(exc))
        configure_logging(service="meridian", region=config.meridian_region, json=not args.pretty)
        asyncio.run(_run_up(config))
    finally:
        for server in reversed(started):
            server.stop()


async def _run_up(config: Config) -> None:
    from services.gateway.app import create_app

    await _prepare_database(config)
    print(f"Meridian registry listening on http://{config.meridian_listen} (region {config.meridian_region})", flush=True)
    if config.meridian_insecure_open_access:
        print("  open access: anyone may push and pull (development default)", flush=True)
    print(f"  try: skopeo copy --dest-tls-verify=false docker://docker.io/library/alpine docker://{config.server_hostname}/library/alpine", flush=True)
    await _serve([(create_app(config), config.meridian_listen)])


def cmd_gateway(args: argparse.Namespace) -> None:
    from services.gateway.app import create_app

    config = _load(args.config)
    configure_logging(service="gateway", region=config.meridian_region, json=not args.pretty)
    listen = args.listen or config.meridian_listen

    async def run() -> None:
        await _check_migrated(config)
        await _serve([(create_app(config), listen)])

    asyncio.run(run())


def cmd_migrate(args: argparse.Namespace) -> None:
    config = _load(args.config)
    configure_logging(service="migrate", region=config.meridian_region)
    from shared.db import ensure_database, migrate

    async def run() -> list[str]:
        await ensure_database(config.db_uri)
        return await migrate(config.db_uri)

    applied = asyncio.run(run())
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "; the database is up to date"))


def cmd_config_validate(args: argparse.Namespace) -> None:
    config = _load(args.path)
    print(f"{args.path}: valid ({len(config.storage_locations())} storage location(s), preference {' '.join(config.preferred_locations())})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meridian", description="Meridian, a geo-replicated OCI registry")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the registry on the embedded default (NATS, PostgreSQL, local storage)")
    up.add_argument("--config", help="config.yaml; keys it lacks (DB_URI, NATS_URL, storage) use embedded defaults")
    up.add_argument("--data", default=str(DEFAULT_DATA), help="folder for embedded servers and storage (default .meridian)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8080)
    up.add_argument("--pretty", action="store_true", help="human-readable logs instead of JSON")
    up.set_defaults(func=cmd_up)

    gateway = sub.add_parser("gateway", help="run the gateway service alone")
    gateway.add_argument("--config", required=True)
    gateway.add_argument("--listen", help="host:port (default MERIDIAN_LISTEN)")
    gateway.add_argument("--pretty", action="store_true")
    gateway.set_defaults(func=cmd_gateway)

    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("--config", required=True)
    mig.set_defaults(func=cmd_migrate)

    config = sub.add_parser("config", help="config tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    validate = config_sub.add_parser("validate", help="check a config.yaml and say what is wrong")
    validate.add_argument("path")
    validate.set_defaults(func=cmd_config_validate)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
