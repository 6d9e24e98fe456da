"""Blobs: one row per digest across the registry, a placement per location that holds its bytes, a
link per repository that may read it.

Write path (push): `commit` claims the upload, puts the bytes at their content address (through the
caller's callback, under the digest's shared lock), records blob + placement + link, and writes
`blob.written` for a new placement. Replication: `place` records a copy and writes `blob.placed`.
gc deletes under the digest's exclusive lock (shared/registry/collection.py), so no writer can put
bytes back while they go.
"""
from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from shared.contract import blob_written_id
from shared.errors import still_referenced_error
from shared.messages import BlobPlaced, BlobWritten
from shared.model import Db, fetch_one

from . import quota
from .change import Change
from .repositories import Repo


def lock_key(digest: str) -> int:
    """The advisory lock that orders gc's deletion of a digest against writes of the same bytes:
    writers (push, replication) hold it shared while they put bytes at the content address and
    record them; gc holds it exclusively while it re-checks, deletes the bytes and the rows."""
    return int.from_bytes(hashlib.sha256(b"blob:" + digest.encode()).digest()[:8], "big", signed=True)


async def lock_shared(change: Change, digest: str) -> None:
    await change.conn.execute("SELECT pg_advisory_xact_lock_shared($1)", lock_key(digest))


async def lock_exclusive(change: Change, digest: str) -> None:
    await change.conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(digest))


@dataclass(frozen=True)
class RepoBlob:
    id: int
    size: int
    locations: list[str]


async def in_repository(db: Db, full_name: str, digest: str) -> RepoBlob | None:
    """The blob if it is linked to the repository, with the locations that hold its bytes."""
    row = await db.fetchrow(
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
        full_name, digest,
    )
    return RepoBlob(row["id"], row["size"], list(row["locations"])) if row else None


@dataclass(frozen=True)
class Holdings:
    """Where a blob's bytes are, registry-wide."""

    id: int
    size: int
    locations: list[str]


async def holdings(db: Db, digest: str) -> Holdings | None:
    row = await db.fetchrow(
        "SELECT b.id, b.size, coalesce(array_agg(l.name) FILTER (WHERE l.name IS NOT NULL), '{}') AS held "
        "FROM blobs b LEFT JOIN blob_placements p ON p.blob_id = b.id "
        "LEFT JOIN storage_locations l ON l.id = p.location_id WHERE b.digest = $1 GROUP BY b.id",
        digest,
    )
    return Holdings(row["id"], row["size"], list(row["held"])) if row else None


async def is_placed(db: Db, digest: str, location_id: int) -> bool:
    return bool(await db.fetchval(
        "SELECT true FROM blobs b JOIN blob_placements p ON p.blob_id = b.id WHERE b.digest = $1 AND p.location_id = $2",
        digest, location_id))


async def sizes_in_repository(db: Db, repository_id: int, digests: list[str]) -> dict[str, tuple[int, int]]:
    """digest -> (blob id, size) for the digests linked to the repository."""
    rows = await db.fetch(
        "SELECT b.digest, b.id, b.size FROM blobs b JOIN repository_blobs rb ON rb.blob_id = b.id "
        "WHERE rb.repository_id = $1 AND b.digest = ANY($2::text[])",
        repository_id, digests,
    )
    return {r["digest"]: (r["id"], r["size"]) for r in rows}


async def find_mountable(db: Db, digest: str, sources: Sequence[str] | None) -> int | None:
    """A blob id the caller could mount: linked to one of `sources` (the repositories the caller may
    read; None: any repository, for open access) and held by some location."""
    if sources is not None and not sources:
        return None
    return await db.fetchval(
        "SELECT b.id FROM blobs b WHERE b.digest = $1 "
        "AND EXISTS (SELECT 1 FROM blob_placements p WHERE p.blob_id = b.id) "
        "AND ($2::text[] IS NULL OR EXISTS (SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id "
        "WHERE rb.blob_id = b.id AND r.full_name = ANY($2::text[]) AND r.state <> 'deleted'))",
        digest, list(sources) if sources is not None else None,
    )


async def link(change: Change, repository_id: int, blob_id: int) -> None:
    """Let a repository read a blob it did not upload (a cross-repository mount)."""
    await change.conn.execute(
        "INSERT INTO repository_blobs (repository_id, blob_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        repository_id, blob_id,
    )


async def unlink(change: Change, repo: Repo, digest: str) -> bool:
    """Remove the blob from the repository; gc looks at it next (it may be unreferenced now). Refused
    (still_referenced_error) while a manifest of the repository lists it: under the namespace lock,
    which a manifest push takes too, so no push can start using the blob while it goes."""
    await quota.lock(change, repo)
    users = await change.conn.fetch(
        "SELECT m.digest FROM manifests m JOIN manifest_blobs mb ON mb.manifest_id = m.id JOIN blobs b ON b.id = mb.blob_id "
        "WHERE m.repository_id = $1 AND b.digest = $2 ORDER BY m.digest", repo.id, digest)
    if users:
        raise still_referenced_error("blob", digest, [r["digest"] for r in users])
    repository_id = repo.id
    count = await change.conn.fetchval(
        """
        WITH gone AS (
            DELETE FROM repository_blobs rb USING blobs b
            WHERE rb.blob_id = b.id AND rb.repository_id = $1 AND b.digest = $2 RETURNING rb.blob_id
        ), candidate AS (
            INSERT INTO gc_blob_candidates (blob_id) SELECT blob_id FROM gone ON CONFLICT DO NOTHING
        )
        SELECT count(*) FROM gone
        """,
        repository_id, digest,
    )
    return count > 0


# Blob, placement and link in one statement; `placed` says whether this location is new for the blob.
_RECORD = """
WITH b AS (
    INSERT INTO blobs (digest, size) VALUES ($1, $2)
    ON CONFLICT (digest) DO UPDATE SET size = blobs.size RETURNING id
), p AS (
    INSERT INTO blob_placements (blob_id, location_id) SELECT id, $3 FROM b
    ON CONFLICT DO NOTHING RETURNING blob_id
), l AS (
    INSERT INTO repository_blobs (repository_id, blob_id) SELECT $4, id FROM b ON CONFLICT DO NOTHING
)
SELECT (SELECT id FROM b) AS blob_id, EXISTS (SELECT 1 FROM p) AS placed
"""


async def commit(change: Change, *, repository: str, repository_id: int, digest: str, size: int, location: str,
                 location_id: int, put_bytes: Callable[[], Awaitable[None]],
                 upload_id: uuid.UUID | None = None, upload_size: int = 0) -> int | None:
    """Record a pushed blob; returns its id, or None when the upload session was completed, cancelled
    or extended by someone else meanwhile (then nothing is written, not even bytes).

    `put_bytes` moves the verified bytes to their content address; it runs only when the location
    lacks them, after the session is claimed and under the digest's shared lock, so concurrent
    completions of one upload cannot leave bytes behind without a row and gc cannot delete bytes
    between their arrival and their record."""
    if upload_id is not None:
        claimed = await change.conn.fetchval(
            "DELETE FROM upload_sessions WHERE id = $1 AND size = $2 RETURNING repository_id", upload_id, upload_size)
        if claimed is None:
            return None
    await lock_shared(change, digest)
    if not await is_placed(change.conn, digest, location_id):
        await put_bytes()
    row = await fetch_one(change.conn, _RECORD, digest, size, location_id, repository_id)
    if row["placed"]:
        event = BlobWritten(digest=digest, size=size, location=location, region=change.region, repository=repository,
                            namespace=repository.split("/", 1)[0], committed_at=change.at)
        await change.emit(change.subjects.blob_written(location), event, blob_written_id(digest, location))
    return row["blob_id"]


async def place(change: Change, blob_id: int, digest: str, size: int, location: str, location_id: int,
                source: str) -> bool:
    """Record that a replicator copied the blob's bytes to `location`. False when gc collected the
    blob while it was being copied: the caller must delete the copy it made."""
    await lock_shared(change, digest)
    placed = await change.conn.fetchval(
        "INSERT INTO blob_placements (blob_id, location_id) SELECT id, $2 FROM blobs WHERE id = $1 "
        "ON CONFLICT DO NOTHING RETURNING true",
        blob_id, location_id,
    )
    if placed:
        await change.emit(change.subjects.blob_placed(location), BlobPlaced(
            digest=digest, size=size, location=location, source=source, region=change.region, placed_at=change.at))
        return True
    return bool(await change.conn.fetchval("SELECT true FROM blobs WHERE id = $1", blob_id))


async def unplace(change: Change, blob_id: int, location_id: int) -> None:
    """Forget a placement whose bytes are gone (verify-placements)."""
    await change.conn.execute("DELETE FROM blob_placements WHERE blob_id = $1 AND location_id = $2", blob_id, location_id)
