"""Usage-log exports: requested through the API, written to storage by a gateway that claims them,
announced to a callback. A claim older than STALE_CLAIM belongs to a gateway that died: the export
is queued again for any gateway to take."""
from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from shared.model import Db

STALE_CLAIM = "15 minutes"
# A queued export younger than this is still its own gateway's to start.
RESUME_AFTER = "30 seconds"


async def create(conn: Db, export_id: uuid.UUID, *, requested_by: int, scope_kind: str, scope_id: int,
                 start: dt.datetime, end: dt.datetime, callback_url: str | None, callback_email: str | None) -> None:
    await conn.execute(
        "INSERT INTO log_exports (id, requested_by, scope_kind, scope_id, starttime, endtime, callback_url, callback_email) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        export_id, requested_by, scope_kind, scope_id, start, end, callback_url, callback_email,
    )


async def requeue_stale_claims(conn: Db) -> None:
    await conn.execute(
        f"UPDATE log_exports SET status = 'queued' WHERE status = 'running' AND claimed_at < now() - interval '{STALE_CLAIM}'")


async def waiting_ids(conn: Db) -> list[uuid.UUID]:
    """Queued exports their own gateway has had time to start, oldest first."""
    rows = await conn.fetch(
        f"SELECT id FROM log_exports WHERE status = 'queued' AND created_at < now() - interval '{RESUME_AFTER}' ORDER BY created_at")
    return [r["id"] for r in rows]


async def claim(conn: Db, export_id: uuid.UUID) -> asyncpg.Record | None:
    """The whole row if this caller now runs the export; None if it is not queued (another has it)."""
    return await conn.fetchrow(
        "UPDATE log_exports SET status = 'running', claimed_at = now() WHERE id = $1 AND status = 'queued' RETURNING *", export_id)


async def mark_done(conn: Db, export_id: uuid.UUID, path: str) -> None:
    await conn.execute("UPDATE log_exports SET status = 'done', path = $2, finished_at = now() WHERE id = $1", export_id, path)


async def mark_failed(conn: Db, export_id: uuid.UUID, error: str) -> None:
    await conn.execute("UPDATE log_exports SET status = 'failed', error = $2, finished_at = now() WHERE id = $1",
                       export_id, error[:1000])


async def note_notification_failure(conn: Db, export_id: uuid.UUID, error: str) -> None:
    await conn.execute("UPDATE log_exports SET error = $2 WHERE id = $1", export_id, error[:1000])


async def visible_export(conn: Db, export_id: uuid.UUID, user_id: int, superuser: bool) -> asyncpg.Record | None:
    """The export if the user requested it or is a superuser."""
    return await conn.fetchrow("SELECT * FROM log_exports WHERE id = $1 AND (requested_by = $2 OR $3)",
                               export_id, user_id, superuser)
