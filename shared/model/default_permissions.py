"""Default permissions ("prototypes") of an organisation: when anyone, or a given user or robot
(activating), creates a repository there, a user, robot or team (delegate) gets a role on it.
access.apply_creation_permissions applies them."""
from __future__ import annotations

import uuid

import asyncpg

from shared.model import Db

# Each row: id, role, activating_user, delegate_user, delegate_team (names; NULL where not set).
_SELECT = """
SELECT d.id, d.role, a.username AS activating_user, u.username AS delegate_user, t.name AS delegate_team
FROM default_permissions d LEFT JOIN users a ON a.id = d.activating_user_id
LEFT JOIN users u ON u.id = d.delegate_user_id LEFT JOIN teams t ON t.id = d.delegate_team_id
"""


async def in_namespace(conn: Db, namespace_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(_SELECT + " WHERE d.namespace_id = $1 ORDER BY d.id", namespace_id)


async def by_id(conn: Db, prototype_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_SELECT + " WHERE d.id = $1", prototype_id)


async def by_id_in_namespace(conn: Db, prototype_id: uuid.UUID, namespace_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(_SELECT + " WHERE d.id = $1 AND d.namespace_id = $2", prototype_id, namespace_id)


async def create(conn: Db, prototype_id: uuid.UUID, namespace_id: int, *, activating_user_id: int | None,
                 delegate_user_id: int | None, delegate_team_id: int | None, role: str) -> None:
    """Exactly one of delegate_user_id and delegate_team_id is set."""
    await conn.execute(
        "INSERT INTO default_permissions (id, namespace_id, activating_user_id, delegate_user_id, delegate_team_id, role) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        prototype_id, namespace_id, activating_user_id, delegate_user_id, delegate_team_id, role,
    )


async def set_role(conn: Db, prototype_id: uuid.UUID, role: str) -> None:
    await conn.execute("UPDATE default_permissions SET role = $2 WHERE id = $1", prototype_id, role)


async def delete(conn: Db, prototype_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM default_permissions WHERE id = $1", prototype_id)
