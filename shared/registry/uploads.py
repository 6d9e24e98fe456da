"""Upload sessions: POST opens one, each PATCH appends a chunk object (shared/storage/paths.py), the
final PUT claims it inside blobs.commit. Any gateway process may take the next chunk: the session row
holds the chunk list and the size, and appends are conditional on the size the writer read."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from shared.model import Db


@dataclass(frozen=True)
class UploadSession:
    id: uuid.UUID
    repository_id: int
    location_id: int
    size: int
    chunks: list[str]


async def open_session(db: Db, full_name: str, location_id: int) -> tuple[uuid.UUID, int] | None:
    """Open a session in an existing repository: (upload id, repository id), or None if it is absent."""
    upload_id = uuid.uuid4()
    repository_id = await db.fetchval(
        "INSERT INTO upload_sessions (id, repository_id, location_id) "
        "SELECT $1, id, $3 FROM repositories WHERE full_name = $2 AND state <> 'deleted' RETURNING repository_id",
        upload_id, full_name, location_id,
    )
    return (upload_id, repository_id) if repository_id is not None else None


async def get(db: Db, upload_id: uuid.UUID, full_name: str) -> UploadSession | None:
    row = await db.fetchrow(
        "SELECT u.id, u.repository_id, u.location_id, u.size, u.chunks FROM upload_sessions u "
        "JOIN repositories r ON r.id = u.repository_id WHERE u.id = $1 AND r.full_name = $2",
        upload_id, full_name,
    )
    if row is None:
        return None
    return UploadSession(row["id"], row["repository_id"], row["location_id"], row["size"], list(row["chunks"]))


async def append_chunk(db: Db, upload_id: uuid.UUID, expected_size: int, chunk_path: str, length: int) -> int | None:
    """Record a chunk only if nobody appended since we read the offset; returns the new size."""
    return await db.fetchval(
        "UPDATE upload_sessions SET size = size + $3, chunks = array_append(chunks, $4), updated_at = now() "
        "WHERE id = $1 AND size = $2 RETURNING size",
        upload_id, expected_size, length, chunk_path,
    )


async def discard(db: Db, upload_id: uuid.UUID) -> None:
    await db.execute("DELETE FROM upload_sessions WHERE id = $1", upload_id)


async def count_open(db: Db) -> int:
    return await db.fetchval("SELECT count(*) FROM upload_sessions")


async def relocate(db: Db, upload_id: uuid.UUID, expected_size: int, location_id: int) -> bool:
    """Move a session that holds no chunk yet to another location (its own is down)."""
    return bool(await db.fetchval(
        "UPDATE upload_sessions SET location_id = $3, updated_at = now() WHERE id = $1 AND size = $2 RETURNING true",
        upload_id, expected_size, location_id))
