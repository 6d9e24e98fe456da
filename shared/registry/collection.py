"""What garbage collection reads and deletes (services/gc/collector.py runs the passes and holds the
locks). Each deleting function runs in the caller's Change and writes the events of what went."""
from __future__ import annotations

import asyncpg

from shared.messages import ManifestDeleted, TagDeleted
from shared.model import Db

from . import blobs, quota
from .change import Change
from .repositories import Repo


def _window(default_s: int) -> str:
    # The namespace's time-machine window, or the registry's default.
    return f"make_interval(secs => coalesce(n.tag_expiration_s, {int(default_s)}))"


async def end_expired_tags(change: Change, *, namespace_id: int | None = None) -> int:
    """Current tags whose expiry passed are ended at their expiry (pulls stopped serving them then),
    in every namespace or one; the namespaces' usage follows."""
    if namespace_id is None:
        found = await change.conn.fetch(
            "SELECT DISTINCT n.id, n.name FROM tags t JOIN repositories r ON r.id = t.repository_id "
            "JOIN namespaces n ON n.id = r.namespace_id "
            "WHERE t.lifetime_end IS NULL AND t.expires_at <= now() AND r.state <> 'deleted'")
        await quota.lock_namespaces(change, [(r["id"], r["name"]) for r in found])
        namespaces = [r["id"] for r in found]
        scope = "(r.state = 'deleted' OR r.namespace_id = ANY($1::bigint[]))"  # only namespaces locked above
    else:
        namespaces = [namespace_id]
        scope = "r.state <> 'deleted' AND r.namespace_id = ANY($1::bigint[])"
    rows = await change.conn.fetch(
        "UPDATE tags t SET lifetime_end = t.expires_at FROM manifests m, repositories r "
        "WHERE m.id = t.manifest_id AND r.id = t.repository_id AND t.lifetime_end IS NULL AND t.expires_at <= now() "
        f"AND {scope} RETURNING r.id AS repository_id, r.full_name, r.namespace_id, r.state, t.name, m.digest, m.id AS manifest_id",
        namespaces)
    ended: dict[Repo, dict[int, int]] = {}
    for row in rows:
        if row["state"] != "deleted":
            counts = ended.setdefault(Repo(row["repository_id"], row["full_name"], row["namespace_id"]), {})
            counts[row["manifest_id"]] = counts.get(row["manifest_id"], 0) - 1
    for repo, references in ended.items():
        await quota.references_changed(change, repo, references)
    await quota.settle(change)
    await change.emit_many(change.subjects.tag_deleted, [
        TagDeleted(repository=r["full_name"], tag=r["name"], digest=r["digest"], region=change.region,
                   deleted_at=change.at, reason="expired", actor=change.actor) for r in rows])
    return len(rows)


async def repositories_to_collect(db: Db, temp_s: float, default_window_s: int) -> list[tuple[int, str]]:
    """Repositories with tag history past its window, unreferenced manifests or unused blob links."""
    rows = await db.fetch(
        f"""
        SELECT DISTINCT r.id, r.full_name FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
        WHERE r.state <> 'deleted' AND (
            EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = r.id AND t.lifetime_end IS NOT NULL
                    AND (t.time_machine_expired OR t.lifetime_end < now() - {_window(default_window_s)}))
         OR EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id AND m.created_at < now() - make_interval(secs => $1)
                    AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
                    AND NOT EXISTS (SELECT 1 FROM manifest_children c WHERE c.child_id = m.id))
         OR EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = r.id
                    AND rb.created_at < now() - make_interval(secs => $1)
                    AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb JOIN manifests m ON m.id = mb.manifest_id
                                    WHERE mb.blob_id = rb.blob_id AND m.repository_id = r.id)))
        ORDER BY r.id
        """,
        temp_s,
    )
    return [(r["id"], r["full_name"]) for r in rows]


async def delete_expired_history(change: Change, repo_id: int, default_window_s: int) -> int:
    """Tag rows past their end plus the window (or expired permanently): out of the time machine."""
    return await change.conn.fetchval(
        f"""
        WITH gone AS (
            DELETE FROM tags t USING repositories r JOIN namespaces n ON n.id = r.namespace_id
            WHERE t.repository_id = $1 AND r.id = t.repository_id AND t.lifetime_end IS NOT NULL
              AND (t.time_machine_expired OR t.lifetime_end < now() - {_window(default_window_s)})
            RETURNING 1)
        SELECT count(*) FROM gone
        """,
        repo_id,
    )


async def delete_unreferenced_manifests(change: Change, repo_id: int, full_name: str, temp_s: float) -> list[str]:
    """One round: manifests no tag, index or present subject references, older than the push window.
    (An index that goes frees its children, a subject its referrers: the caller repeats until none.)
    A manifest pushed by digest and never referenced counted until now: usage drops with it."""
    namespace_id = await change.conn.fetchval("SELECT namespace_id FROM repositories WHERE id = $1", repo_id)
    repo = Repo(repo_id, full_name, namespace_id)
    await quota.lock(change, repo)  # no tag or manifest of the namespace changes until this commits
    ids = [r["id"] for r in await change.conn.fetch(
        """
        SELECT m.id FROM manifests m
        WHERE m.repository_id = $1 AND m.created_at < now() - make_interval(secs => $2)
          AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
          AND NOT EXISTS (SELECT 1 FROM manifest_children c WHERE c.child_id = m.id)
          AND (m.subject_digest IS NULL OR NOT EXISTS (
                SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest))
        FOR UPDATE
        """,
        repo_id, temp_s)]
    if not ids:
        return []
    await quota.manifests_removed(change, repo, ids)
    rows = await change.conn.fetch("DELETE FROM manifests WHERE id = ANY($1::bigint[]) RETURNING digest", ids)
    await quota.settle(change, repository=full_name)
    await change.emit_many(change.subjects.manifest_deleted, [
        ManifestDeleted(repository=full_name, digest=r["digest"], region=change.region, deleted_at=change.at,
                        actor=change.actor, reason="collected") for r in rows])
    return [r["digest"] for r in rows]


async def unlink_unused_blobs(change: Change, repo_id: int, temp_s: float) -> int:
    """Links to blobs no manifest of the repository uses, older than the push window; the blobs
    become candidates of the sweep."""
    return await change.conn.fetchval(
        """
        WITH gone AS (
            DELETE FROM repository_blobs rb WHERE rb.repository_id = $1
              AND rb.created_at < now() - make_interval(secs => $2)
              AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb JOIN manifests m ON m.id = mb.manifest_id
                              WHERE mb.blob_id = rb.blob_id AND m.repository_id = $1)
            RETURNING rb.blob_id
        ), candidate AS (
            INSERT INTO gc_blob_candidates (blob_id) SELECT blob_id FROM gone ON CONFLICT DO NOTHING
        )
        SELECT count(*) FROM gone
        """,
        repo_id, temp_s,
    )


async def deleted_repositories(db: Db, namespace_id: int | None, limit: int) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT id, full_name FROM repositories WHERE state = 'deleted' AND ($1::bigint IS NULL OR namespace_id = $1) "
        "ORDER BY id LIMIT $2", namespace_id, limit)


async def purge_repository(change: Change, repo_id: int) -> dict[str, list[str]]:
    """Remove a deleted repository's rows (tags, manifests, links, permissions cascade); its blobs
    become sweep candidates. Returns location -> its upload sessions, whose chunks must go too."""
    rows = await change.conn.fetch(
        "SELECT u.id::text AS id, l.name FROM upload_sessions u JOIN storage_locations l ON l.id = u.location_id "
        "WHERE u.repository_id = $1", repo_id)
    chunks: dict[str, list[str]] = {}
    for row in rows:
        chunks.setdefault(row["name"], []).append(row["id"])
    await change.conn.execute(
        "INSERT INTO gc_blob_candidates (blob_id) SELECT blob_id FROM repository_blobs WHERE repository_id = $1 "
        "ON CONFLICT DO NOTHING", repo_id)
    await change.conn.execute("DELETE FROM repositories WHERE id = $1", repo_id)
    return chunks


async def deleted_namespaces(db: Db, limit: int) -> list[asyncpg.Record]:
    return await db.fetch("SELECT id, name FROM namespaces WHERE deleted_at IS NOT NULL ORDER BY id LIMIT $1", limit)


async def has_repositories(db: Db, namespace_id: int) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM repositories WHERE namespace_id = $1 LIMIT 1", namespace_id))


async def purge_namespace(change: Change, namespace_id: int) -> None:
    # Robots, teams, permissions, default permissions and replication settings cascade.
    await change.conn.execute("DELETE FROM namespaces WHERE id = $1", namespace_id)


async def blob_candidates(db: Db, temp_s: float, limit: int) -> list[asyncpg.Record]:
    """Blobs that lost a reference, older than the push window: blob_id, digest, size."""
    return await db.fetch(
        "SELECT c.blob_id, b.digest, b.size FROM gc_blob_candidates c JOIN blobs b ON b.id = c.blob_id "
        "WHERE b.created_at < now() - make_interval(secs => $1) ORDER BY c.since LIMIT $2", temp_s, limit)


async def claim_unreferenced(change: Change, blob_id: int, digest: str) -> list[str] | None:
    """Under the digest's exclusive lock (held to the end of the change), re-check a candidate: None
    when something references it again (it stops being a candidate), else the locations holding it."""
    await blobs.lock_exclusive(change, digest)
    referenced = await change.conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM repository_blobs WHERE blob_id = $1) "
        "OR EXISTS (SELECT 1 FROM manifest_blobs WHERE blob_id = $1)", blob_id)
    if referenced:
        await change.conn.execute("DELETE FROM gc_blob_candidates WHERE blob_id = $1", blob_id)
        return None
    rows = await change.conn.fetch(
        "SELECT l.name FROM blob_placements p JOIN storage_locations l ON l.id = p.location_id WHERE p.blob_id = $1",
        blob_id)
    return [r["name"] for r in rows]


async def digests_without_row(db: Db, digests: list[str]) -> list[str]:
    """Which of `digests` no blob row names (storage reconciliation: bytes nothing explains)."""
    rows = await db.fetch(
        "SELECT d FROM unnest($1::text[]) AS d WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = d) ORDER BY d",
        digests)
    return [r["d"] for r in rows]


async def claim_orphan(change: Change, digest: str) -> bool:
    """Under the digest's exclusive lock (held to the end of the change), re-check that no blob row
    names it: a push that is putting these bytes at their address right now holds the lock shared
    until its row is committed, so True means no writer can be about to record them."""
    await blobs.lock_exclusive(change, digest)
    return not await change.conn.fetchval("SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = $1)", digest)


async def forget_blob(change: Change, blob_id: int) -> None:
    """Its bytes are gone everywhere: the row goes (placements, candidate cascade)."""
    await change.conn.execute("DELETE FROM blobs WHERE id = $1", blob_id)


async def keep_placements(change: Change, blob_id: int, locations: list[str]) -> None:
    """Deletion failed in `locations`: keep the row and those placements only; the next pass retries."""
    await change.conn.execute(
        "DELETE FROM blob_placements p USING storage_locations l WHERE p.location_id = l.id "
        "AND p.blob_id = $1 AND NOT (l.name = ANY($2::text[]))", blob_id, locations)


async def remove_stale_uploads(change: Change, max_age_s: float, empty_max_age_s: float) -> dict[str, list[str]]:
    """Upload sessions untouched for max_age_s, and sessions that never received a byte for
    empty_max_age_s: location -> their ids (whose chunks must go)."""
    rows = await change.conn.fetch(
        "DELETE FROM upload_sessions u USING storage_locations l WHERE l.id = u.location_id "
        "AND (u.updated_at < now() - make_interval(secs => $1) "
        "     OR (u.size = 0 AND u.updated_at < now() - make_interval(secs => $2))) "
        "RETURNING u.id::text AS id, l.name",
        max_age_s, empty_max_age_s)
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["name"], []).append(row["id"])
    return found
