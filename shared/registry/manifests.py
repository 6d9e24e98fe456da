"""Manifests: stored whole in the database (bytes, media type, artifact type, subject), with their
references to blobs (images) and to other manifests (indexes). `put` records one with its tags and
writes manifest.pushed; `delete` ends its tags and removes it, writing manifest.deleted."""
from __future__ import annotations

import collections
import datetime as dt
import json
from dataclasses import dataclass, field

import asyncpg

from shared.errors import RegistryError, still_referenced_error
from shared.messages import ManifestDeleted, ManifestPushed
from shared.model import Db, labels

from . import lookups, quota, tags
from .change import Change
from .lookups import Lookups
from .repositories import Repo


@dataclass(frozen=True)
class StoredManifest:
    """A manifest as a pull sees it; its bytes are read with `body_of` (cached: they never change)."""

    id: int
    digest: str
    media_type: str
    size: int
    subject_digest: str | None
    repository_id: int = 0
    namespace_id: int = 0


_COLUMNS = "m.id, m.digest, m.media_type, m.size, m.subject_digest, r.id AS repository_id, r.namespace_id"


def _manifest(row) -> StoredManifest | None:
    if row is None:
        return None
    return StoredManifest(row["id"], row["digest"], row["media_type"], row["size"], row["subject_digest"],
                          row["repository_id"], row["namespace_id"])


async def get_by_tag(db: Db, full_name: str, tag: str, kept: Lookups[StoredManifest] | None = None) -> StoredManifest | None:
    """The manifest a live tag names; from `kept` (the process's lookup cache) when it has it. A tag
    with an expiry is never kept: the database's clock decides when it ends."""
    return await _looked_up(db, kept, (full_name, tag), f"""
        SELECT {_COLUMNS}, t.expires_at FROM repositories r
        JOIN tags t ON t.repository_id = r.id AND t.name = $2 AND t.lifetime_end IS NULL
                   AND (t.expires_at IS NULL OR t.expires_at > now())
        JOIN manifests m ON m.id = t.manifest_id
        WHERE r.full_name = $1 AND r.state <> 'deleted'
        """, full_name, tag)


async def get_by_digest(db: Db, full_name: str, digest: str, kept: Lookups[StoredManifest] | None = None) -> StoredManifest | None:
    """The manifest of a digest in a repository; from `kept` when it has it (a digest's key holds a
    ':', a tag's cannot, so they share the cache)."""
    return await _looked_up(db, kept, (full_name, digest), f"""
        SELECT {_COLUMNS} FROM repositories r
        JOIN manifests m ON m.repository_id = r.id AND m.digest = $2
        WHERE r.full_name = $1 AND r.state <> 'deleted'
        """, full_name, digest)


async def _looked_up(db: Db, kept: Lookups[StoredManifest] | None, key: tuple[str, str], sql: str,
                     *args: object) -> StoredManifest | None:
    """`sql`'s manifest, from `kept` when it holds `key`; kept afterwards unless the row has an expiry."""
    ticket = 0
    if kept is not None:
        hit = await kept.find(key)
        if hit is not None:
            return hit
        ticket = kept.ticket()
    row = await db.fetchrow(sql, *args)
    manifest = _manifest(row)
    if kept is not None and row is not None and manifest is not None and row.get("expires_at") is None:
        kept.keep(key, manifest, ticket)
    return manifest


class _Bodies:
    """Manifest bytes by digest, least recently used first out, bounded in bytes. The bytes of a digest
    are the same wherever they are stored, so an entry cannot go stale: which manifest a tag or a
    digest means in a repository, and whether it still exists, is always read from the database; only
    the bytes come from here."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._entries: collections.OrderedDict[str, bytes] = collections.OrderedDict()

    def get(self, digest: str) -> bytes | None:
        body = self._entries.get(digest)
        if body is not None:
            self._entries.move_to_end(digest)
        return body

    def put(self, digest: str, body: bytes) -> None:
        if len(body) > self.capacity // 8 or digest in self._entries:
            return
        self._entries[digest] = body
        self.size += len(body)
        while self.size > self.capacity:
            _, dropped = self._entries.popitem(last=False)
            self.size -= len(dropped)


BODIES = _Bodies(32 << 20)  # per process


async def body_of(db: Db, manifest: StoredManifest) -> bytes | None:
    """The manifest's bytes; None when it was deleted since it was looked up."""
    body = BODIES.get(manifest.digest)
    if body is None:
        body = await db.fetchval("SELECT body FROM manifests WHERE id = $1", manifest.id)
        if body is not None:
            BODIES.put(manifest.digest, body)
    return body


async def id_of(db: Db, repository_id: int, digest: str) -> int | None:
    return await db.fetchval("SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2", repository_id, digest)


async def ids_in_repository(db: Db, repository_id: int, digests: list[str]) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT digest, id FROM manifests WHERE repository_id = $1 AND digest = ANY($2::text[])", repository_id, digests)
    return {r["digest"]: r["id"] for r in rows}


@dataclass
class NewManifest:
    """A parsed, validated manifest whose references were found in the repository."""

    digest: str
    media_type: str
    body: bytes
    artifact_type: str | None = None
    config_media_type: str | None = None
    subject_digest: str | None = None
    annotations: dict | None = None
    blob_ids: list[int] = field(default_factory=list)
    child_ids: list[int] = field(default_factory=list)
    # The manifest's bytes plus those of every blob (image) or child manifest (index) it lists.
    total_size: int = 0
    labels: dict[str, str] = field(default_factory=dict)  # imported from the image config
    expires_at: dt.datetime | None = None  # from the quay.expires-after label


_INSERT = """
WITH ins AS (
    INSERT INTO manifests (repository_id, digest, media_type, artifact_type, config_media_type,
                           subject_digest, annotations, size, body)
    VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
    ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id
)
SELECT id, true AS inserted FROM ins UNION ALL SELECT id, false FROM manifests WHERE repository_id = $1 AND digest = $2
LIMIT 1
"""


async def _insert(conn, repo: Repo, manifest: NewManifest) -> tuple[int, bool]:
    """(manifest id, whether this call stored it). See fetch_id_retrying for why it may take a retry."""
    for _ in range(5):
        row = await conn.fetchrow(
            _INSERT, repo.id, manifest.digest, manifest.media_type, manifest.artifact_type, manifest.config_media_type,
            manifest.subject_digest, json.dumps(manifest.annotations) if manifest.annotations is not None else None,
            len(manifest.body), manifest.body)
        if row is not None:
            return row["id"], row["inserted"]
    raise RuntimeError("insert-or-select found no manifest row after retries")


async def _check_references_still_there(conn, repo: Repo, manifest: NewManifest) -> None:
    """Under the namespace lock, which deletes of blobs and manifests also take: the blobs and child
    manifests found before the change are still in the repository (a delete that ran meanwhile makes
    this push fail cleanly instead of storing an image that cannot be pulled)."""
    if manifest.blob_ids:
        missing = await conn.fetchval(
            "SELECT b.digest FROM blobs b WHERE b.id = ANY($2::bigint[]) AND NOT EXISTS "
            "(SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = $1 AND rb.blob_id = b.id) LIMIT 1",
            repo.id, manifest.blob_ids)
        if missing is not None or len(set(manifest.blob_ids)) > await conn.fetchval(
                "SELECT count(*) FROM blobs WHERE id = ANY($1::bigint[])", manifest.blob_ids):
            raise unknown_reference("blob", missing or "(deleted meanwhile)", repo.full_name)
    if manifest.child_ids:
        found = await conn.fetchval(
            "SELECT count(*) FROM manifests WHERE repository_id = $1 AND id = ANY($2::bigint[])", repo.id, manifest.child_ids)
        if found < len(set(manifest.child_ids)):
            raise unknown_reference("manifest", "(a child deleted meanwhile)", repo.full_name)


async def put(change: Change, repo: Repo, manifest: NewManifest, tag_names: list[str]) -> int:
    """Store the manifest (idempotent by digest), import its labels once, point the tags at it; writes
    tag.changed per tag that moved and manifest.pushed. Counts it in the namespace's usage and applies
    the quota (QuotaExceeded rolls the whole change back). Returns the manifest id."""
    conn = change.conn
    await quota.lock(change, repo)  # first: every change of this namespace's usage queues here
    if change.quota_policy.enforce:
        from .collection import end_expired_tags

        await end_expired_tags(change, namespace_id=repo.namespace_id)  # what has expired no longer counts
    await _check_references_still_there(conn, repo, manifest)
    manifest_id, inserted = await _insert(conn, repo, manifest)
    if manifest.blob_ids:
        await conn.execute(
            "INSERT INTO manifest_blobs (manifest_id, blob_id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
            manifest_id, manifest.blob_ids)
    if manifest.child_ids:
        await conn.execute(
            "INSERT INTO manifest_children (parent_id, child_id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
            manifest_id, manifest.child_ids)
    if inserted:
        await quota.manifest_added(change, repo, manifest_id, manifest.subject_digest)
    elif not tag_names:
        await quota.manifest_pushed_again(change, repo, manifest_id)
    if manifest.labels and not await labels.has_imported(conn, manifest_id):
        for key, value in manifest.labels.items():
            await labels.add(conn, manifest_id, key, value, "text/plain", "manifest")
    for name in tag_names:
        await tags.put(change, repo, name, manifest_id, manifest.digest, expires_at=manifest.expires_at, settle=False)
    await quota.settle(change, repository=repo.full_name)
    await change.emit(change.subjects.manifest_pushed, ManifestPushed(
        repository=repo.full_name, namespace=repo.namespace, digest=manifest.digest, media_type=manifest.media_type,
        artifact_type=manifest.artifact_type, subject=manifest.subject_digest, size=manifest.total_size,
        tags=list(tag_names), pusher=change.actor, region=change.region, pushed_at=change.at))
    return manifest_id


async def delete(change: Change, repo: Repo, digest: str) -> list[str] | None:
    """Delete a manifest by digest and end the tags that point at it (they stay in the history until
    gc); None when the repository has no such manifest. Writes tag.deleted per live tag and
    manifest.deleted; usage drops at once."""
    await quota.lock(change, repo)
    manifest_id = await id_of(change.conn, repo.id, digest)
    if manifest_id is None:
        return None
    parents = await change.conn.fetch(
        "SELECT p.digest FROM manifest_children c JOIN manifests p ON p.id = c.parent_id WHERE c.child_id = $1 "
        "ORDER BY p.digest", manifest_id)
    if parents:  # an index still lists it: deleting it would break that index's pulls
        raise still_referenced_error("manifest", digest, [r["digest"] for r in parents])
    ended = await tags.end_all_of_manifest(change, repo, manifest_id, digest)
    lookups.changed()  # the digest no longer resolves
    await quota.manifests_removed(change, repo, [manifest_id])
    await change.conn.execute("DELETE FROM manifests WHERE id = $1", manifest_id)
    await quota.settle(change, repository=repo.full_name)
    await change.emit(change.subjects.manifest_deleted, ManifestDeleted(
        repository=repo.full_name, digest=digest, tags=ended, region=change.region, deleted_at=change.at,
        actor=change.actor))
    return ended


async def referrers(db: Db, full_name: str, subject: str, artifact_type: str | None) -> list[dict]:
    rows = await db.fetch(
        """
        SELECT m.digest, m.media_type, m.size, coalesce(m.artifact_type, m.config_media_type) AS artifact_type,
               m.annotations
        FROM repositories r JOIN manifests m ON m.repository_id = r.id AND m.subject_digest = $2
        WHERE r.full_name = $1 AND r.state <> 'deleted'
          AND ($3::text IS NULL OR coalesce(m.artifact_type, m.config_media_type) = $3)
        ORDER BY m.created_at, m.id
        """,
        full_name, subject, artifact_type,
    )
    out = []
    for r in rows:
        descriptor = {"mediaType": r["media_type"], "digest": r["digest"], "size": r["size"]}
        if r["artifact_type"]:
            descriptor["artifactType"] = r["artifact_type"]
        if r["annotations"]:
            descriptor["annotations"] = json.loads(r["annotations"])
        out.append(descriptor)
    return out


async def blob_placements(db: Db, manifest_id: int) -> list[asyncpg.Record]:
    """Every blob of a manifest (and of its children, for an index) with the locations holding it."""
    return await db.fetch(
        """
        WITH RECURSIVE tree(id) AS (
            SELECT $1::bigint UNION SELECT c.child_id FROM manifest_children c JOIN tree t ON c.parent_id = t.id
        )
        SELECT b.digest, b.size, coalesce(array_agg(l.name ORDER BY l.name) FILTER (WHERE l.name IS NOT NULL), '{}') AS locations
        FROM tree JOIN manifest_blobs mb ON mb.manifest_id = tree.id JOIN blobs b ON b.id = mb.blob_id
        LEFT JOIN blob_placements p ON p.blob_id = b.id LEFT JOIN storage_locations l ON l.id = p.location_id
        GROUP BY b.digest, b.size ORDER BY b.digest
        """,
        manifest_id,
    )


def unknown_reference(kind: str, digest: str, repository: str) -> RegistryError:
    return RegistryError("MANIFEST_BLOB_UNKNOWN", f"{kind} {digest} is not in {repository}", detail={"digest": digest})
