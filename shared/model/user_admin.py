"""What superusers change on a user account: e-mail, password, enabled. A disabled user's sessions,
API tokens and registry credentials stop working at once (every credential check reads `enabled`),
and the /v2 tokens already issued to them within MERIDIAN_TOKEN_RECHECK_SEC (docs/identity.md); a
password set by a superuser ends the user's sessions, so whoever held the old one is signed out."""
from __future__ import annotations

import asyncpg

from shared.model import Db
from shared.secrets import hash_password


async def user_row(conn: Db, username: str) -> asyncpg.Record | None:
    """A user (never a robot), enabled or not: id, username, email, enabled, created_at."""
    return await conn.fetchrow(
        "SELECT id, username, email, enabled, created_at FROM users WHERE username = $1 AND robot_namespace_id IS NULL", username)


async def set_email(conn: Db, user_id: int, email: str | None) -> None:
    """The user's e-mail, and their own namespace's (they are one account)."""
    await conn.execute("UPDATE users SET email = $2 WHERE id = $1", user_id, email)
    await conn.execute("UPDATE namespaces SET email = $2 WHERE owner_user_id = $1 AND deleted_at IS NULL", user_id, email)


async def set_password(conn: Db, user_id: int, password: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, await hash_password(password))
    await conn.execute("DELETE FROM api_tokens WHERE user_id = $1 AND kind = 'session'", user_id)


async def set_enabled(conn: Db, user_id: int, enabled: bool) -> None:
    await conn.execute("UPDATE users SET enabled = $2 WHERE id = $1", user_id, enabled)
