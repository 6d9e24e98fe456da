from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class UploadSession:
    id: uuid.UUID
    repository_id: int
    location_id: int
    size: int
    chunks: list[str]


def _session(row) -> UploadSession | None:
    if row is None:
        return None
    return UploadSession(row["id"], row["repository_id"], row["location_id"], row["size"], list(row["chunks"]))


async def create(conn, repository_id: int, location_id: int) -> uuid.UUID:
    upload_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO upload_sessions (id, repository_id, location_id) VALUES ($1, $2, $3)",
        upload_id,
        repository_id,
        location_id,
    )
    return upload_id


async def get(conn, upload_id: uuid.UUID, repository_id: int, *, for_update: bool = False) -> UploadSession | None:
    lock = " FOR UPDATE NOWAIT" if for_update else ""
    row = await conn.fetchrow(
        "SELECT id, repository_id, location_id, size, chunks FROM upload_sessions "
        f"WHERE id = $1 AND repository_id = $2{lock}",
        upload_id,
        repository_id,
    )
    return _session(row)


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
