"""Counts the services publish as Prometheus gauges."""
from __future__ import annotations

from shared.model import Db


async def open_upload_count(conn: Db) -> int:
    """Upload sessions not yet completed, cancelled or cleaned up by gc."""
    return await conn.fetchval("SELECT count(*) FROM upload_sessions")
