"""Robot accounts `namespace+name`: rows in users with robot_namespace_id set. Creating one and
regenerating its token live in accounts (names are shared with users and organisations)."""
from __future__ import annotations

import asyncpg

from shared.model import Db

_COLUMNS = "id, username, description, created_at, last_accessed"


async def robot_in_namespace(conn: Db, namespace_id: int, full_name: str) -> asyncpg.Record | None:
    """An enabled robot of the namespace: id, username, description, created_at, last_accessed."""
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM users WHERE username = $1 AND robot_namespace_id = $2 AND enabled", full_name, namespace_id
    )


async def robots_in_namespace(conn: Db, namespace_id: int) -> list[asyncpg.Record]:
    """The namespace's enabled robots by name, with the columns of `robot_in_namespace`."""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM users WHERE robot_namespace_id = $1 AND enabled ORDER BY username", namespace_id
    )
