"""Plain-SQL data access, one module per entity. Functions take an asyncpg connection or pool."""
from __future__ import annotations


async def fetch_id_retrying(conn, sql: str, *args) -> int:
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
