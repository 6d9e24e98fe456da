"""Notifications (per repository, or for every repository of a namespace), their delivery history,
and what the notifier needs to find them: which match an event, which tags are about to expire."""
from __future__ import annotations

import json
import uuid

import asyncpg

from shared.model import Db

_COLUMNS = """n.id, n.uuid, n.namespace_id, n.repository_id, n.event, n.method, n.title, n.config, n.event_config,
              n.secret, n.number_of_failures, n.disabled_at, n.disabled_reason, n.created_at,
              ns.name AS namespace, r.full_name AS repository"""
_FROM = "notifications n JOIN namespaces ns ON ns.id = n.namespace_id LEFT JOIN repositories r ON r.id = n.repository_id"


def decoded(row: asyncpg.Record) -> dict:
    found = dict(row)
    for key in ("config", "event_config"):
        if isinstance(found.get(key), str):
            found[key] = json.loads(found[key])
    return found


async def create(conn: Db, *, namespace_id: int, repository_id: int | None, event: str, method: str, title: str,
                 config: dict, event_config: dict, secret: str, created_by: int | None) -> uuid.UUID:
    made = uuid.uuid4()
    await conn.execute(
        "INSERT INTO notifications (uuid, namespace_id, repository_id, event, method, title, config, event_config, secret, "
        "created_by) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10)",
        made, namespace_id, repository_id, event, method, title, json.dumps(config), json.dumps(event_config), secret, created_by)
    return made


async def of_repository(db: Db, repository_id: int) -> list[dict]:
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM {_FROM} WHERE n.repository_id = $1 ORDER BY n.created_at, n.id", repository_id)
    return [decoded(r) for r in rows]


async def of_namespace(db: Db, namespace_id: int) -> list[dict]:
    """The namespace's own notifications (for every repository), not its repositories'."""
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM {_FROM} WHERE n.namespace_id = $1 AND n.repository_id IS NULL "
                          "ORDER BY n.created_at, n.id", namespace_id)
    return [decoded(r) for r in rows]


async def get(db: Db, notification_uuid: uuid.UUID, *, namespace_id: int, repository_id: int | None) -> dict | None:
    """One notification of that repository (or of the namespace itself when repository_id is None)."""
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE n.uuid = $1 AND n.namespace_id = $2 AND n.repository_id IS NOT DISTINCT FROM $3",
        notification_uuid, namespace_id, repository_id)
    return decoded(row) if row else None


async def by_uuid(db: Db, notification_uuid: str) -> dict | None:
    try:
        parsed = uuid.UUID(notification_uuid)
    except ValueError:
        return None
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM {_FROM} WHERE n.uuid = $1", parsed)
    return decoded(row) if row else None


async def delete(conn: Db, notification_id: int) -> None:
    await conn.execute("DELETE FROM notifications WHERE id = $1", notification_id)


async def reset(conn: Db, notification_id: int) -> None:
    """Enabled again, its failures forgotten (Quay's POST .../notification/<uuid>)."""
    await conn.execute("UPDATE notifications SET number_of_failures = 0, disabled_at = NULL, disabled_reason = NULL "
                       "WHERE id = $1", notification_id)


async def matching(db: Db, event: str, *, namespace: str, repository: str | None) -> list[dict]:
    """Enabled notifications for an event: the repository's own and its namespace's."""
    rows = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM {_FROM}
        WHERE n.event = $1 AND n.disabled_at IS NULL AND ns.name = $2 AND ns.deleted_at IS NULL
          AND (n.repository_id IS NULL OR (r.full_name = $3 AND r.state <> 'deleted'))
        ORDER BY n.id
        """,
        event, namespace, repository)
    return [decoded(r) for r in rows]


async def delivered(db: Db, notification_id: int, event_id: str) -> bool:
    """Already delivered (a redelivered event is not sent twice)."""
    return bool(await db.fetchval(
        "SELECT true FROM notification_deliveries WHERE notification_id = $1 AND event_id = $2 AND ok LIMIT 1",
        notification_id, event_id))


async def record_attempt(db: Db, notification_id: int, *, event_id: str, event: str, attempt: int, ok: bool,
                         status_code: int | None, duration_ms: int | None, error: str | None, test: bool, keep: int) -> None:
    await db.execute(
        "INSERT INTO notification_deliveries (notification_id, event_id, event, attempt, ok, status_code, duration_ms, error, test) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        notification_id, event_id, event, attempt, ok, status_code, duration_ms, error, test)
    await db.execute(
        "DELETE FROM notification_deliveries WHERE notification_id = $1 AND id < ("
        "  SELECT id FROM notification_deliveries WHERE notification_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)",
        notification_id, keep - 1)


async def succeeded(db: Db, notification_id: int) -> None:
    await db.execute("UPDATE notifications SET number_of_failures = 0 WHERE id = $1 AND disabled_at IS NULL AND number_of_failures > 0",
                     notification_id)


async def failed(db: Db, notification_id: int, error: str, max_failures: int) -> bool:
    """One more event that could not be delivered; returns whether the notification is now disabled."""
    row = await db.fetchrow(
        """
        UPDATE notifications SET number_of_failures = number_of_failures + 1,
               disabled_at = CASE WHEN number_of_failures + 1 >= $3 THEN now() END,
               disabled_reason = CASE WHEN number_of_failures + 1 >= $3
                                      THEN 'disabled after ' || (number_of_failures + 1)
                                           || ' events in a row could not be delivered; last: ' || $2 END
        WHERE id = $1 AND disabled_at IS NULL RETURNING disabled_at IS NOT NULL AS disabled
        """,
        notification_id, error[:500], max_failures)
    return bool(row and row["disabled"])


async def history(db: Db, notification_id: int, limit: int) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT event_id, event, attempt, ok, status_code, duration_ms, error, test, at FROM notification_deliveries "
        "WHERE notification_id = $1 ORDER BY id DESC LIMIT $2", notification_id, limit)


async def expiring_tags(db: Db, limit: int = 5000) -> list[asyncpg.Record]:
    """Live tags that expire within an enabled repo_image_expiry notification's days and that it has
    not announced yet: notification id, uuid, event config, repository, tag row id, tag name."""
    return await db.fetch(
        """
        SELECT n.id AS notification_id, n.uuid, n.event_config, r.full_name AS repository, t.id AS tag_id, t.name
        FROM notifications n
        JOIN repositories r ON r.state <> 'deleted'
             AND (r.id = n.repository_id OR (n.repository_id IS NULL AND r.namespace_id = n.namespace_id))
        JOIN tags t ON t.repository_id = r.id AND t.lifetime_end IS NULL AND t.expires_at > now()
             AND t.expires_at <= now() + make_interval(days => (n.event_config->>'days')::int)
        WHERE n.event = 'repo_image_expiry' AND n.disabled_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM notification_expiry_sent s WHERE s.notification_id = n.id AND s.tag_id = t.id)
        ORDER BY n.id, r.full_name, t.name LIMIT $1
        """,
        limit)


async def mark_expiry_sent(conn: Db, notification_id: int, tag_ids: list[int]) -> list[int]:
    """Claim tags for an announcement; returns those not claimed before (another notifier may race)."""
    rows = await conn.fetch(
        "INSERT INTO notification_expiry_sent (notification_id, tag_id) SELECT $1, unnest($2::bigint[]) "
        "ON CONFLICT DO NOTHING RETURNING tag_id", notification_id, tag_ids)
    return [r["tag_id"] for r in rows]
