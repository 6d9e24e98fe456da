"""Who may do what to a repository: one place computes roles from ownership, teams, permissions and
visibility, for /v2 tokens and /api/v1 alike."""
from __future__ import annotations

from collections.abc import Collection

import asyncpg

from shared.model import Conn, Db, fetch_id_retrying
from shared.model.accounts import Principal

REPO_ROLES = ("read", "write", "admin")
RANK = {None: 0, "read": 1, "write": 2, "admin": 3}

# Rank of a principal ($P) on repository r in namespace n; a SQL fragment shared by lookups and lists.
_ROLE_RANK_SQL = """
GREATEST(
    CASE WHEN r.visibility = 'public' THEN 1 ELSE 0 END,
    CASE WHEN n.owner_user_id = {p} THEN 3 ELSE 0 END,
    (SELECT coalesce(max(array_position(ARRAY['read','write','admin'], p.role)), 0)
       FROM repository_permissions p
      WHERE p.repository_id = r.id
        AND (p.user_id = {p} OR p.team_id IN (SELECT team_id FROM team_members WHERE user_id = {p}))),
    (SELECT CASE WHEN count(*) > 0 THEN 3 ELSE 0 END
       FROM teams t JOIN team_members tm ON tm.team_id = t.id
      WHERE t.namespace_id = n.id AND t.role = 'admin' AND tm.user_id = {p})
)
"""


def role_rank_sql(param: str) -> str:
    return _ROLE_RANK_SQL.format(p=param)


def readable_sql(principal_param: str, superuser_param: str) -> str:
    """WHERE condition: repository r (namespace n) is readable by the principal (NULL = anonymous)."""
    return f"({superuser_param} OR {role_rank_sql(principal_param)} >= 1)"


def role_name(rank: int) -> str | None:
    return REPO_ROLES[rank - 1] if rank else None


async def repository_role(conn: Db, principal: Principal | None, full_name: str) -> tuple[asyncpg.Record | None, str | None]:
    """(repository row or None, role or None). The row has id, namespace_id, visibility, state."""
    row = await conn.fetchrow(
        f"""
        SELECT r.id, r.namespace_id, r.visibility, r.state, r.name, r.full_name, r.description, r.created_at,
               {role_rank_sql('$2::bigint')} AS rank
        FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
        WHERE r.full_name = $1 AND r.state <> 'deleted' AND n.deleted_at IS NULL
        """,
        full_name, principal.id if principal else None,
    )
    if row is None:
        return None, None
    if principal is not None and principal.superuser:
        return row, "admin"
    return row, role_name(row["rank"])


async def namespace_role(conn: Db, principal: Principal | None, namespace_id: int) -> str | None:
    """'admin', 'creator', 'member' or None for the principal in a namespace."""
    if principal is None:
        return None
    if principal.superuser:
        return "admin"
    row = await conn.fetchrow(
        """
        SELECT n.owner_user_id,
               (SELECT max(array_position(ARRAY['member','creator','admin'], t.role))
                  FROM teams t JOIN team_members tm ON tm.team_id = t.id
                 WHERE t.namespace_id = n.id AND tm.user_id = $2) AS rank
        FROM namespaces n WHERE n.id = $1
        """,
        namespace_id, principal.id,
    )
    if row is None:
        return None
    if row["owner_user_id"] == principal.id:
        return "admin"
    return ("member", "creator", "admin")[row["rank"] - 1] if row["rank"] else None


def can_create_in(role: str | None) -> bool:
    return role in ("admin", "creator")


async def create_repository(
    conn: Conn,
    namespace_id: int,
    namespace: str,
    name: str,
    *,
    creator: Principal | None,
    visibility: str = "private",
    description: str = "",
) -> tuple[int, bool]:
    """(repository id, created?). On creation, in the same transaction: the creator's own permission
    (admin for a user, write for a robot, none in the creator's own namespace) and the namespace's
    default permissions. The caller holds the transaction."""
    full_name = f"{namespace}/{name}"
    inserted = await conn.fetchval(
        "INSERT INTO repositories (namespace_id, name, full_name, visibility, description) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT DO NOTHING RETURNING id",  # either unique key (shared/registry/repositories.py says why)
        namespace_id, name, full_name, visibility, description,
    )
    if inserted is None:
        existing = await fetch_id_retrying(conn, "SELECT id FROM repositories WHERE full_name = $1", full_name)
        return existing, False
    await apply_creation_permissions(conn, inserted, namespace_id, creator)
    return inserted, True


async def apply_creation_permissions(conn: Db, repository_id: int, namespace_id: int, creator: Principal | None) -> None:
    grants: dict[tuple[str, int], str] = {}
    owner = await conn.fetchval("SELECT owner_user_id FROM namespaces WHERE id = $1", namespace_id)
    if creator is not None and creator.id != owner:
        grants[("user", creator.id)] = "write" if creator.robot else "admin"
    rows = await conn.fetch(
        "SELECT delegate_user_id, delegate_team_id, role FROM default_permissions "
        "WHERE namespace_id = $1 AND (activating_user_id IS NULL OR activating_user_id = $2)",
        namespace_id, creator.id if creator else None,
    )
    for row in rows:
        key = ("user", row["delegate_user_id"]) if row["delegate_user_id"] else ("team", row["delegate_team_id"])
        if RANK[row["role"]] > RANK[grants.get(key)]:
            grants[key] = row["role"]
    for (kind, ident), role in grants.items():
        await set_permission(conn, repository_id, kind, ident, role)


async def set_permission(conn: Db, repository_id: int, kind: str, ident: int, role: str | None) -> None:
    """Grant `role` to a user/robot (kind "user") or team on a repository; None removes it."""
    column = "user_id" if kind == "user" else "team_id"
    if role is None:
        await conn.execute(f"DELETE FROM repository_permissions WHERE repository_id = $1 AND {column} = $2", repository_id, ident)
        return
    await conn.execute(
        f"INSERT INTO repository_permissions (repository_id, {column}, role) VALUES ($1, $2, $3) "
        f"ON CONFLICT (repository_id, {column}) WHERE {column} IS NOT NULL DO UPDATE SET role = EXCLUDED.role",
        repository_id, ident, role,
    )


# Who holds a permission, by kind: "user" (users and robots) or "team".
_HOLDER_COLUMNS = {"user": "user_id", "team": "team_id"}
# How a holder is found by name: the join to its table and the column naming it.
_HOLDER_NAMES = {
    "user": ("JOIN users h ON h.id = p.user_id", "h.username"),
    "team": ("JOIN teams h ON h.id = p.team_id", "h.name"),
}


async def user_permissions_on(conn: Db, repository_id: int) -> list[asyncpg.Record]:
    """Enabled users' and robots' roles on the repository by name: username, robot, role."""
    return await conn.fetch(
        "SELECT u.username, u.robot_namespace_id IS NOT NULL AS robot, p.role FROM repository_permissions p "
        "JOIN users u ON u.id = p.user_id WHERE p.repository_id = $1 AND u.enabled ORDER BY u.username",
        repository_id,
    )


async def team_permissions_on(conn: Db, repository_id: int) -> list[asyncpg.Record]:
    """Teams' roles on the repository by name: name, role."""
    return await conn.fetch(
        "SELECT t.name, p.role FROM repository_permissions p JOIN teams t ON t.id = p.team_id "
        "WHERE p.repository_id = $1 ORDER BY t.name",
        repository_id,
    )


async def role_of_holder_named(conn: Db, repository_id: int, kind: str, name: str) -> str | None:
    """The role granted on the repository to the user/robot (kind "user") or team called `name`."""
    join, column = _HOLDER_NAMES[kind]
    return await conn.fetchval(
        f"SELECT p.role FROM repository_permissions p {join} WHERE p.repository_id = $1 AND {column} = $2", repository_id, name)


async def has_permission(conn: Db, repository_id: int, kind: str, ident: int) -> bool:
    """Whether the user/robot (kind "user") or team `ident` holds any role on the repository."""
    return bool(await conn.fetchval(
        f"SELECT 1 FROM repository_permissions WHERE repository_id = $1 AND {_HOLDER_COLUMNS[kind]} = $2", repository_id, ident))


async def permissions_held(conn: Db, kind: str, ident: int) -> list[asyncpg.Record]:
    """The live repositories a user/robot (kind "user") or team holds roles on: full_name, visibility, role."""
    return await conn.fetch(
        "SELECT r.full_name, r.visibility, p.role FROM repository_permissions p JOIN repositories r ON r.id = p.repository_id "
        f"WHERE p.{_HOLDER_COLUMNS[kind]} = $1 AND r.state <> 'deleted' ORDER BY r.full_name",
        ident,
    )


async def grantable_repository_id(conn: Db, namespace_id: int, full_name: str) -> int | None:
    """The id of a live repository of the namespace, which its robots may be granted roles on."""
    row = await grantable_repository(conn, namespace_id, full_name)
    return row["id"] if row else None


async def grantable_repository(conn: Db, namespace_id: int, full_name: str) -> asyncpg.Record | None:
    """A live repository of the namespace (id, state), which its robots may be granted roles on."""
    return await conn.fetchrow(
        "SELECT id, state FROM repositories WHERE full_name = $1 AND namespace_id = $2 AND state <> 'deleted'",
        full_name, namespace_id,
    )


async def readable_names(conn: Db, principal: Principal | None, names: Collection[str]) -> set[str]:
    """Which of the repositories `names` (full names) exist and the principal (None: anonymous) may read."""
    if not names:
        return set()
    rows = await conn.fetch(
        f"""
        SELECT r.full_name FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
        WHERE r.full_name = ANY($1::text[]) AND r.state <> 'deleted' AND n.deleted_at IS NULL
          AND {readable_sql('$2::bigint', '$3::boolean')}
        """,
        sorted(set(names)), principal.id if principal else None, bool(principal and principal.superuser),
    )
    return {r["full_name"] for r in rows}


async def readable_repository_names(conn: Db, principal: Principal | None, after: str | None, limit: int) -> list[str]:
    """Names of the live repositories holding a manifest that the principal (None: anonymous) may read,
    after `after`, in order (the /v2/_catalog listing; docs/decisions.md "A refused push creates nothing")."""
    rows = await conn.fetch(
        f"""
        SELECT r.full_name FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
        WHERE r.state <> 'deleted' AND n.deleted_at IS NULL AND r.full_name > $1
          AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
          AND {readable_sql('$2::bigint', '$3::boolean')}
        ORDER BY r.full_name LIMIT $4
        """,
        after or "", principal.id if principal else None, bool(principal and principal.superuser), limit,
    )
    return [r["full_name"] for r in rows]
