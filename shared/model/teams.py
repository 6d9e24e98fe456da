"""Teams of an organisation (roles member / creator / admin) and their members (users and the
organisation's robots)."""
from __future__ import annotations

import asyncpg

from shared.model import Db, fetch_one


async def team_by_name(conn: Db, namespace_id: int, name: str) -> asyncpg.Record | None:
    """id, name, role, description."""
    return await conn.fetchrow("SELECT id, name, role, description FROM teams WHERE namespace_id = $1 AND name = $2",
                               namespace_id, name)


async def put_team(conn: Db, namespace_id: int, name: str, role: str, description: str) -> asyncpg.Record:
    """Create the team or change its role and description: name, role, description."""
    return await fetch_one(
        conn,
        "INSERT INTO teams (namespace_id, name, role, description) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (namespace_id, name) DO UPDATE SET role = EXCLUDED.role, description = EXCLUDED.description "
        "RETURNING name, role, description",
        namespace_id, name, role, description,
    )


async def delete_team(conn: Db, team_id: int) -> None:
    await conn.execute("DELETE FROM teams WHERE id = $1", team_id)


async def teams_with_member_counts(conn: Db, namespace_id: int) -> list[asyncpg.Record]:
    """The namespace's teams by name: name, role, description, members (a count)."""
    return await conn.fetch(
        "SELECT t.name, t.role, t.description, count(tm.user_id) AS members FROM teams t "
        "LEFT JOIN team_members tm ON tm.team_id = t.id WHERE t.namespace_id = $1 GROUP BY t.id ORDER BY t.name",
        namespace_id,
    )


async def team_names_of_member(conn: Db, account_id: int) -> list[str]:
    """The teams a user or robot sits in, by name."""
    rows = await conn.fetch(
        "SELECT t.name FROM team_members tm JOIN teams t ON t.id = tm.team_id WHERE tm.user_id = $1 ORDER BY t.name", account_id
    )
    return [r["name"] for r in rows]


async def team_members(conn: Db, team_id: int) -> list[asyncpg.Record]:
    """Enabled members by name: username, robot."""
    return await conn.fetch(
        "SELECT u.username, u.robot_namespace_id IS NOT NULL AS robot FROM team_members tm JOIN users u ON u.id = tm.user_id "
        "WHERE tm.team_id = $1 AND u.enabled ORDER BY u.username",
        team_id,
    )


async def add_team_member(conn: Db, team_id: int, account_id: int) -> None:
    """Adding a member twice is no change."""
    await conn.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", team_id, account_id)


async def remove_team_member(conn: Db, team_id: int, account_id: int) -> bool:
    """Whether the account was a member."""
    return await conn.fetchval(
        "DELETE FROM team_members WHERE team_id = $1 AND user_id = $2 RETURNING user_id", team_id, account_id
    ) is not None


async def team_has_members(conn: Db, team_id: int) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM team_members WHERE team_id = $1", team_id))
