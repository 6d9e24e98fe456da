"""Tags are never updated in place: moving or deleting a tag ends its row (`lifetime_end`) and may
start a new one, which is the tag history the time machine restores from. A live row whose
`expires_at` has passed is no longer served; it is ended at its expiry when next touched or by gc."""
from __future__ import annotations

import datetime as dt

import asyncpg

# The row that currently holds a tag name (at most one, enforced by the tags_live index) ...
CURRENT = "lifetime_end IS NULL"
# ... and whether it is served.
LIVE = "lifetime_end IS NULL AND (expires_at IS NULL OR expires_at > now())"
# When a current row ends: now, or its expiry if that came first.
END_AT = "LEAST(expires_at, clock_timestamp())"


async def _lock(conn: asyncpg.Connection, repository_id: int, name: str) -> None:
    # Serialises moves of one tag so exactly one current row exists and history stays linear.
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", repository_id, name)


async def set_tag(conn: asyncpg.Connection, repository_id: int, name: str, manifest_id: int, *,
                  expires_at: dt.datetime | None = None, reversion: bool = False) -> bool:
    """Point a tag at a manifest (inside the caller's transaction); returns whether it changed."""
    await _lock(conn, repository_id, name)
    current = await conn.fetchrow(
        f"SELECT id, manifest_id, ({LIVE}) AS live, expires_at FROM tags WHERE repository_id = $1 AND name = $2 AND {CURRENT}",
        repository_id, name,
    )
    if current is not None and current["live"] and current["manifest_id"] == manifest_id and not reversion:
        if expires_at is not None and current["expires_at"] != expires_at:
            await conn.execute("UPDATE tags SET expires_at = $2 WHERE id = $1", current["id"], expires_at)
        return False
    if current is not None:
        await conn.execute(f"UPDATE tags SET lifetime_end = {END_AT} WHERE id = $1", current["id"])
    await conn.execute(
        "INSERT INTO tags (repository_id, name, manifest_id, expires_at, reversion) VALUES ($1, $2, $3, $4, $5)",
        repository_id, name, manifest_id, expires_at, reversion,
    )
    return True


async def end_tag(conn: asyncpg.Connection, repository_id: int, name: str) -> bool:
    """End the tag; False when it was not live (an expired row is ended at its expiry all the same)."""
    await _lock(conn, repository_id, name)
    row = await conn.fetchrow(
        f"UPDATE tags SET lifetime_end = {END_AT} WHERE repository_id = $1 AND name = $2 AND {CURRENT} "
        "RETURNING expires_at IS NULL OR expires_at > now() AS was_live",
        repository_id, name,
    )
    return bool(row and row["was_live"])


async def end_tags_of_manifest(conn: asyncpg.Connection, manifest_id: int) -> list[str]:
    rows = await conn.fetch(
        f"UPDATE tags SET lifetime_end = {END_AT} WHERE manifest_id = $1 AND {CURRENT} RETURNING name",
        manifest_id,
    )
    return [r["name"] for r in rows]


async def list_live(conn, repository_id: int, last: str | None, limit: int) -> list[str]:
    rows = await conn.fetch(
        f"SELECT name FROM tags WHERE repository_id = $1 AND {LIVE} AND name > $2 ORDER BY name LIMIT $3",
        repository_id, last or "", limit,
    )
    return [r["name"] for r in rows]


async def set_expiration(conn: asyncpg.Connection, repository_id: int, names: list[str], expires_at: dt.datetime | None) -> list[str]:
    """Set (or clear, with None) the expiry of live tags; returns the names that were not live."""
    missing = []
    for name in sorted(set(names)):
        await _lock(conn, repository_id, name)
        done = await conn.fetchval(
            f"UPDATE tags SET expires_at = $3 WHERE repository_id = $1 AND name = $2 AND {LIVE} RETURNING id",
            repository_id, name, expires_at,
        )
        if done is None:
            missing.append(name)
    return missing
