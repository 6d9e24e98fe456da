from __future__ import annotations

import asyncpg


async def _lock(conn: asyncpg.Connection, repository_id: int, name: str) -> None:
    # Serialises moves of one tag so exactly one live row exists and history stays linear.
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", repository_id, name)


async def set_tag(conn: asyncpg.Connection, repository_id: int, name: str, manifest_id: int) -> bool:
    """Point a tag at a manifest (inside the caller's transaction); returns whether it changed."""
    await _lock(conn, repository_id, name)
    current = await conn.fetchval(
        "SELECT manifest_id FROM tags WHERE repository_id = $1 AND name = $2 AND lifetime_end IS NULL",
        repository_id,
        name,
    )
    if current == manifest_id:
        return False
    if current is not None:
        await conn.execute(
            "UPDATE tags SET lifetime_end = clock_timestamp() "
            "WHERE repository_id = $1 AND name = $2 AND lifetime_end IS NULL",
            repository_id,
            name,
        )
    await conn.execute(
        "INSERT INTO tags (repository_id, name, manifest_id) VALUES ($1, $2, $3)",
        repository_id,
        name,
        manifest_id,
    )
    return True


async def end_tag(conn: asyncpg.Connection, repository_id: int, name: str) -> bool:
    await _lock(conn, repository_id, name)
    status = await conn.execute(
        "UPDATE tags SET lifetime_end = clock_timestamp() "
        "WHERE repository_id = $1 AND name = $2 AND lifetime_end IS NULL",
        repository_id,
        name,
    )
    return status != "UPDATE 0"


async def end_tags_of_manifest(conn: asyncpg.Connection, manifest_id: int) -> list[str]:
    rows = await conn.fetch(
        "UPDATE tags SET lifetime_end = clock_timestamp() WHERE manifest_id = $1 AND lifetime_end IS NULL "
        "RETURNING name",
        manifest_id,
    )
    return [r["name"] for r in rows]


async def list_live(conn, repository_id: int, last: str | None, limit: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT name FROM tags WHERE repository_id = $1 AND lifetime_end IS NULL AND name > $2 "
        "ORDER BY name LIMIT $3",
        repository_id,
        last or "",
        limit,
    )
    return [r["name"] for r in rows]
