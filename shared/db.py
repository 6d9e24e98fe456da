"""asyncpg pool and numbered SQL migrations (shared/migrations/NNNN_name.sql)."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shared.logging import get_logger

log = get_logger(__name__)
MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any number works as long as every process uses the same one: migrations run one at a time.
MIGRATION_LOCK = 0x4D455249


def migrations() -> list[tuple[int, str, str]]:
    folder = Path(__file__).parent / "migrations"
    found = []
    for entry in folder.iterdir():
        match = MIGRATION_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; returns the names applied."""
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            applied.append(name)
            log.info("migration applied", migration=name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        await conn.close()
    return applied


async def pending_migrations(dsn: str) -> list[str]:
    """Names of the migrations the database lacks (all of them for a database never migrated)."""
    conn = await asyncpg.connect(dsn)
    try:
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    except asyncpg.UndefinedTableError:
        applied = set()
    finally:
        await conn.close()
    return [name for version, name, _ in migrations() if version not in applied]


class NoResetConnection(asyncpg.Connection):
    """Skips asyncpg's reset query on every pool release (a round trip per query).

    Safe because Meridian keeps no session state on pooled connections: advisory locks are
    transaction-scoped, there is no LISTEN, no SET, no open cursor outside a transaction.
    """

    def get_reset_query(self) -> str:
        return ""


async def create_pool(dsn: str, size: int = 20, *, read_only: bool = False) -> asyncpg.Pool:
    settings = {"default_transaction_read_only": "on"} if read_only else None
    return await asyncpg.create_pool(
        dsn, min_size=min(2, size), max_size=size, command_timeout=60, connection_class=NoResetConnection,
        server_settings=settings,
    )


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def ensure_database(dsn: str) -> None:
    """Create the database named in the DSN when the server lacks it (the embedded default)."""
    name = urlsplit(dsn).path.lstrip("/") or "postgres"
    admin = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def close_pool(pool: asyncpg.Pool, timeout: float = 10.0) -> None:
    """Close gracefully, but never wait forever for a connection some stuck task still holds."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except (TimeoutError, Exception):
        pool.terminate()
