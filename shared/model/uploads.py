from __future__ import annotations

import uuid
from dataclasses import dataclass

from shared.logging import current_request_id


@dataclass(frozen=True)
class UploadSession:
    id: uuid.UUID
    repository_id: int
    location_id: int
    size: int
    chunks: list[str]


async def create(conn, full_name: str, location_id: int) -> tuple[uuid.UUID, int] | None:
    """Open a session in an existing repository: (upload id, repository id), or None if it is absent."""
    upload_id = uuid.uuid4()
    repository_id = await conn.fetchval(
        "INSERT INTO upload_sessions (id, repository_id, location_id) "
        "SELECT $1, id, $3 FROM repositories WHERE full_name = $2 AND state <> 'deleted' RETURNING repository_id",
        upload_id,
        full_name,
        location_id,
    )
    return (upload_id, repository_id) if repository_id is not None else None


async def get(conn, upload_id: uuid.UUID, full_name: str) -> UploadSession | None:
    row = await conn.fetchrow(
        "SELECT u.id, u.repository_id, u.location_id, u.size, u.chunks FROM upload_sessions u "
        "JOIN repositories r ON r.id = u.repository_id WHERE u.id = $1 AND r.full_name = $2",
        upload_id,
        full_name,
    )
    if row is None:
        return None
    return UploadSession(row["id"], row["repository_id"], row["location_id"], row["size"], list(row["chunks"]))


async def append_chunk(conn, upload_id: uuid.UUID, expected_size: int, chunk_path: str, length: int) -> int | None:
    """Record a chunk only if nobody appended since we read the offset; returns the new size."""
    return await conn.fetchval(
        "UPDATE upload_sessions SET size = size + $3, chunks = array_append(chunks, $4), updated_at = now() "
        "WHERE id = $1 AND size = $2 RETURNING size",
        upload_id,
        expected_size,
        length,
        chunk_path,
    )


async def delete(conn, upload_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM upload_sessions WHERE id = $1", upload_id)


# One statement records everything a completed upload means: the blob row, its placement in the
# location, the link to the repository and (only for a new placement) the outbox event. With a
# session, it also claims the session: if the session is gone or its size moved on, nothing is written.
_COMPLETE = """
WITH up AS ({source}),
b AS (
    INSERT INTO blobs (digest, size) SELECT $3, $4 FROM up
    ON CONFLICT (digest) DO UPDATE SET size = blobs.size RETURNING id
), p AS (
    INSERT INTO blob_placements (blob_id, location_id) SELECT id, $5 FROM b
    ON CONFLICT DO NOTHING RETURNING blob_id
), l AS (
    INSERT INTO repository_blobs (repository_id, blob_id) SELECT up.repository_id, b.id FROM up, b
    ON CONFLICT DO NOTHING
), o AS (
    INSERT INTO outbox (msg_id, subject, payload, request_id) SELECT $6, $7, $8, $9 FROM p
    ON CONFLICT (msg_id) DO NOTHING RETURNING id
)
SELECT (SELECT id FROM b) AS blob_id, (SELECT id FROM o) AS outbox_id
"""
COMPLETE_SESSION = _COMPLETE.format(
    source="DELETE FROM upload_sessions WHERE id = $1 AND size = $2 RETURNING repository_id"
)
COMPLETE_DIRECT = _COMPLETE.format(source="SELECT $1::bigint AS repository_id WHERE $2::bigint >= 0")


async def complete(
    conn,
    *,
    upload_id: uuid.UUID | None,
    repository_id: int | None,
    session_size: int,
    digest: str,
    size: int,
    location_id: int,
    event: tuple[str, str, bytes],
) -> tuple[int | None, int | None]:
    """(blob id, outbox id); blob id is None when the session was claimed by someone else."""
    msg_id, subject, payload = event
    if upload_id is not None:
        row = await conn.fetchrow(COMPLETE_SESSION, upload_id, session_size, digest, size, location_id, msg_id, subject, payload,
                                  current_request_id())
    else:
        row = await conn.fetchrow(COMPLETE_DIRECT, repository_id, session_size, digest, size, location_id, msg_id, subject, payload,
                                  current_request_id())
    return row["blob_id"], row["outbox_id"]
