from __future__ import annotations

import asyncpg


async def ensure_locations(conn: asyncpg.Connection | asyncpg.Pool, names: list[str]) -> dict[str, int]:
    """Rows for every configured location; returns name -> id."""
    await conn.executemany(
        "INSERT INTO storage_locations (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
        [(n,) for n in names],
    )
    rows = await conn.fetch("SELECT id, name FROM storage_locations WHERE name = ANY($1::text[])", names)
    return {r["name"]: r["id"] for r in rows}
