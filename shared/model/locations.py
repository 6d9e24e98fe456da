from __future__ import annotations

import asyncpg


class UnknownLocations(Exception):
    pass


async def ensure_locations(conn: asyncpg.Connection | asyncpg.Pool, names: list[str], *, read_only: bool = False) -> dict[str, int]:
    """Rows for every configured location; returns name -> id. Read-only mode only reads: a location
    added to the config while read-only has no row yet, and the start stops saying so."""
    rows = await conn.fetch("SELECT id, name FROM storage_locations WHERE name = ANY($1::text[])", names)
    found = {r["name"]: r["id"] for r in rows}
    missing = [n for n in names if n not in found]
    if not missing:
        return found
    if read_only:
        raise UnknownLocations(f"storage location(s) {', '.join(missing)} are new and read-only mode cannot record them: "
                               "start once in normal mode first")
    await conn.executemany(
        "INSERT INTO storage_locations (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", [(n,) for n in missing])
    rows = await conn.fetch("SELECT id, name FROM storage_locations WHERE name = ANY($1::text[])", names)
    return {r["name"]: r["id"] for r in rows}
