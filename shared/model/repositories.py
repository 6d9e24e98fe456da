from __future__ import annotations

import re

import asyncpg

from shared.model import fetch_id_retrying

# OCI distribution-spec name grammar; Meridian also requires namespace/repository (as Quay does).
COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{COMPONENT}(?:/{COMPONENT})+$")
MAX_NAME_LENGTH = 255


def name_problem(full_name: str) -> str | None:
    """Why a repository name is invalid, or None when it is fine."""
    if len(full_name) > MAX_NAME_LENGTH:
        return f"repository name longer than {MAX_NAME_LENGTH} characters"
    if "/" not in full_name:
        return "repository names take the form namespace/repository"
    if not NAME_RE.match(full_name):
        return "repository name must match [a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    return None


async def get_id(conn: asyncpg.Connection | asyncpg.Pool, full_name: str) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM repositories WHERE full_name = $1 AND state <> 'deleted'", full_name
    )


async def get_or_create(conn: asyncpg.Connection | asyncpg.Pool, full_name: str) -> int:
    """Create-on-push: the namespace and the repository appear on first write."""
    repo_id = await get_id(conn, full_name)
    if repo_id is not None:
        return repo_id
    namespace, name = full_name.split("/", 1)
    return await fetch_id_retrying(
        conn,
        """
        WITH ns AS (
            INSERT INTO namespaces (name) VALUES ($1)
            ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
            RETURNING id
        ), ins AS (
            INSERT INTO repositories (namespace_id, name, full_name)
            SELECT id, $2, $3 FROM ns
            ON CONFLICT (full_name) DO NOTHING
            RETURNING id
        )
        SELECT id FROM ins UNION ALL SELECT id FROM repositories WHERE full_name = $3
        LIMIT 1
        """,
        namespace,
        name,
        full_name,
    )


async def list_names(conn: asyncpg.Connection | asyncpg.Pool, last: str | None, limit: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT full_name FROM repositories WHERE state <> 'deleted' AND full_name > $1 "
        "ORDER BY full_name LIMIT $2",
        last or "",
        limit,
    )
    return [r["full_name"] for r in rows]
