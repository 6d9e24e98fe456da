from __future__ import annotations

import hashlib
from dataclasses import dataclass

import asyncpg

from shared.model import fetch_id_retrying


def digest_lock_key(digest: str) -> int:
    """The advisory lock that orders gc's deletion of a digest against writes of the same bytes:
    writers (push, replication) hold it shared while they put bytes at the content address and
    record them; gc holds it exclusively while it re-checks, deletes the bytes and the rows."""
    return int.from_bytes(hashlib.sha256(b"blob:" + digest.encode()).digest()[:8], "big", signed=True)


async def lock_digest_shared(conn, digest: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", digest_lock_key(digest))


@dataclass(frozen=True)
class RepoBlob:
    id: int
    size: int
    locations: list[str]


async def get_in_repository(conn, full_name: str, digest: str) -> RepoBlob | None:
    """The blob if it is linked to the repository, with the locations that hold its bytes."""
    row = await conn.fetchrow(
        """
        SELECT b.id, b.size,
               coalesce(array_agg(l.name) FILTER (WHERE l.name IS NOT NULL), '{}') AS locations
        FROM repositories r
        JOIN repository_blobs rb ON rb.repository_id = r.id
        JOIN blobs b ON b.id = rb.blob_id AND b.digest = $2
        LEFT JOIN blob_placements p ON p.blob_id = b.id
        LEFT JOIN storage_locations l ON l.id = p.location_id
        WHERE r.full_name = $1 AND r.state <> 'deleted'
        GROUP BY b.id
        """,
        full_name,
        digest,
    )
    return RepoBlob(row["id"], row["size"], list(row["locations"])) if row else None


async def get_placed(conn, digest: str, location_id: int) -> tuple[int, int] | None:
    """(blob id, size) when the blob's bytes are already at the location."""
    row = await conn.fetchrow(
        "SELECT b.id, b.size FROM blobs b JOIN blob_placements p ON p.blob_id = b.id "
        "WHERE b.digest = $1 AND p.location_id = $2",
        digest,
        location_id,
    )
    return (row["id"], row["size"]) if row else None


async def record(conn: asyncpg.Connection, digest: str, size: int, location_id: int) -> tuple[int, bool]:
    """Upsert the blob and its placement; returns (blob id, whether the placement is new)."""
    blob_id = await fetch_id_retrying(
        conn,
        """
        WITH ins AS (
            INSERT INTO blobs (digest, size) VALUES ($1, $2)
            ON CONFLICT (digest) DO NOTHING RETURNING id
        )
        SELECT id FROM ins UNION ALL SELECT id FROM blobs WHERE digest = $1 LIMIT 1
        """,
        digest,
        size,
    )
    placed = await conn.fetchval(
        "INSERT INTO blob_placements (blob_id, location_id) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING RETURNING true",
        blob_id,
        location_id,
    )
    return blob_id, bool(placed)


async def link(conn, repository_id: int, blob_id: int) -> None:
    await conn.execute(
        "INSERT INTO repository_blobs (repository_id, blob_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        repository_id,
        blob_id,
    )


async def unlink(conn, repository_id: int, digest: str) -> bool:
    """Remove the blob from the repository; gc looks at it next (it may be unreferenced now)."""
    row = await conn.fetchval(
        """
        WITH gone AS (
            DELETE FROM repository_blobs rb USING blobs b
            WHERE rb.blob_id = b.id AND rb.repository_id = $1 AND b.digest = $2 RETURNING rb.blob_id
        ), candidate AS (
            INSERT INTO gc_blob_candidates (blob_id) SELECT blob_id FROM gone ON CONFLICT DO NOTHING
        )
        SELECT count(*) FROM gone
        """,
        repository_id,
        digest,
    )
    return row > 0


async def find_mountable(conn, digest: str, source: str | None) -> int | None:
    """A blob id the caller could mount: from `source` when named, else from any repository."""
    if source is not None:
        return await conn.fetchval(
            "SELECT b.id FROM blobs b JOIN repository_blobs rb ON rb.blob_id = b.id "
            "JOIN repositories r ON r.id = rb.repository_id "
            "WHERE b.digest = $1 AND r.full_name = $2 AND r.state <> 'deleted' "
            "AND EXISTS (SELECT 1 FROM blob_placements p WHERE p.blob_id = b.id)",
            digest,
            source,
        )
    return await conn.fetchval(
        "SELECT b.id FROM blobs b WHERE b.digest = $1 "
        "AND EXISTS (SELECT 1 FROM blob_placements p WHERE p.blob_id = b.id)",
        digest,
    )


async def sizes_in_repository(conn, repository_id: int, digests: list[str]) -> dict[str, tuple[int, int]]:
    """digest -> (blob id, size) for the digests linked to the repository."""
    rows = await conn.fetch(
        "SELECT b.digest, b.id, b.size FROM blobs b JOIN repository_blobs rb ON rb.blob_id = b.id "
        "WHERE rb.repository_id = $1 AND b.digest = ANY($2::text[])",
        repository_id,
        digests,
    )
    return {r["digest"]: (r["id"], r["size"]) for r in rows}
