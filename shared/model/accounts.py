"""Users, robots, organisations and teams. Names share one space: a user's namespace has its name."""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.model import Conn, Db
from shared.secrets import hash_password, new_token, token_hash, verify_password

NAMESPACE_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
SHORT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,254}$")  # robots and teams
TEAM_ROLES = ("member", "creator", "admin")
OWNERS_TEAM = "owners"


def namespace_name_problem(name: str) -> str | None:
    if not 2 <= len(name) <= 255 or not NAMESPACE_RE.match(name):
        return (f"invalid name {name!r}: use 2-255 lowercase letters, digits and single '.', '_' or '-' "
                "between them (e.g. acme or build-team)")
    return None


MIN_PASSWORD = 8


def password_problem(password: str | None) -> str | None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        return f"the password must be at least {MIN_PASSWORD} characters"
    return None


def short_name_problem(kind: str, name: str) -> str | None:
    if not SHORT_NAME_RE.match(name):
        return (f"invalid {kind} name {name!r}: start with a lowercase letter, then 1-254 lowercase letters, "
                "digits or '_'")
    return None


@dataclass(frozen=True)
class Principal:
    """Who acts: a user or a robot, and whether the config makes them a superuser."""

    id: int
    username: str
    robot: bool = False
    superuser: bool = False
    robot_namespace_id: int | None = None

    @property
    def kind(self) -> str:
        return "robot" if self.robot else "user"


def is_superuser(username: str, super_users: Collection[str], *, robot: bool = False) -> bool:
    """The one rule: a user (never a robot) whose name SUPER_USERS lists. `Principal.superuser` is
    computed by it wherever a principal is made, and every "is this caller a superuser" reads that."""
    return not robot and username in super_users


def _principal(row: asyncpg.Record, super_users: Collection[str]) -> Principal:
    robot = row["robot_namespace_id"] is not None
    return Principal(row["id"], row["username"], robot, is_superuser(row["username"], super_users, robot=robot),
                     row["robot_namespace_id"])


async def principal_by_id(conn: Db, user_id: int, super_users: Collection[str] = ()) -> Principal | None:
    row = await conn.fetchrow("SELECT id, username, robot_namespace_id FROM users WHERE id = $1 AND enabled", user_id)
    return _principal(row, super_users) if row else None


async def check_password(conn: Db, username: str, password: str, super_users: Collection[str] = ()) -> Principal | None:
    row = await conn.fetchrow(
        "SELECT id, username, robot_namespace_id, password_hash FROM users "
        "WHERE username = $1 AND enabled AND robot_namespace_id IS NULL",
        username,
    )
    if row is None or not row["password_hash"]:
        # Unknown, disabled or without a password: the same argon2 work as a real check, so the time
        # of the answer does not tell which names exist.
        await verify_password(await dummy_password_hash(), password)
        return None
    if not await verify_password(row["password_hash"], password):
        return None
    return _principal(row, super_users)


_DUMMY: list[str] = []


async def dummy_password_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(await hash_password(new_token(32)))
    return _DUMMY[0]


async def check_robot_token(conn: Db, robot_name: str, token: str) -> Principal | None:
    try:
        row = await conn.fetchrow(
            "UPDATE users SET last_accessed = now() WHERE username = $1 AND robot_token_hash = $2 AND enabled "
            "RETURNING id, username, robot_namespace_id",
            robot_name, token_hash(token),
        )
    except asyncpg.ReadOnlySQLTransactionError:  # read-only mode: sign-in still works, unrecorded
        row = await conn.fetchrow(
            "SELECT id, username, robot_namespace_id FROM users WHERE username = $1 AND robot_token_hash = $2 AND enabled",
            robot_name, token_hash(token))
    return _principal(row, ()) if row else None


async def api_token_principal(pool: Db, token: str, kind: str,
                              super_users: Collection[str]) -> tuple[Principal, dict[str, Any]] | None:
    try:
        row = await pool.fetchrow(
            "UPDATE api_tokens SET last_used = now() WHERE token_hash = $1 AND kind = $2 "
            "AND (expires_at IS NULL OR expires_at > now()) RETURNING id, user_id, csrf_token",
            token_hash(token), kind,
        )
    except asyncpg.ReadOnlySQLTransactionError:  # read-only mode: the token still works, unrecorded
        row = await pool.fetchrow(
            "SELECT id, user_id, csrf_token FROM api_tokens WHERE token_hash = $1 AND kind = $2 "
            "AND (expires_at IS NULL OR expires_at > now())", token_hash(token), kind)
    if row is None:
        return None
    principal = await principal_by_id(pool, row["user_id"], super_users)
    return (principal, dict(row)) if principal else None


class NameTaken(Exception):
    """Users, organisations and robots share one name space."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the name {name!r} is already taken by a user or organization")
        self.name = name


async def create_user(conn: Conn, username: str, password: str, email: str | None = None) -> int:
    """A user and the namespace of the same name, in the caller's transaction."""
    if await conn.fetchval("SELECT 1 FROM namespaces WHERE name = $1 UNION SELECT 1 FROM users WHERE username = $1", username):
        raise NameTaken(username)
    user_id = await conn.fetchval(
        "INSERT INTO users (username, email, password_hash) VALUES ($1, $2, $3) RETURNING id",
        username, email, await hash_password(password),
    )
    await conn.execute(
        "INSERT INTO namespaces (name, kind, owner_user_id, email) VALUES ($1, 'user', $2, $3)", username, user_id, email
    )
    return user_id


async def create_organization(conn: Conn, name: str, email: str | None, creator_id: int | None,
                              tag_expiration_s: int | None) -> int:
    if await conn.fetchval("SELECT 1 FROM namespaces WHERE name = $1 UNION SELECT 1 FROM users WHERE username = $1", name):
        raise NameTaken(name)
    namespace_id = await conn.fetchval(
        "INSERT INTO namespaces (name, kind, email, tag_expiration_s) VALUES ($1, 'organization', $2, $3) RETURNING id",
        name, email, tag_expiration_s,
    )
    team_id = await conn.fetchval(
        "INSERT INTO teams (namespace_id, name, role, description) VALUES ($1, $2, 'admin', "
        "'Administrators of the organization') RETURNING id",
        namespace_id, OWNERS_TEAM,
    )
    if creator_id is not None:
        await conn.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)", team_id, creator_id)
    return namespace_id


async def namespace_row(conn: Db, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, name, kind, owner_user_id, email, tag_expiration_s, created_at FROM namespaces "
        "WHERE name = $1 AND deleted_at IS NULL",
        name,
    )


async def create_robot(conn: Db, namespace_id: int, full_name: str, description: str) -> str:
    """Returns the token; only its hash is stored."""
    if await conn.fetchval("SELECT 1 FROM users WHERE username = $1", full_name):
        raise NameTaken(full_name)
    token = new_token()
    await conn.execute(
        "INSERT INTO users (username, robot_namespace_id, robot_token_hash, description) VALUES ($1, $2, $3, $4)",
        full_name, namespace_id, token_hash(token), description,
    )
    return token


async def create_api_token(conn: Db, user_id: int, title: str = "", days: int | None = None) -> tuple[int, str, object]:
    """A personal bearer token for the API (and `$token` on /v2/auth): (id, the token, expiry).
    Only its hash is stored; the token is shown once."""
    token = new_token(48)
    row = await conn.fetchrow(
        "INSERT INTO api_tokens (token_hash, user_id, kind, title, expires_at) VALUES ($1, $2, 'bearer', $3, "
        "CASE WHEN $4::int IS NULL THEN NULL ELSE now() + make_interval(days => $4::int) END) RETURNING id, expires_at",
        token_hash(token), user_id, title, days,
    )
    assert row is not None  # INSERT .. RETURNING yields the row it inserted
    return row["id"], token, row["expires_at"]


async def regenerate_robot_token(conn: Db, robot_id: int) -> str:
    token = new_token()
    await conn.execute("UPDATE users SET robot_token_hash = $2 WHERE id = $1", robot_id, token_hash(token))
    return token


# A deleted repository keeps its row until gc purges it, under a name no live repository can have
# ('+' is not in the name grammar): both unique keys, full_name and (namespace_id, name), are free at once.
_MARK_REPOSITORY_DELETED = ("UPDATE repositories SET state = 'deleted', full_name = full_name || '+deleted+' || id, "
                            "name = name || '+deleted+' || id WHERE {where} AND state <> 'deleted'")


async def mark_repository_deleted(conn: Db, repository_id: int) -> None:
    """Hide a repository at once and free its name; gc purges its rows and unreferenced blobs later."""
    from shared.registry import lookups

    await conn.execute(_MARK_REPOSITORY_DELETED.format(where="id = $1"), repository_id)
    lookups.changed()


async def mark_namespace_deleted(conn: Conn, namespace_id: int) -> None:
    """Hide a namespace, its repositories and robots at once and free the names; its usage is gone at
    once; gc purges them later."""
    from shared.registry import lookups, quota

    await quota.namespace_removed(conn, namespace_id)
    await conn.execute(_MARK_REPOSITORY_DELETED.format(where="namespace_id = $1"), namespace_id)
    lookups.changed()
    await conn.execute(
        "UPDATE users SET enabled = false, username = username || '+deleted+' || id WHERE robot_namespace_id = $1",
        namespace_id,
    )
    await conn.execute(
        "UPDATE namespaces SET deleted_at = now(), name = name || '+deleted+' || id, owner_user_id = NULL "
        "WHERE id = $1 AND deleted_at IS NULL",
        namespace_id,
    )


# Users

async def user_id_by_name(conn: Db, username: str, *, include_disabled: bool = False) -> int | None:
    """The id of the user (not robot) called `username`."""
    return await conn.fetchval(
        "SELECT id FROM users WHERE username = $1 AND robot_namespace_id IS NULL AND (enabled OR $2)", username, include_disabled)


async def account_by_name(conn: Db, name: str) -> asyncpg.Record | None:
    """An enabled user or robot: id, username, robot_namespace_id."""
    return await conn.fetchrow("SELECT id, username, robot_namespace_id FROM users WHERE username = $1 AND enabled", name)


async def user_profile(conn: Db, user_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT username, email, created_at FROM users WHERE id = $1", user_id)


async def organizations_of_user(conn: Db, user_id: int) -> list[asyncpg.Record]:
    """Namespaces in whose teams the user sits: name, is_admin (in an admin team)."""
    return await conn.fetch(
        "SELECT DISTINCT n.name, bool_or(t.role = 'admin') OVER (PARTITION BY n.name) AS is_admin FROM namespaces n "
        "JOIN teams t ON t.namespace_id = n.id JOIN team_members tm ON tm.team_id = t.id "
        "WHERE tm.user_id = $1 AND n.deleted_at IS NULL ORDER BY n.name",
        user_id,
    )


async def all_users(conn: Db) -> list[asyncpg.Record]:
    """Every user (no robots): username, email, enabled, created_at."""
    return await conn.fetch(
        "SELECT username, email, enabled, created_at FROM users WHERE robot_namespace_id IS NULL ORDER BY username"
    )


async def delete_user(conn: Conn, user_id: int) -> None:
    """The account goes now; the user's namespace is marked deleted (purged later by gc). The caller
    holds the transaction."""
    namespace_id = await conn.fetchval("SELECT id FROM namespaces WHERE owner_user_id = $1", user_id)
    if namespace_id is not None:
        await mark_namespace_deleted(conn, namespace_id)
    await delete_account(conn, user_id)


async def delete_account(conn: Db, account_id: int) -> None:
    """A user or robot row; team memberships and permissions go with it (ON DELETE CASCADE)."""
    await conn.execute("DELETE FROM users WHERE id = $1", account_id)


# Sessions and API tokens (only their hashes are stored)

async def create_session(conn: Db, user_id: int, session: str, csrf_token: str, lifetime_s: float) -> None:
    await conn.execute(
        "INSERT INTO api_tokens (token_hash, user_id, kind, csrf_token, expires_at) "
        "VALUES ($1, $2, 'session', $3, now() + make_interval(secs => $4))",
        token_hash(session), user_id, csrf_token, float(lifetime_s),
    )


async def end_session(conn: Db, session: str) -> None:
    await conn.execute("DELETE FROM api_tokens WHERE token_hash = $1 AND kind = 'session'", token_hash(session))


async def api_tokens_of(conn: Db, user_id: int) -> list[asyncpg.Record]:
    """The user's bearer tokens (never their secrets): id, title, created_at, expires_at, last_used."""
    return await conn.fetch(
        "SELECT id, title, created_at, expires_at, last_used FROM api_tokens WHERE user_id = $1 AND kind = 'bearer' ORDER BY id",
        user_id,
    )


async def revoke_api_token(conn: Db, token_id: int, user_id: int) -> bool:
    """Whether the user had that bearer token."""
    return await conn.fetchval(
        "DELETE FROM api_tokens WHERE id = $1 AND user_id = $2 AND kind = 'bearer' RETURNING id", token_id, user_id
    ) is not None


# Organisations

async def update_namespace_settings(conn: Db, namespace_id: int, email: str | None, tag_expiration_s: int | None) -> None:
    await conn.execute("UPDATE namespaces SET email = $2, tag_expiration_s = $3 WHERE id = $1", namespace_id, email, tag_expiration_s)


async def organization_members(conn: Db, namespace_id: int) -> list[asyncpg.Record]:
    """Enabled users and robots in any team of the namespace: username, robot, teams (names, sorted)."""
    return await conn.fetch(
        "SELECT u.username, u.robot_namespace_id IS NOT NULL AS robot, array_agg(t.name ORDER BY t.name) AS teams "
        "FROM team_members tm JOIN teams t ON t.id = tm.team_id JOIN users u ON u.id = tm.user_id "
        "WHERE t.namespace_id = $1 AND u.enabled GROUP BY u.id ORDER BY u.username",
        namespace_id,
    )
