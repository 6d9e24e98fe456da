"""Failed-login throttling, kept in the database so every gateway of every region counts the same
failures (table login_throttle, migration 0010). Keys are `user:<name>` and `ip:<address>`."""
from __future__ import annotations

import datetime as dt

from shared.model import Db


async def locked_until(conn: Db, keys: list[str]) -> dt.datetime | None:
    """The latest lock still in force on any of the keys, or None."""
    return await conn.fetchval(
        "SELECT max(locked_until) FROM login_throttle WHERE key = ANY($1::text[]) AND locked_until > clock_timestamp()", keys)


async def has_failures(conn: Db, key: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM login_throttle WHERE key = $1", key))


async def record_failure(conn: Db, key: str, *, window_s: float) -> int:
    """Count one failure on `key` (restarting the count when the last one is older than the window);
    returns the count."""
    return await conn.fetchval(
        "INSERT INTO login_throttle AS t (key, failures, last_failure) VALUES ($1, 1, clock_timestamp()) "
        "ON CONFLICT (key) DO UPDATE SET "
        "failures = CASE WHEN t.last_failure < clock_timestamp() - make_interval(secs => $2) THEN 1 ELSE t.failures + 1 END, "
        "last_failure = clock_timestamp() RETURNING failures",
        key, float(window_s))


async def lock(conn: Db, key: str, seconds: float) -> dt.datetime:
    return await conn.fetchval(
        "UPDATE login_throttle SET locked_until = clock_timestamp() + make_interval(secs => $2) WHERE key = $1 "
        "RETURNING locked_until", key, float(seconds))


async def clear(conn: Db, key: str) -> None:
    await conn.execute("DELETE FROM login_throttle WHERE key = $1", key)


async def forget_old(conn: Db, *, window_s: float) -> None:
    """Rows whose last failure is older than the window and whose lock has ended."""
    await conn.execute(
        "DELETE FROM login_throttle WHERE last_failure < clock_timestamp() - make_interval(secs => $1) "
        "AND (locked_until IS NULL OR locked_until < clock_timestamp())", float(window_s))
