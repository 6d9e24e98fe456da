"""Tags are never updated in place: moving or deleting a tag ends its row (`lifetime_end`) and may
start a new one, which is the tag history the time machine restores from. A live row whose
`expires_at` has passed is no longer served; it is ended at its expiry when next touched or by gc.

Every change writes its event: tag.changed (created, moved, restored) or tag.deleted."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

from shared.messages import TagChanged, TagDeleted
from shared.model import Conn, Db

from . import lookups, quota
from .change import Change
from .repositories import Repo

# The row that currently holds a tag name (at most one, enforced by the tags_live index) ...
CURRENT = "lifetime_end IS NULL"
# ... and whether it is served.
LIVE = "lifetime_end IS NULL AND (expires_at IS NULL OR expires_at > now())"
# When a current row ends: now, or its expiry if that came first.
END_AT = "LEAST(expires_at, clock_timestamp())"


async def _lock(conn: Conn, repository_id: int, name: str) -> None:
    # Serialises changes of one tag so exactly one current row exists and history stays linear.
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", repository_id, name)


async def put(change: Change, repo: Repo, name: str, manifest_id: int, digest: str, *,
              expires_at: dt.datetime | None = None, reversion: bool = False, settle: bool = True) -> bool:
    """Point a tag at a manifest; returns whether it changed (and then wrote tag.changed). Usage
    follows (the quota applies unless the caller settles it itself: `settle=False`)."""
    conn = change.conn
    await quota.lock(change, repo)
    await _lock(conn, repo.id, name)
    current = await conn.fetchrow(
        f"SELECT t.id, t.manifest_id, ({LIVE}) AS live, t.expires_at, m.digest FROM tags t "
        f"JOIN manifests m ON m.id = t.manifest_id WHERE t.repository_id = $1 AND t.name = $2 AND t.{CURRENT}",
        repo.id, name,
    )
    if current is not None and current["live"] and current["manifest_id"] == manifest_id and not reversion:
        if expires_at is not None and current["expires_at"] != expires_at:
            await conn.execute("UPDATE tags SET expires_at = $2 WHERE id = $1", current["id"], expires_at)
            lookups.changed()
        return False
    references = {manifest_id: 1}
    lookups.changed()
    if current is not None:
        await conn.execute(f"UPDATE tags SET lifetime_end = {END_AT} WHERE id = $1", current["id"])
        references[current["manifest_id"]] = references.get(current["manifest_id"], 0) - 1
    await conn.execute(
        "INSERT INTO tags (repository_id, name, manifest_id, expires_at, reversion) VALUES ($1, $2, $3, $4, $5)",
        repo.id, name, manifest_id, expires_at, reversion,
    )
    await quota.references_changed(change, repo, references)
    if settle:
        await quota.settle(change, repository=repo.full_name)
    previous = current["digest"] if current is not None and current["live"] else None
    kind = "restored" if reversion else ("moved" if previous else "created")
    await change.emit(change.subjects.tag_changed, TagChanged(
        repository=repo.full_name, tag=name, digest=digest, previous=previous, kind=kind, region=change.region,
        changed_at=change.at, actor=change.actor))
    return True


async def delete(change: Change, repo: Repo, name: str) -> bool:
    """End the tag; False when it was not live (an expired row is ended at its expiry all the same).
    Usage drops at once."""
    await quota.lock(change, repo)
    await _lock(change.conn, repo.id, name)
    row = await change.conn.fetchrow(
        f"UPDATE tags t SET lifetime_end = {END_AT} FROM manifests m "
        f"WHERE m.id = t.manifest_id AND t.repository_id = $1 AND t.name = $2 AND t.{CURRENT} "
        "RETURNING t.expires_at IS NULL OR t.expires_at > now() AS was_live, m.digest, m.id AS manifest_id",
        repo.id, name,
    )
    if row is None:
        return False
    await quota.references_changed(change, repo, {row["manifest_id"]: -1})
    await quota.settle(change, repository=repo.full_name)
    if not row["was_live"]:  # an expired tag, never kept by a lookup cache: nothing to wait for
        return False
    lookups.changed()
    await change.emit(change.subjects.tag_deleted, TagDeleted(
        repository=repo.full_name, tag=name, digest=row["digest"], region=change.region, deleted_at=change.at,
        actor=change.actor))
    return True


async def end_all_of_manifest(change: Change, repo: Repo, manifest_id: int, digest: str) -> list[str]:
    """End every current tag of a manifest that is being deleted; returns their names."""
    await quota.lock(change, repo)
    rows = await change.conn.fetch(
        f"UPDATE tags SET lifetime_end = {END_AT} WHERE manifest_id = $1 AND {CURRENT} "
        "RETURNING name, expires_at IS NULL OR expires_at > now() AS was_live",
        manifest_id,
    )
    if rows:
        lookups.changed()
    await quota.references_changed(change, repo, {manifest_id: -len(rows)})
    await change.emit_many(change.subjects.tag_deleted, [
        TagDeleted(repository=repo.full_name, tag=r["name"], digest=digest, region=change.region, deleted_at=change.at,
                   reason="manifest_deleted", actor=change.actor) for r in rows if r["was_live"]])
    return [r["name"] for r in rows]


async def set_expiration(change: Change, repository_id: int, names: list[str], expires_at: dt.datetime | None) -> list[str]:
    """Set (or clear, with None) the expiry of live tags; returns the names that were not live."""
    missing = []
    for name in sorted(set(names)):
        await _lock(change.conn, repository_id, name)
        done = await change.conn.fetchval(
            f"UPDATE tags SET expires_at = $3 WHERE repository_id = $1 AND name = $2 AND {LIVE} RETURNING id",
            repository_id, name, expires_at,
        )
        if done is None:
            missing.append(name)
        else:
            lookups.changed()
    return missing


async def restore(change: Change, repo: Repo, name: str, manifest_id: int, digest: str, window_s: int) -> bool:
    """Point the tag back at a manifest it held inside the time-machine window; False when it did
    not (or that history was expired permanently)."""
    inside = await change.conn.fetchval(
        "SELECT 1 FROM tags WHERE repository_id = $1 AND name = $2 AND manifest_id = $3 AND NOT time_machine_expired "
        "AND coalesce(lifetime_end, expires_at, 'infinity') >= now() - make_interval(secs => $4) LIMIT 1",
        repo.id, name, manifest_id, window_s)
    if inside is None:
        return False
    await put(change, repo, name, manifest_id, digest, reversion=True)
    return True


async def expire_history(change: Change, repository_id: int, name: str, manifest_id: int | None) -> int:
    """Take ended rows of a tag (all, or those of one manifest) out of the time machine; how many."""
    return await change.conn.fetchval(
        "WITH done AS (UPDATE tags SET time_machine_expired = true WHERE repository_id = $1 AND name = $2 "
        "AND lifetime_end IS NOT NULL AND NOT time_machine_expired AND ($3::bigint IS NULL OR manifest_id = $3) "
        "RETURNING 1) SELECT count(*) FROM done", repository_id, name, manifest_id)


async def is_live(db: Db, repository_id: int, name: str) -> bool:
    return bool(await db.fetchval(f"SELECT true FROM tags WHERE repository_id = $1 AND name = $2 AND {LIVE}",
                                  repository_id, name))


async def list_live(db: Db, repository_id: int, last: str | None, limit: int) -> list[str]:
    rows = await db.fetch(
        f"SELECT name FROM tags WHERE repository_id = $1 AND {LIVE} AND name > $2 ORDER BY name LIMIT $3",
        repository_id, last or "", limit,
    )
    return [r["name"] for r in rows]


async def live_with_manifests(db: Db, repository_id: int, limit: int) -> list[asyncpg.Record]:
    """Live tags with their manifest digest and size, by name (the repository view)."""
    return await db.fetch(
        "SELECT t.name, m.digest, m.size, t.lifetime_start FROM tags t JOIN manifests m ON m.id = t.manifest_id "
        f"WHERE t.repository_id = $1 AND t.{LIVE} ORDER BY t.name LIMIT $2",
        repository_id, limit,
    )


async def window_s(db: Db, namespace_id: int, default_s: int) -> int:
    """The namespace's time-machine window in seconds."""
    seconds = await db.fetchval("SELECT tag_expiration_s FROM namespaces WHERE id = $1", namespace_id)
    return seconds if seconds is not None else default_s


# History rows: the tag, its manifest and the manifest's size with every blob it references.
_HISTORY_ROW = """
SELECT t.id, t.name, t.reversion, t.lifetime_start, t.lifetime_end, t.expires_at,
       t.lifetime_end IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) AS live,
       m.digest, m.media_type, m.size + coalesce((SELECT sum(b.size) FROM manifest_blobs mb JOIN blobs b ON b.id = mb.blob_id
                                                  WHERE mb.manifest_id = m.id), 0)::bigint AS size
FROM tags t JOIN manifests m ON m.id = t.manifest_id
"""


@dataclass
class HistoryFilter:
    specific: str | None = None  # exactly this tag
    equals: str | None = None
    contains: str | None = None
    only_active: bool = False
    alive_from: dt.datetime | None = None  # rows alive at some moment of [alive_from, alive_until)
    alive_until: dt.datetime | None = None


async def history(db: Db, repository_id: int, where: HistoryFilter, limit: int, offset: int) -> list[asyncpg.Record]:
    """Tag rows, newest first."""
    conditions: list[str] = ["t.repository_id = $1"]
    args: list[object] = [repository_id]  # the query's parameters, $1 on
    for value in (where.specific, where.equals):
        if value:
            args.append(value)
            conditions.append(f"t.name = ${len(args)}")
    if where.contains:
        args.append("%" + where.contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        conditions.append(f"t.name LIKE ${len(args)}")
    if where.only_active:
        conditions.append("t.lifetime_end IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())")
    if where.alive_from is not None or where.alive_until is not None:
        args += [where.alive_from or dt.datetime.min.replace(tzinfo=dt.UTC),
                 where.alive_until or dt.datetime.max.replace(tzinfo=dt.UTC)]
        conditions.append(f"t.lifetime_start < ${len(args)} AND coalesce(t.lifetime_end, CASE WHEN t.expires_at <= now() "
                          f"THEN t.expires_at END, 'infinity') > ${len(args) - 1}")
    args += [limit, offset]
    return await db.fetch(
        f"{_HISTORY_ROW} WHERE {' AND '.join(conditions)} ORDER BY t.lifetime_start DESC, t.id DESC "
        f"LIMIT ${len(args) - 1} OFFSET ${len(args)}", *args)


async def live_row(db: Db, repository_id: int, name: str) -> asyncpg.Record | None:
    """The live row of a tag in the history shape."""
    return await db.fetchrow(f"{_HISTORY_ROW} WHERE t.repository_id = $1 AND t.name = $2 AND t.{LIVE}",
                             repository_id, name)


async def first_seen(db: Db, repository_id: int, name: str) -> dt.datetime | None:
    return await db.fetchval("SELECT min(lifetime_start) FROM tags WHERE repository_id = $1 AND name = $2",
                             repository_id, name)
