"""Quota settings in Quay's shape: at most one quota per namespace (limit_bytes), with Warning and
Reject limits in percent of it (at most one Reject). Usage itself is kept by shared/registry/quota.py."""
from __future__ import annotations

import re

import asyncpg

from shared.model import Db

LIMIT_TYPES = ("Warning", "Reject")
# Quay's accepted forms (bitmath): a number, an optional space, an optional unit.
_LIMIT_RE = re.compile(r"^(\d+)\s?(B|KiB|MiB|GiB|TiB|PiB|EiB|ZiB|YiB|Ki|Mi|Gi|Ti|Pi|Ei|Zi|Yi|KB|MB|GB|TB|PB|EB|ZB|YB|K|M|G|T|P|E|Z|Y)?$")
_PREFIXES = "KMGTPEZY"
INVALID_LIMIT = "Invalid limit format, use a number followed by a unit (e.g. 1GiB)"


def parse_limit(text: str) -> int | None:
    """Bytes of "10 GiB", "500MB", "1G" (binary for KiB.., decimal for KB.. and K..), or None."""
    found = _LIMIT_RE.match(text.strip()) if isinstance(text, str) else None
    if not found:
        return None
    number, unit = int(found.group(1)), found.group(2) or "B"
    if unit == "B":
        return number
    power = _PREFIXES.index(unit[0]) + 1
    return number * (1024 ** power if "i" in unit else 1000 ** power)


def human_size(size: int | None) -> str | None:
    """Quay's best-prefix format: '10.0 GiB'."""
    if size is None:
        return None
    value, unit = float(size), "B"
    for prefix in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024:
            break
        value, unit = value / 1024, prefix
    return f"{value:.1f} {unit}" if unit != "B" else f"{size} B"


class QuotaConflict(ValueError):
    """A second quota, a duplicate limit or a second Reject limit (Quay's messages)."""


async def quotas_of(db: Db, namespace_id: int) -> list[asyncpg.Record]:
    return await db.fetch("SELECT id, limit_bytes FROM namespace_quotas WHERE namespace_id = $1", namespace_id)


async def quota(db: Db, namespace_id: int, quota_id: int) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT id, limit_bytes FROM namespace_quotas WHERE namespace_id = $1 AND id = $2",
                             namespace_id, quota_id)


async def limits_of(db: Db, quota_id: int) -> list[asyncpg.Record]:
    return await db.fetch("SELECT id, kind, percent FROM namespace_quota_limits WHERE quota_id = $1 ORDER BY percent, kind",
                          quota_id)


async def limit(db: Db, quota_id: int, limit_id: int) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT id, kind, percent FROM namespace_quota_limits WHERE quota_id = $1 AND id = $2",
                             quota_id, limit_id)


async def create(conn: Db, namespace_id: int, name: str, limit_bytes: int) -> int:
    quota_id = await conn.fetchval(
        "INSERT INTO namespace_quotas (namespace_id, limit_bytes) VALUES ($1, $2) ON CONFLICT (namespace_id) DO NOTHING "
        "RETURNING id", namespace_id, limit_bytes)
    if quota_id is None:
        raise QuotaConflict(f"Organization quota for '{name}' already exists")
    return quota_id


async def set_limit_bytes(conn: Db, quota_id: int, limit_bytes: int) -> None:
    # New thresholds: what was crossed is judged again at the next change.
    await conn.execute("UPDATE namespace_quotas SET limit_bytes = $2 WHERE id = $1", quota_id, limit_bytes)
    await conn.execute("UPDATE namespace_quota_limits SET tripped = false WHERE quota_id = $1", quota_id)


async def delete(conn: Db, quota_id: int) -> None:
    await conn.execute("DELETE FROM namespace_quotas WHERE id = $1", quota_id)


async def add_limit(conn: Db, quota_id: int, kind: str, percent: int) -> int:
    """In the caller's transaction; a conflict aborts it (the caller answers 400, nothing is kept)."""
    try:
        return await conn.fetchval(
            "INSERT INTO namespace_quota_limits (quota_id, kind, percent) VALUES ($1, $2, $3) RETURNING id",
            quota_id, kind, percent)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "namespace_quota_one_reject":
            raise QuotaConflict("Only one quota limit of type 'Reject' allowed.") from None
        raise QuotaConflict("Quota limit already exists") from None


async def change_limit(conn: Db, limit_id: int, kind: str, percent: int) -> None:
    try:
        await conn.execute("UPDATE namespace_quota_limits SET kind = $2, percent = $3, tripped = false WHERE id = $1",
                           limit_id, kind, percent)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "namespace_quota_one_reject":
            raise QuotaConflict("Only one quota limit of type 'Reject' allowed.") from None
        raise QuotaConflict("Quota limit already exists") from None


async def delete_limit(conn: Db, limit_id: int) -> None:
    await conn.execute("DELETE FROM namespace_quota_limits WHERE id = $1", limit_id)
