from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from shared.model import fetch_id_retrying


@dataclass(frozen=True)
class StoredManifest:
    id: int
    digest: str
    media_type: str
    body: bytes
    subject_digest: str | None
    repository_id: int = 0
    namespace_id: int = 0


_COLUMNS = "m.id, m.digest, m.media_type, m.body, m.subject_digest, r.id AS repository_id, r.namespace_id"


def _manifest(row) -> StoredManifest | None:
    if row is None:
        return None
    return StoredManifest(row["id"], row["digest"], row["media_type"], row["body"], row["subject_digest"],
                          row["repository_id"], row["namespace_id"])


async def get_by_tag(conn, full_name: str, tag: str) -> StoredManifest | None:
    return _manifest(
        await conn.fetchrow(
            f"""
            SELECT {_COLUMNS} FROM repositories r
            JOIN tags t ON t.repository_id = r.id AND t.name = $2 AND t.lifetime_end IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
            JOIN manifests m ON m.id = t.manifest_id
            WHERE r.full_name = $1 AND r.state <> 'deleted'
            """,
            full_name,
            tag,
        )
    )


async def get_by_digest(conn, full_name: str, digest: str) -> StoredManifest | None:
    return _manifest(
        await conn.fetchrow(
            f"""
            SELECT {_COLUMNS} FROM repositories r
            JOIN manifests m ON m.repository_id = r.id AND m.digest = $2
            WHERE r.full_name = $1 AND r.state <> 'deleted'
            """,
            full_name,
            digest,
        )
    )


async def ids_in_repository(conn, repository_id: int, digests: list[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT digest, id FROM manifests WHERE repository_id = $1 AND digest = ANY($2::text[])",
        repository_id,
        digests,
    )
    return {r["digest"]: r["id"] for r in rows}


async def store(
    conn: asyncpg.Connection,
    *,
    repository_id: int,
    digest: str,
    media_type: str,
    artifact_type: str | None,
    config_media_type: str | None,
    subject_digest: str | None,
    annotations: dict | None,
    body: bytes,
    blob_ids: list[int],
    child_ids: list[int],
) -> int:
    manifest_id = await fetch_id_retrying(
        conn,
        """
        WITH ins AS (
            INSERT INTO manifests (repository_id, digest, media_type, artifact_type, config_media_type,
                                   subject_digest, annotations, size, body)
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
            ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id
        )
        SELECT id FROM ins UNION ALL SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2
        LIMIT 1
        """,
        repository_id,
        digest,
        media_type,
        artifact_type,
        config_media_type,
        subject_digest,
        json.dumps(annotations) if annotations is not None else None,
        len(body),
        body,
    )
    if blob_ids:
        await conn.execute(
            "INSERT INTO manifest_blobs (manifest_id, blob_id) SELECT $1, unnest($2::bigint[]) "
            "ON CONFLICT DO NOTHING",
            manifest_id,
            blob_ids,
        )
    if child_ids:
        await conn.execute(
            "INSERT INTO manifest_children (parent_id, child_id) SELECT $1, unnest($2::bigint[]) "
            "ON CONFLICT DO NOTHING",
            manifest_id,
            child_ids,
        )
    return manifest_id


async def delete(conn: asyncpg.Connection, repository_id: int, digest: str) -> bool:
    """Delete a manifest and end the tags that point to it."""
    manifest_id = await conn.fetchval(
        "SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2", repository_id, digest
    )
    if manifest_id is None:
        return False
    await conn.execute("DELETE FROM manifests WHERE id = $1", manifest_id)
    return True


async def referrers(conn, full_name: str, subject: str, artifact_type: str | None) -> list[dict]:
    rows = await conn.fetch(
        """
        SELECT m.digest, m.media_type, m.size, coalesce(m.artifact_type, m.config_media_type) AS artifact_type,
               m.annotations
        FROM repositories r JOIN manifests m ON m.repository_id = r.id AND m.subject_digest = $2
        WHERE r.full_name = $1 AND r.state <> 'deleted'
          AND ($3::text IS NULL OR coalesce(m.artifact_type, m.config_media_type) = $3)
        ORDER BY m.created_at, m.id
        """,
        full_name,
        subject,
        artifact_type,
    )
    out = []
    for r in rows:
        descriptor = {"mediaType": r["media_type"], "digest": r["digest"], "size": r["size"]}
        if r["artifact_type"]:
            descriptor["artifactType"] = r["artifact_type"]
        if r["annotations"]:
            descriptor["annotations"] = json.loads(r["annotations"])
        out.append(descriptor)
    return out
