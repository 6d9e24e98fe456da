"""Where blobs must be and where they are: target locations (DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS
plus each namespace's own setting), missing copies, queued repairs, recorded failures, and the
operator's location tools (remove a location, drop placements whose bytes are gone)."""
from __future__ import annotations

import asyncpg

from shared.messages import BlobMissingCopy
from shared.model import Db, fetch_one

from .change import Change


async def namespace_targets(db: Db, namespace: str) -> set[str]:
    """The namespace's own replication locations (not the defaults)."""
    rows = await db.fetch(
        "SELECT l.name FROM namespace_replication nr JOIN namespaces n ON n.id = nr.namespace_id "
        "JOIN storage_locations l ON l.id = nr.location_id WHERE n.name = $1",
        namespace,
    )
    return {r["name"] for r in rows}


async def namespace_locations(db: Db, namespace_id: int) -> list[str]:
    rows = await db.fetch(
        "SELECT l.name FROM namespace_replication nr JOIN storage_locations l ON l.id = nr.location_id "
        "WHERE nr.namespace_id = $1 ORDER BY l.name",
        namespace_id,
    )
    return [r["name"] for r in rows]


async def set_namespace_locations(change: Change, namespace_id: int, location_ids: list[int]) -> None:
    await change.conn.execute("DELETE FROM namespace_replication WHERE namespace_id = $1", namespace_id)
    await change.conn.executemany(
        "INSERT INTO namespace_replication (namespace_id, location_id) VALUES ($1, $2)",
        [(namespace_id, location_id) for location_id in sorted(set(location_ids))],
    )


async def all_namespace_settings(db: Db) -> dict[str, set[str]]:
    """namespace -> its own replication locations, for every namespace that has some."""
    rows = await db.fetch(
        "SELECT n.name AS namespace, l.name AS location FROM namespace_replication nr "
        "JOIN namespaces n ON n.id = nr.namespace_id JOIN storage_locations l ON l.id = nr.location_id"
    )
    settings: dict[str, set[str]] = {}
    for row in rows:
        settings.setdefault(row["namespace"], set()).add(row["location"])
    return settings


async def record_failure(db: Db, digest: str, location: str, error: str, deliveries: int) -> None:
    await db.execute(
        "INSERT INTO replication_failures (digest, location, error, deliveries) VALUES ($1, $2, $3, $4)",
        digest, location, error[:2000], deliveries,
    )


async def queue_copy(change: Change, *, digest: str, size: int, target: str, namespace: str, reason: str,
                     msg_id: str | None = None) -> None:
    """Ask the replicator of `target` to copy a blob there (blob.missing.<target>)."""
    await change.emit(change.subjects.blob_missing(target), BlobMissingCopy(
        digest=digest, size=size, target=target, namespace=namespace, queued_at=change.at, reason=reason), msg_id)


async def blobs_with_holdings(db: Db, namespace: str | None) -> list[asyncpg.Record]:
    """Every linked blob (optionally of one namespace) with the namespaces linking it and where it is."""
    return await db.fetch(
        """
        SELECT b.id, b.digest, b.size, array_agg(DISTINCT n.name) AS namespaces,
               ARRAY(SELECT l.name FROM blob_placements p JOIN storage_locations l ON l.id = p.location_id
                     WHERE p.blob_id = b.id ORDER BY l.name) AS held
        FROM blobs b JOIN repository_blobs rb ON rb.blob_id = b.id
        JOIN repositories r ON r.id = rb.repository_id JOIN namespaces n ON n.id = r.namespace_id
        WHERE ($1::text IS NULL OR n.name = $1)
        GROUP BY b.id ORDER BY b.id
        """,
        namespace,
    )


async def location_id(db: Db, name: str) -> int | None:
    return await db.fetchval("SELECT id FROM storage_locations WHERE name = $1", name)


async def location_usage(db: Db, location: int) -> tuple[int, int]:
    """(placements in the location, blobs with no copy anywhere else)."""
    placements = await db.fetchval("SELECT count(*) FROM blob_placements WHERE location_id = $1", location)
    only_copy = await db.fetchval(
        "SELECT count(*) FROM blob_placements p WHERE p.location_id = $1 AND NOT EXISTS "
        "(SELECT 1 FROM blob_placements o WHERE o.blob_id = p.blob_id AND o.location_id <> $1)",
        location,
    )
    return placements, only_copy


async def remove_location(change: Change, location: int) -> tuple[int, int]:
    """Forget a location: its upload sessions, its placements and its row. (uploads, placements) removed."""
    uploads = await change.conn.fetchval(
        "WITH d AS (DELETE FROM upload_sessions WHERE location_id = $1 RETURNING 1) SELECT count(*) FROM d", location)
    placements = await change.conn.fetchval(
        "WITH d AS (DELETE FROM blob_placements WHERE location_id = $1 RETURNING 1) SELECT count(*) FROM d", location)
    await change.conn.execute("DELETE FROM storage_locations WHERE id = $1", location)
    return uploads, placements


async def placements(db: Db, location: str | None) -> list[asyncpg.Record]:
    """Every placement (optionally of one location): blob_id, location_id, digest, size, location."""
    return await db.fetch(
        "SELECT p.blob_id, p.location_id, b.digest, b.size, l.name AS location FROM blob_placements p "
        "JOIN blobs b ON b.id = p.blob_id JOIN storage_locations l ON l.id = p.location_id "
        "WHERE ($1::text IS NULL OR l.name = $1) ORDER BY b.id",
        location,
    )


async def a_namespace_of(db: Db, blob_id: int) -> str | None:
    """Some namespace that links the blob (whose replication setting decides where it must be)."""
    return await db.fetchval(
        "SELECT n.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id "
        "JOIN namespaces n ON n.id = r.namespace_id WHERE rb.blob_id = $1 LIMIT 1", blob_id)


_MISSING = """
FROM blobs b
JOIN repository_blobs rb ON rb.blob_id = b.id
JOIN repositories r ON r.id = rb.repository_id
JOIN namespaces n ON n.id = r.namespace_id
WHERE b.created_at < now() - make_interval(secs => $3)
  AND NOT EXISTS (SELECT 1 FROM blob_placements p WHERE p.blob_id = b.id AND p.location_id = $1)
  AND EXISTS (SELECT 1 FROM blob_placements p WHERE p.blob_id = b.id)
  AND ($2 OR EXISTS (SELECT 1 FROM namespace_replication nr WHERE nr.namespace_id = n.id AND nr.location_id = $1))
"""


async def missing_copies(db: Db, location_id: int, *, default_target: bool, grace_s: float,
                         limit: int) -> list[asyncpg.Record]:
    """Blobs that must be in the location and are not, but are somewhere (oldest first): id, digest,
    size, and a namespace whose setting (or the defaults) requires the copy."""
    return await db.fetch(
        f"SELECT b.id, b.digest, b.size, min(n.name) AS namespace, b.created_at {_MISSING} "
        "GROUP BY b.id ORDER BY b.created_at LIMIT $4",
        location_id, default_target, grace_s, limit)


async def under_replication(db: Db, location_id: int, *, default_target: bool, grace_s: float) -> tuple[int, int, float]:
    """(missing blobs, their bytes, age in seconds of the oldest) for one location."""
    row = await fetch_one(
        db,
        "SELECT count(*) AS blobs, coalesce(sum(size), 0)::bigint AS bytes, "
        "coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest "
        f"FROM (SELECT DISTINCT b.id, b.size, b.created_at {_MISSING}) AS missing",
        location_id, default_target, grace_s)
    return row["blobs"], row["bytes"], row["oldest"]
