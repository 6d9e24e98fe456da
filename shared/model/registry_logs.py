"""Registry-wide usage logs for superusers: every row in a time range, newest first, in the same shape
and paging as the per-organisation, per-repository and per-user logs (shared/model/audit.py)."""
from __future__ import annotations

import datetime as dt

from shared.model import Db


async def query(conn: Db, start: dt.datetime, end: dt.datetime, *, performer: str | None = None, kind: str | None = None,
                cursor: tuple[dt.datetime, int] | None = None, limit: int = 100):
    """Rows with start <= datetime < end, newest first, after `cursor` (audit_logs_datetime orders them)."""
    return await conn.fetch(
        """
        SELECT id, kind, namespace, repository, performer, ip, metadata, datetime FROM audit_logs
        WHERE datetime >= $1 AND datetime < $2
          AND ($3::text IS NULL OR performer = $3) AND ($4::text IS NULL OR kind = $4)
          AND ($5::timestamptz IS NULL OR (datetime, id) < ($5, $6))
        ORDER BY datetime DESC, id DESC LIMIT $7
        """,
        start, end, performer, kind, cursor[0] if cursor else None, cursor[1] if cursor else 0, limit,
    )


async def aggregate(conn: Db, start: dt.datetime, end: dt.datetime, *, performer: str | None = None, kind: str | None = None):
    """Counts per kind per UTC day: kind, day, count."""
    return await conn.fetch(
        """
        SELECT kind, date_trunc('day', datetime AT TIME ZONE 'UTC') AS day, count(*) AS count FROM audit_logs
        WHERE datetime >= $1 AND datetime < $2 AND ($3::text IS NULL OR performer = $3) AND ($4::text IS NULL OR kind = $4)
        GROUP BY kind, day ORDER BY day, kind
        """,
        start, end, performer, kind,
    )
