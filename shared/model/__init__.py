"""Plain-SQL data access, one module per entity. Functions take a `Db`: an asyncpg connection (pooled
or not) or the pool itself; those that must run inside the caller's transaction say so and take a
connection."""
from __future__ import annotations

from typing import Any, Protocol, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy


class Db(Protocol):
    """What a model function needs to run a query: asyncpg.Pool, asyncpg.Connection and a pooled
    connection all fit."""

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str: ...

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[asyncpg.Record]: ...

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> asyncpg.Record | None: ...

    async def fetchval(self, query: str, *args: Any, column: int = 0, timeout: float | None = None) -> Any: ...


# A connection, pooled or not (never the pool): what a function that runs in the caller's transaction takes.
Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy


async def fetch_id_retrying(conn: Db, sql: str, *args: Any) -> int:
    """Run an insert-or-select statement until it yields an id.

    `INSERT .. ON CONFLICT DO NOTHING RETURNING id UNION ALL SELECT id ..` yields nothing when a
    concurrent transaction inserted the same key: the statement waits for it, skips the insert, and its
    snapshot predates the other row. The next statement's snapshot sees it.
    """
    for _ in range(5):
        value = await conn.fetchval(sql, *args)
        if value is not None:
            return value
    raise RuntimeError("insert-or-select found no row after retries")


async def fetch_one(conn: Db, sql: str, *args: Any) -> asyncpg.Record:
    """The row of a statement that always yields exactly one (an aggregate, an upsert's RETURNING)."""
    row = await conn.fetchrow(sql, *args)
    if row is None:
        raise RuntimeError("a statement that always yields a row yielded none")
    return row
