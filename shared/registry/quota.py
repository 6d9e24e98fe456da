"""Exact storage usage per namespace and per repository, and the quota limits enforced on it.

A namespace's usage is the total size of the distinct blobs that its *counted* manifests list (a layer
shared by ten repositories of one organisation counts once); a repository's the same within it. A
manifest is counted while its repository is live and it is

- pinned: stored by a push and not referenced by anything yet (a push by digest: it stays until gc
  collects it, so it counts until then), or
- referenced (`quota_refs` > 0): by its current tag rows, and by counted manifests that list it as a
  child (an index) or that it names as its subject (a referrer follows its subject).

Every domain operation that changes any of that (manifests.put/delete, tags.put/delete, expiry,
gc's collection, repository and namespace deletion) calls in here inside its own transaction, so usage
follows each change at once and cannot drift: the counts per blob (`quota_namespace_blobs`,
`quota_repository_blobs`) tell exactly when a blob's size comes or goes. `check` recomputes everything
from scratch (`meridian quota check`).

Concurrency: the namespace's `namespace_usage` row is locked (FOR UPDATE) first by every change that
may move its usage, before any tag lock, so changes of one namespace are serialised in one order (no
deadlock) and a push compares the usage it leaves behind with the reject limit while nobody else can
change it: two pushes near the limit cannot both pass.

Enforcement (`settle`, with FEATURE_QUOTA_MANAGEMENT): a change that raises usage above the Reject
limit (or DEFAULT_SYSTEM_REJECT_QUOTA_BYTES where the namespace has no quota) is refused with 403
DENIED "Quota has been exceeded on namespace" and rolled back whole. Uploads are checked before the
bytes are kept (`check_room`). Warning limits send quota.warning once per crossing; a refusal sends
quota.rejected once until usage changes again.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from shared.errors import RegistryError
from shared.messages import Actor, QuotaCrossed
from shared.model import Conn, Db

from .change import Change, QuotaPolicy, Registry
from .repositories import Repo

QUOTA_EXCEEDED_MESSAGE = "Quota has been exceeded on namespace"


def policy_for(config) -> QuotaPolicy:
    """The policy of a gateway's changes (gc and replicators never raise usage: they keep the default)."""
    return QuotaPolicy(enforce=config.feature_quota_management,
                       default_reject_bytes=config.default_system_reject_quota_bytes)


# ---------------------------------------------------------------------------------------------
# Limits


@dataclass
class WarningLimit:
    id: int
    percent: int
    threshold: int
    tripped: bool


@dataclass
class Limits:
    limit_bytes: int | None = None  # the quota (100 %), or the system default
    reject_bytes: int | None = None  # usage above this is refused
    reject_percent: int = 100
    warnings: list[WarningLimit] = field(default_factory=list)
    configured: bool = False  # the namespace has a quota of its own


async def limits(db: Db, namespace_id: int | None, policy: QuotaPolicy) -> Limits:
    rows = await db.fetch(
        "SELECT q.limit_bytes, l.id, l.kind, l.percent, l.tripped FROM namespace_quotas q "
        "LEFT JOIN namespace_quota_limits l ON l.quota_id = q.id WHERE q.namespace_id = $1 ORDER BY l.percent",
        namespace_id) if namespace_id is not None else []
    if not rows:
        if policy.default_reject_bytes > 0:
            return Limits(policy.default_reject_bytes, policy.default_reject_bytes)
        return Limits()
    found = Limits(rows[0]["limit_bytes"], configured=True)
    for row in rows:
        if row["id"] is None:
            continue
        threshold = row["limit_bytes"] * row["percent"] // 100
        if row["kind"] == "Reject":
            found.reject_bytes, found.reject_percent = threshold, row["percent"]
        else:
            found.warnings.append(WarningLimit(row["id"], row["percent"], threshold, row["tripped"]))
    return found


class QuotaExceeded(RegistryError):
    """403 DENIED, Quay's message. The change is rolled back; `after_rollback` announces the refusal."""

    def __init__(self, *, namespace_id: int | None, namespace: str, repository: str | None, usage: int, adding: int,
                 found: Limits, actor: Actor) -> None:
        super().__init__("DENIED", QUOTA_EXCEEDED_MESSAGE, detail={}, status=403)
        self.namespace_id, self.namespace, self.repository = namespace_id, namespace, repository
        self.usage, self.adding, self.limits, self.actor = usage, adding, found, actor

    async def after_rollback(self, registry: Registry) -> None:
        """quota.rejected, once until the namespace's usage changes again."""
        if self.namespace_id is None:
            return
        async with registry.change(self.actor) as change:
            first = await change.conn.fetchval(
                "INSERT INTO namespace_usage AS u (namespace_id, reject_notified) VALUES ($1, true) "
                "ON CONFLICT (namespace_id) DO UPDATE SET reject_notified = true WHERE NOT u.reject_notified RETURNING true",
                self.namespace_id)
            if first:
                await change.emit(change.subjects.quota_rejected, QuotaCrossed(
                    namespace=self.namespace, kind="error", usage_bytes=self.usage, adding_bytes=self.adding,
                    limit_bytes=self.limits.limit_bytes or 0, threshold_percent=self.limits.reject_percent,
                    repository=self.repository, region=change.region, at=change.at, actor=self.actor))


# ---------------------------------------------------------------------------------------------
# The namespace lock and what a change did to usage


@dataclass
class _Usage:
    namespace_id: int
    namespace: str
    start: int  # usage when this change locked it (or last settled)
    now: int


async def _lock(change: Change, namespace_id: int, namespace: str) -> _Usage:
    state = change.quota.get(namespace_id)
    if state is not None:
        return state
    conn = change.conn
    size = await conn.fetchval("SELECT size_bytes FROM namespace_usage WHERE namespace_id = $1 FOR UPDATE", namespace_id)
    if size is None:
        await conn.execute("INSERT INTO namespace_usage (namespace_id) VALUES ($1) ON CONFLICT DO NOTHING", namespace_id)
        size = await conn.fetchval("SELECT size_bytes FROM namespace_usage WHERE namespace_id = $1 FOR UPDATE", namespace_id)
    state = change.quota[namespace_id] = _Usage(namespace_id, namespace, size, size)
    return state


async def lock(change: Change, repo: Repo) -> None:
    """Take the namespace's usage lock: first, before any tag lock (one order for every change)."""
    await _lock(change, repo.namespace_id, repo.namespace)


async def lock_namespaces(change: Change, namespaces: list[tuple[int, str]]) -> None:
    for namespace_id, name in sorted(namespaces):  # several at once: in id order
        await _lock(change, namespace_id, name)


async def _add_usage(change: Change, repo: Repo, namespace_delta: int, repository_delta: int) -> None:
    state = await _lock(change, repo.namespace_id, repo.namespace)
    if namespace_delta:
        state.now += namespace_delta
        await change.conn.execute(
            "UPDATE namespace_usage SET size_bytes = size_bytes + $2, reject_notified = false, updated_at = now() "
            "WHERE namespace_id = $1", repo.namespace_id, namespace_delta)
    if repository_delta:
        await change.conn.execute(
            "INSERT INTO repository_usage AS u (repository_id, size_bytes) VALUES ($1, $2) "
            "ON CONFLICT (repository_id) DO UPDATE SET size_bytes = u.size_bytes + EXCLUDED.size_bytes",
            repo.id, repository_delta)


# ---------------------------------------------------------------------------------------------
# Counting manifests in and out

_BLOB_COUNTS = "SELECT blob_id, count(*)::int AS n FROM manifest_blobs WHERE manifest_id = ANY($2::bigint[]) GROUP BY blob_id"


def _count_in_sql(table: str, owner: str) -> str:
    # Rows whose count equals what was added are new: their blob's size arrives.
    return f"""
        WITH b AS ({_BLOB_COUNTS}),
        up AS (INSERT INTO {table} AS q ({owner}, blob_id, refs) SELECT $1, blob_id, n FROM b
               ON CONFLICT ({owner}, blob_id) DO UPDATE SET refs = q.refs + EXCLUDED.refs RETURNING q.blob_id, q.refs)
        SELECT coalesce(sum(bl.size), 0)::bigint FROM up JOIN b ON b.blob_id = up.blob_id JOIN blobs bl ON bl.id = up.blob_id
        WHERE up.refs = b.n
    """


def _count_out_sql(table: str, owner: str) -> str:
    return f"""
        WITH b AS ({_BLOB_COUNTS})
        UPDATE {table} q SET refs = q.refs - b.n FROM b WHERE q.{owner} = $1 AND q.blob_id = b.blob_id
        RETURNING q.blob_id, q.refs
    """


async def _count_blobs(change: Change, repo: Repo, manifest_ids: list[int], counted: bool) -> None:
    conn = change.conn
    deltas = []
    for table, owner, owner_id in (("quota_namespace_blobs", "namespace_id", repo.namespace_id),
                                   ("quota_repository_blobs", "repository_id", repo.id)):
        if counted:
            deltas.append(await conn.fetchval(_count_in_sql(table, owner), owner_id, manifest_ids))
            continue
        # Blobs whose last counted manifest went: their rows go, and their size with them.
        emptied = [r["blob_id"] for r in await conn.fetch(_count_out_sql(table, owner), owner_id, manifest_ids)
                   if r["refs"] <= 0]
        freed = 0
        if emptied:
            freed = await conn.fetchval(
                f"WITH gone AS (DELETE FROM {table} WHERE {owner} = $1 AND blob_id = ANY($2::bigint[]) RETURNING blob_id) "
                "SELECT coalesce(sum(b.size), 0)::bigint FROM gone JOIN blobs b ON b.id = gone.blob_id", owner_id, emptied)
        deltas.append(-freed)
    await _add_usage(change, repo, deltas[0], deltas[1])


_DEPENDENTS = """
SELECT dst AS id, count(*)::int AS n FROM (
    SELECT c.child_id AS dst FROM manifest_children c WHERE c.parent_id = ANY($1::bigint[])
    UNION ALL
    SELECT r.id FROM manifests s JOIN manifests r ON r.repository_id = s.repository_id AND r.subject_digest = s.digest
    WHERE s.id = ANY($1::bigint[])
) d GROUP BY dst
"""


async def _flip(change: Change, repo: Repo, manifest_ids: list[int], counted: bool) -> None:
    """Count manifests in (or out), with everything that follows them (children, referrers)."""
    frontier = manifest_ids
    while frontier:
        flipped = [r["id"] for r in await change.conn.fetch(
            "UPDATE manifests SET quota_counted = $2 WHERE id = ANY($1::bigint[]) AND quota_counted <> $2 RETURNING id",
            frontier, counted)]
        if not flipped:
            return
        await _count_blobs(change, repo, flipped, counted)
        dependents = await change.conn.fetch(_DEPENDENTS, flipped)
        if not dependents:
            return
        sign = 1 if counted else -1
        turned_on, turned_off = await _add_refs(change, {r["id"]: sign * r["n"] for r in dependents})
        frontier = turned_on if counted else turned_off


async def _add_refs(change: Change, deltas: dict[int, int]) -> tuple[list[int], list[int]]:
    """Add to quota_refs (a new reference also ends a pin); the manifests whose counted state must
    now turn on, and those whose must turn off."""
    rows = await change.conn.fetch(
        "UPDATE manifests m SET quota_refs = m.quota_refs + d.n, quota_pinned = m.quota_pinned AND d.n <= 0 "
        "FROM unnest($1::bigint[], $2::int[]) AS d(id, n) WHERE m.id = d.id "
        "RETURNING m.id, m.quota_refs, m.quota_pinned, m.quota_counted",
        list(deltas), list(deltas.values()))
    on = [r["id"] for r in rows if not r["quota_counted"] and (r["quota_pinned"] or r["quota_refs"] > 0)]
    off = [r["id"] for r in rows if r["quota_counted"] and not (r["quota_pinned"] or r["quota_refs"] > 0)]
    return on, off


async def references_changed(change: Change, repo: Repo, deltas: dict[int, int]) -> None:
    """Tag rows of these manifests started (+) or ended (-); `repo` is live."""
    deltas = {manifest_id: n for manifest_id, n in deltas.items() if n}
    if not deltas:
        return
    await lock(change, repo)
    on, off = await _add_refs(change, deltas)
    await _flip(change, repo, off, False)
    await _flip(change, repo, on, True)


async def manifest_added(change: Change, repo: Repo, manifest_id: int, subject_digest: str | None) -> None:
    """A new manifest (its blob and child rows written): pinned until something references it; a
    referrer whose subject is counted is referenced by it at once."""
    await lock(change, repo)
    await change.conn.execute(
        """
        UPDATE manifests m SET quota_refs = s.n, quota_pinned = s.n = 0
        FROM (SELECT count(*)::int AS n FROM manifests WHERE repository_id = $2 AND digest = $3 AND quota_counted) s
        WHERE m.id = $1
        """,
        manifest_id, repo.id, subject_digest)
    await _flip(change, repo, [manifest_id], True)


async def manifest_pushed_again(change: Change, repo: Repo, manifest_id: int) -> None:
    """An existing manifest pushed again by digest: counted until gc collects it, like a new one."""
    await lock(change, repo)
    pinned = await change.conn.fetchval(
        "UPDATE manifests SET quota_pinned = true WHERE id = $1 AND NOT quota_counted AND quota_refs = 0 RETURNING id",
        manifest_id)
    if pinned is not None:
        await _flip(change, repo, [manifest_id], True)


async def manifests_removed(change: Change, repo: Repo, manifest_ids: list[int]) -> None:
    """Manifests about to be deleted (their rows still there): counted out with what follows them."""
    if manifest_ids:
        await lock(change, repo)
        await _flip(change, repo, manifest_ids, False)


async def repository_removed(change: Change, repo: Repo) -> None:
    """A repository was deleted: nothing of it counts any more (its rows wait for gc's purge)."""
    await lock(change, repo)
    ids = [r["id"] for r in await change.conn.fetch(
        "UPDATE manifests SET quota_counted = false WHERE repository_id = $1 AND quota_counted RETURNING id", repo.id)]
    if ids:
        await _count_blobs(change, repo, ids, False)


async def namespace_removed(conn: Conn, namespace_id: int) -> None:
    """A namespace was deleted (its repositories with it): its usage is gone. In the caller's transaction."""
    await conn.execute("SELECT 1 FROM namespace_usage WHERE namespace_id = $1 FOR UPDATE", namespace_id)
    await conn.execute(
        "UPDATE manifests SET quota_counted = false WHERE quota_counted "
        "AND repository_id IN (SELECT id FROM repositories WHERE namespace_id = $1)", namespace_id)
    await conn.execute("DELETE FROM quota_namespace_blobs WHERE namespace_id = $1", namespace_id)
    its_repositories = "SELECT id FROM repositories WHERE namespace_id = $1"
    await conn.execute(f"DELETE FROM quota_repository_blobs WHERE repository_id IN ({its_repositories})", namespace_id)
    await conn.execute(f"UPDATE repository_usage SET size_bytes = 0 WHERE repository_id IN ({its_repositories})", namespace_id)
    await conn.execute("UPDATE namespace_usage SET size_bytes = 0, updated_at = now() WHERE namespace_id = $1", namespace_id)


# ---------------------------------------------------------------------------------------------
# Limits applied at the end of an operation


async def settle(change: Change, *, repository: str | None = None) -> None:
    """Apply the limits to what this change did to each namespace since it last settled: refuse a
    rise above the Reject limit (QuotaExceeded rolls the change back), warn once per upward crossing
    of a Warning limit, and re-arm the warnings usage fell below."""
    policy = change.quota_policy
    for state in change.quota.values():
        before, after = state.start, state.now
        if before == after:
            continue
        state.start = after
        if after < before:
            await change.conn.execute(
                "UPDATE namespace_quota_limits l SET tripped = false FROM namespace_quotas q "
                "WHERE l.quota_id = q.id AND q.namespace_id = $1 AND l.kind = 'Warning' AND l.tripped "
                "AND q.limit_bytes * l.percent / 100 > $2", state.namespace_id, after)
            continue
        if not policy.enforce:
            continue
        found = await limits(change.conn, state.namespace_id, policy)
        if found.reject_bytes is not None and after > found.reject_bytes:
            raise QuotaExceeded(namespace_id=state.namespace_id, namespace=state.namespace, repository=repository,
                                usage=before, adding=after - before, found=found, actor=change.actor)
        for warning in found.warnings:
            if after >= warning.threshold and not warning.tripped:
                await change.conn.execute("UPDATE namespace_quota_limits SET tripped = true WHERE id = $1", warning.id)
                await change.emit(change.subjects.quota_warning, QuotaCrossed(
                    namespace=state.namespace, kind="warning", usage_bytes=after, limit_bytes=found.limit_bytes or 0,
                    threshold_percent=warning.percent, repository=repository, region=change.region, at=change.at,
                    actor=change.actor))


async def check_room(registry: Registry, namespace: str, repository: str, adding: int, actor: Actor, *,
                     starting: bool = False) -> None:
    """Before bytes are kept for an upload: refuse (QuotaExceeded, announced) when the namespace is
    full (`starting`), or when its usage plus `adding` (this upload's bytes so far) passes the
    Reject limit. Nothing is locked: the manifest push that would count the bytes decides exactly."""
    policy = registry.quota_policy
    if not policy.enforce:
        return
    row = await registry.pool.fetchrow(
        "SELECT n.id, coalesce(u.size_bytes, 0) AS usage FROM namespaces n "
        "LEFT JOIN namespace_usage u ON u.namespace_id = n.id WHERE n.name = $1 AND n.deleted_at IS NULL", namespace)
    namespace_id, usage = (row["id"], row["usage"]) if row else (None, 0)
    found = await limits(registry.pool, namespace_id, policy)
    if found.reject_bytes is None:
        return
    if (starting and usage >= found.reject_bytes) or usage + adding > found.reject_bytes:
        refused = QuotaExceeded(namespace_id=namespace_id, namespace=namespace, repository=repository, usage=usage,
                                adding=adding, found=found, actor=actor)
        await refused.after_rollback(registry)
        raise refused


# ---------------------------------------------------------------------------------------------
# Reads


async def namespace_usage(db: Db, namespace_id: int) -> int:
    return await db.fetchval("SELECT coalesce((SELECT size_bytes FROM namespace_usage WHERE namespace_id = $1), 0)",
                             namespace_id)


async def repository_usage(db: Db, repository_id: int) -> int:
    return await db.fetchval("SELECT coalesce((SELECT size_bytes FROM repository_usage WHERE repository_id = $1), 0)",
                             repository_id)


async def usage_by_namespace(db: Db) -> list[asyncpg.Record]:
    """Every live namespace: name, usage, quota limit (or NULL) and reject threshold (or NULL)."""
    return await db.fetch(
        """
        SELECT n.name, coalesce(u.size_bytes, 0) AS usage_bytes, q.limit_bytes,
               (SELECT q.limit_bytes * l.percent / 100 FROM namespace_quota_limits l WHERE l.quota_id = q.id AND l.kind = 'Reject')
                   AS reject_bytes
        FROM namespaces n LEFT JOIN namespace_usage u ON u.namespace_id = n.id LEFT JOIN namespace_quotas q ON q.namespace_id = n.id
        WHERE n.deleted_at IS NULL ORDER BY n.name
        """)


async def registry_size(db: Db) -> int:
    """Every blob stored, once (whatever its locations), in bytes."""
    return await db.fetchval("SELECT coalesce(sum(size), 0)::bigint FROM blobs")


# ---------------------------------------------------------------------------------------------
# From scratch: `meridian quota check`


@dataclass
class CheckReport:
    namespaces: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


_EXPECTED_REFS = """
SELECT m.id,
       (SELECT count(*) FROM tags t WHERE t.manifest_id = m.id AND t.lifetime_end IS NULL)
     + (SELECT count(*) FROM manifest_children c JOIN expected e ON e.manifest_id = c.parent_id WHERE c.child_id = m.id)
     + (SELECT count(*) FROM manifests s JOIN expected e ON e.manifest_id = s.id
        WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest) AS refs
FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.state <> 'deleted'
"""


async def check(conn: asyncpg.Connection, *, limit: int = 50) -> CheckReport:
    """Recompute what is counted, every reference count, every blob count and every usage from the
    tags and manifests, and compare with what the changes kept. Read-only, in one snapshot."""
    report = CheckReport()
    async with conn.transaction(isolation="repeatable_read"):  # one snapshot; its temp table dies with it
        await conn.execute("CREATE TEMP TABLE expected ON COMMIT DROP AS SELECT manifest_id FROM quota_expected_counted")
        await conn.execute("CREATE INDEX ON expected (manifest_id)")
        report.namespaces = await conn.fetchval("SELECT count(*) FROM namespaces WHERE deleted_at IS NULL")
        for row in await conn.fetch(
                "SELECT r.full_name, m.digest, m.quota_counted FROM manifests m JOIN repositories r ON r.id = m.repository_id "
                "LEFT JOIN expected e ON e.manifest_id = m.id "
                "WHERE r.state <> 'deleted' AND m.quota_counted <> (e.manifest_id IS NOT NULL) LIMIT $1", limit):
            report.problems.append(f"{row['full_name']}@{row['digest']}: counted is {row['quota_counted']}, "
                                   f"expected {not row['quota_counted']}")
        for row in await conn.fetch(
                f"WITH want AS ({_EXPECTED_REFS}) SELECT r.full_name, m.digest, m.quota_refs, w.refs, m.quota_pinned "
                "FROM want w JOIN manifests m ON m.id = w.id JOIN repositories r ON r.id = m.repository_id "
                "WHERE m.quota_refs <> w.refs OR (m.quota_pinned AND m.quota_refs <> 0) LIMIT $1", limit):
            report.problems.append(f"{row['full_name']}@{row['digest']}: {row['quota_refs']} references kept, "
                                   f"{row['refs']} expected (pinned {row['quota_pinned']})")
        for table, owner, owner_sql, name_sql in (
                ("quota_namespace_blobs", "namespace_id", "r.namespace_id",
                 "(SELECT name FROM namespaces WHERE id = x.owner)"),
                ("quota_repository_blobs", "repository_id", "r.id",
                 "(SELECT full_name FROM repositories WHERE id = x.owner)")):
            for row in await conn.fetch(
                    f"""
                    WITH want AS (SELECT {owner_sql} AS owner, mb.blob_id, count(*) AS refs FROM expected e
                                  JOIN manifests m ON m.id = e.manifest_id JOIN repositories r ON r.id = m.repository_id
                                  JOIN manifest_blobs mb ON mb.manifest_id = m.id GROUP BY 1, 2),
                    x AS (SELECT coalesce(w.owner, q.{owner}) AS owner, coalesce(w.blob_id, q.blob_id) AS blob_id,
                                 w.refs AS want, q.refs AS kept
                          FROM want w FULL JOIN {table} q ON q.{owner} = w.owner AND q.blob_id = w.blob_id
                          WHERE w.refs IS DISTINCT FROM q.refs)
                    SELECT {name_sql} AS name, (SELECT digest FROM blobs WHERE id = x.blob_id) AS digest, want, kept
                    FROM x LIMIT $1
                    """, limit):
                report.problems.append(f"{row['name']}: blob {row['digest']} counted {row['kept'] or 0} times, "
                                       f"expected {row['want'] or 0}")
        for row in await conn.fetch(
                """
                WITH want AS (SELECT DISTINCT r.namespace_id, mb.blob_id FROM expected e JOIN manifests m ON m.id = e.manifest_id
                              JOIN repositories r ON r.id = m.repository_id JOIN manifest_blobs mb ON mb.manifest_id = m.id),
                size AS (SELECT w.namespace_id, sum(b.size)::bigint AS bytes FROM want w JOIN blobs b ON b.id = w.blob_id GROUP BY 1)
                SELECT n.name, coalesce(s.bytes, 0) AS want, coalesce(u.size_bytes, 0) AS kept FROM namespaces n
                LEFT JOIN size s ON s.namespace_id = n.id LEFT JOIN namespace_usage u ON u.namespace_id = n.id
                WHERE n.deleted_at IS NULL AND coalesce(s.bytes, 0) <> coalesce(u.size_bytes, 0) LIMIT $1
                """, limit):
            report.problems.append(f"namespace {row['name']}: usage {row['kept']} bytes kept, {row['want']} expected")
        for row in await conn.fetch(
                """
                WITH want AS (SELECT DISTINCT m.repository_id, mb.blob_id FROM expected e JOIN manifests m ON m.id = e.manifest_id
                              JOIN manifest_blobs mb ON mb.manifest_id = m.id),
                size AS (SELECT w.repository_id, sum(b.size)::bigint AS bytes FROM want w JOIN blobs b ON b.id = w.blob_id GROUP BY 1)
                SELECT r.full_name, coalesce(s.bytes, 0) AS want, coalesce(u.size_bytes, 0) AS kept FROM repositories r
                LEFT JOIN size s ON s.repository_id = r.id LEFT JOIN repository_usage u ON u.repository_id = r.id
                WHERE r.state <> 'deleted' AND coalesce(s.bytes, 0) <> coalesce(u.size_bytes, 0) LIMIT $1
                """, limit):
            report.problems.append(f"repository {row['full_name']}: usage {row['kept']} bytes kept, {row['want']} expected")
    return report
