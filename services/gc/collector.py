"""One garbage-collection pass, in the order that keeps every pull and push in flight safe.

1. Current tags whose expiry passed are ended at their expiry.
2. Per repository, under its KV lock: tag rows past their end plus the namespace's time-machine
   window (or expired permanently) go; then manifests nothing references any more (no tag row, no
   index that lists them, no subject they refer to that is still there) and older than
   PUSH_TEMP_TAG_EXPIRATION_SEC; then the repository's links to blobs no manifest of it uses, older
   than the same window. Unlinked blobs become candidates for step 5.
3. Deleted repositories are purged (global lock), 4. then deleted namespaces (global lock).
5. Candidate blobs (global lock): each under an exclusive digest lock that writers hold shared while
   they put bytes at the content address, re-checked (no repository links it, no manifest lists it,
   older than the window), deleted in every location that holds it, then its placements and row.
6. Upload sessions untouched for MERIDIAN_UPLOAD_SESSION_MAX_AGE_SEC go with their chunks, and each
   location drops leftovers of interrupted writes (orphaned S3 multipart uploads included).

A dry run does all of it inside transactions that are rolled back and touches no storage, so it
reports exactly what a real pass would collect at that moment.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable

from shared.config import Config, parse_duration
from shared.locations import Locations, StorageCommandFailed, clean_location, delete_blob
from shared.locks import KVLocks, Lock, LockLost
from shared.logging import get_logger
from shared.metrics import (
    GC_BLOBS_DELETED, GC_BYTES_RECLAIMED, GC_ITERATIONS, GC_LOCKS_LOST, GC_MANIFESTS_COLLECTED, GC_NAMESPACES_PURGED,
    GC_REPOS_PURGED, GC_TAGS_COLLECTED, GC_UPLOADS_CLEANED,
)
from shared.model.blobs import digest_lock_key

log = get_logger("gc")
BATCH = 500


class _Rollback(Exception):
    """Raised inside a transaction to undo it (dry runs)."""


@dataclass
class Report:
    dry_run: bool = False
    paused: str | None = None
    tags_expired: int = 0
    tags: int = 0
    manifests: list[str] = field(default_factory=list)
    blob_links: int = 0
    repositories: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    bytes_reclaimed: int = 0
    uploads: int = 0
    skipped_locked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"dry_run": self.dry_run, "paused": self.paused, "tags_expired": self.tags_expired, "tags": self.tags,
                "manifests": len(self.manifests), "blob_links": self.blob_links, "repositories": self.repositories,
                "namespaces": self.namespaces, "blobs": len(self.blobs), "bytes_reclaimed": self.bytes_reclaimed,
                "uploads": self.uploads, "skipped_locked": self.skipped_locked, "errors": self.errors}


class Collector:
    def __init__(self, config: Config, pool, bus, locations: Locations, *, observer: Callable | None = None) -> None:
        self.config = config
        self.pool = pool
        self.bus = bus
        self.locations = locations
        self.locks = KVLocks(bus.js, f"{bus.subjects.prefix}_locks", config.meridian_gc_lock_ttl_sec)
        # Tests watch when a repository is collected and by whom; production passes nothing.
        self.observer = observer
        self.default_window = parse_duration(config.default_tag_expiration)
        self._dry_conn = None  # a dry run works in one transaction that is rolled back at the end

    @property
    def db(self):
        return self._dry_conn if self._dry_conn is not None else self.pool

    async def open(self) -> None:
        await self.locks.open()

    async def run_once(self, *, dry_run: bool = False) -> Report:
        if not dry_run:
            return await self._run(dry_run=False)
        async with self.pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            self._dry_conn = conn
            try:
                return await self._run(dry_run=True)
            finally:
                self._dry_conn = None
                await transaction.rollback()

    async def _run(self, *, dry_run: bool) -> Report:
        report = Report(dry_run=dry_run)
        if self.config.registry_state == "readonly":
            report.paused = "read-only mode: gc makes no writes"
            return report
        if not self.config.feature_garbage_collection:
            report.paused = "FEATURE_GARBAGE_COLLECTION is false"
            return report
        temp = float(self.config.push_temp_tag_expiration_sec)
        await self._expire_tags(report, dry_run)
        for repo_id, full_name in await self._repositories_to_collect(temp):
            await self._with_lock(f"repo-{repo_id}", report, full_name, dry_run,
                                  lambda lock: self._collect_repository(repo_id, full_name, temp, lock, report, dry_run))
        if self.config.feature_repository_garbage_collection:
            await self._with_lock("purge-repositories", report, "purge-repositories", dry_run,
                                  lambda lock: self._purge_repositories(lock, report, dry_run))
        if self.config.feature_namespace_garbage_collection:
            await self._with_lock("purge-namespaces", report, "purge-namespaces", dry_run,
                                  lambda lock: self._purge_namespaces(lock, report, dry_run))
        await self._with_lock("blobs", report, "blobs", dry_run, lambda lock: self._sweep_blobs(temp, lock, report, dry_run))
        if self.config.clean_blob_upload_folder:
            await self._with_lock("uploads", report, "uploads", dry_run, lambda lock: self._clean_uploads(lock, report, dry_run))
        if not dry_run:
            GC_ITERATIONS.inc()
        return report

    async def _with_lock(self, name: str, report: Report, label: str, dry_run: bool, work) -> None:
        if dry_run:
            await work(None)
            return
        lock = await self.locks.acquire(name)
        if lock is None:
            report.skipped_locked.append(label)
            return
        try:
            await work(lock)
        except LockLost:
            GC_LOCKS_LOST.inc()
            report.errors.append(f"{label}: lock lost; the work in hand was rolled back")
        finally:
            await lock.release()

    async def _observe(self, *event) -> None:
        if self.observer is not None:
            result = self.observer(*event)
            if asyncio.iscoroutine(result):
                await result

    async def _transaction(self, dry_run: bool, work, lock: Lock | None = None):
        """Run work(conn) in a transaction, rolled back when the lock was lost. A dry run's steps
        build on each other inside its one outer transaction."""
        if self._dry_conn is not None:
            async with self._dry_conn.transaction():
                return await work(self._dry_conn)
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                result = await work(conn)
                if lock is not None:
                    lock.check()
                return result

    async def _expire_tags(self, report: Report, dry_run: bool) -> None:
        async def work(conn):
            return await conn.fetchval(
                "WITH ended AS (UPDATE tags SET lifetime_end = expires_at WHERE lifetime_end IS NULL AND expires_at <= now() "
                "RETURNING 1) SELECT count(*) FROM ended")

        report.tags_expired += await self._transaction(dry_run, work)

    def _window_sql(self) -> str:
        return f"make_interval(secs => coalesce(n.tag_expiration_s, {int(self.default_window)}))"

    async def _repositories_to_collect(self, temp: float) -> list[tuple[int, str]]:
        rows = await self.db.fetch(
            f"""
            SELECT DISTINCT r.id, r.full_name FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
            WHERE r.state <> 'deleted' AND (
                EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = r.id AND t.lifetime_end IS NOT NULL
                        AND (t.time_machine_expired OR t.lifetime_end < now() - {self._window_sql()}))
             OR EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id AND m.created_at < now() - make_interval(secs => $1)
                        AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
                        AND NOT EXISTS (SELECT 1 FROM manifest_children c WHERE c.child_id = m.id))
             OR EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = r.id
                        AND rb.created_at < now() - make_interval(secs => $1)
                        AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb JOIN manifests m ON m.id = mb.manifest_id
                                        WHERE mb.blob_id = rb.blob_id AND m.repository_id = r.id)))
            ORDER BY r.id
            """,
            temp,
        )
        return [(r["id"], r["full_name"]) for r in rows]

    async def _collect_repository(self, repo_id: int, full_name: str, temp: float, lock: Lock | None, report: Report,
                                  dry_run: bool) -> None:
        await self._observe("start", full_name)
        try:
            async def work(conn):
                tags = await conn.fetchval(
                    f"""
                    WITH gone AS (
                        DELETE FROM tags t USING repositories r JOIN namespaces n ON n.id = r.namespace_id
                        WHERE t.repository_id = $1 AND r.id = t.repository_id AND t.lifetime_end IS NOT NULL
                          AND (t.time_machine_expired OR t.lifetime_end < now() - {self._window_sql()})
                        RETURNING 1)
                    SELECT count(*) FROM gone
                    """,
                    repo_id,
                )
                manifests: list[str] = []
                while True:  # an index that goes frees its children; a subject that goes frees its referrers
                    if lock is not None:
                        lock.check()
                    rows = await conn.fetch(
                        """
                        DELETE FROM manifests m
                        WHERE m.repository_id = $1 AND m.created_at < now() - make_interval(secs => $2)
                          AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
                          AND NOT EXISTS (SELECT 1 FROM manifest_children c WHERE c.child_id = m.id)
                          AND (m.subject_digest IS NULL OR NOT EXISTS (
                                SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest))
                        RETURNING m.digest
                        """,
                        repo_id, temp,
                    )
                    if not rows:
                        break
                    manifests += [r["digest"] for r in rows]
                links = await conn.fetchval(
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
                    repo_id, temp,
                )
                return tags, manifests, links

            tags, manifests, links = await self._transaction(dry_run, work, lock)
        finally:
            await self._observe("end", full_name)
        report.tags += tags
        report.manifests += [f"{full_name}@{d}" for d in manifests]
        report.blob_links += links
        if not dry_run:
            GC_TAGS_COLLECTED.inc(tags)
            GC_MANIFESTS_COLLECTED.inc(len(manifests))
        if tags or manifests or links:
            log.info("repository collected", repository=full_name, tags=tags, manifests=len(manifests), blob_links=links,
                     dry_run=dry_run)

    async def _purge_repository(self, conn, repo_id: int) -> None:
        """Inside the caller's transaction: the repository's blobs become candidates, its upload
        sessions' chunks go, and the row goes (tags, manifests, links, permissions cascade)."""
        await conn.execute(
            "INSERT INTO gc_blob_candidates (blob_id) SELECT blob_id FROM repository_blobs WHERE repository_id = $1 "
            "ON CONFLICT DO NOTHING", repo_id)
        await conn.execute("DELETE FROM repositories WHERE id = $1", repo_id)

    async def _stale_chunks(self, conn, repo_id: int) -> dict[str, list[str]]:
        """location -> upload sessions of the repository whose chunks must go with it."""
        rows = await conn.fetch(
            "SELECT u.id::text AS id, l.name FROM upload_sessions u JOIN storage_locations l ON l.id = u.location_id "
            "WHERE u.repository_id = $1", repo_id)
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row["name"], []).append(row["id"])
        return found

    async def _purge_repositories(self, lock: Lock | None, report: Report, dry_run: bool, namespace_id: int | None = None) -> None:
        rows = await self.db.fetch(
            "SELECT id, full_name FROM repositories WHERE state = 'deleted' AND ($1::bigint IS NULL OR namespace_id = $1) "
            "ORDER BY id LIMIT $2", namespace_id, BATCH)
        for row in rows:
            repo_lock = None if dry_run else await self.locks.acquire(f"repo-{row['id']}")
            if not dry_run and repo_lock is None:
                report.skipped_locked.append(row["full_name"])
                continue
            try:
                await self._observe("start", row["full_name"])

                async def work(conn, repo_id=row["id"]):
                    chunks = await self._stale_chunks(conn, repo_id)
                    await self._purge_repository(conn, repo_id)
                    return chunks

                chunks = await self._transaction(dry_run, work, lock)
                await self._observe("end", row["full_name"])
            finally:
                if repo_lock is not None:
                    await repo_lock.release()
            name = row["full_name"].split("+deleted+")[0]
            report.repositories.append(name)
            if not dry_run:
                GC_REPOS_PURGED.inc()
                await self._clean_chunks(chunks, report)
                log.info("repository purged", repository=name)

    async def _purge_namespaces(self, lock: Lock | None, report: Report, dry_run: bool) -> None:
        rows = await self.db.fetch("SELECT id, name FROM namespaces WHERE deleted_at IS NOT NULL ORDER BY id LIMIT $1", BATCH)
        for row in rows:
            # Its repositories go first, each the way a deleted repository goes.
            await self._purge_repositories(lock, report, dry_run, namespace_id=row["id"])
            if await self.db.fetchval("SELECT 1 FROM repositories WHERE namespace_id = $1 LIMIT 1", row["id"]):
                continue  # some repository was locked by a collector; next pass

            async def work(conn, namespace_id=row["id"]):
                # Robots, teams, permissions, default permissions and replication settings cascade.
                await conn.execute("DELETE FROM namespaces WHERE id = $1", namespace_id)

            await self._transaction(dry_run, work, lock)
            name = row["name"].split("+deleted+")[0]
            report.namespaces.append(name)
            if not dry_run:
                GC_NAMESPACES_PURGED.inc()
                log.info("namespace purged", namespace=name)

    async def _clean_chunks(self, chunks: dict[str, list[str]], report: Report) -> None:
        for location, upload_ids in chunks.items():
            try:
                await clean_location(self.locations, self.bus, location, self.config.meridian_upload_session_max_age_sec, upload_ids)
            except StorageCommandFailed as exc:
                report.errors.append(str(exc))

    async def _sweep_blobs(self, temp: float, lock: Lock | None, report: Report, dry_run: bool) -> None:
        candidates = await self.db.fetch(
            "SELECT c.blob_id, b.digest, b.size FROM gc_blob_candidates c JOIN blobs b ON b.id = c.blob_id "
            "WHERE b.created_at < now() - make_interval(secs => $1) ORDER BY c.since LIMIT $2", temp, BATCH)
        known = list(self.locations.drivers) + [n for n in self.locations.remote_urls if n not in self.locations.drivers]
        for candidate in candidates:
            if lock is not None:
                lock.check()
            if self._dry_conn is not None:
                try:
                    async with self._dry_conn.transaction():
                        await self._sweep_one(self._dry_conn, candidate, known, report, dry_run=True)
                except _Rollback:
                    pass
                continue
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    await self._sweep_one(conn, candidate, known, report, dry_run=False)
        if report.blobs:
            log.info("blobs collected", count=len(report.blobs), bytes=report.bytes_reclaimed, dry_run=dry_run)

    async def _sweep_one(self, conn, candidate, known: list[str], report: Report, *, dry_run: bool) -> None:
        # Exclusive: no writer can put these bytes back while they are deleted.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", digest_lock_key(candidate["digest"]))
        referenced = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM repository_blobs WHERE blob_id = $1) "
            "OR EXISTS (SELECT 1 FROM manifest_blobs WHERE blob_id = $1)", candidate["blob_id"])
        if referenced:
            await conn.execute("DELETE FROM gc_blob_candidates WHERE blob_id = $1", candidate["blob_id"])
            return
        placed = [r["name"] for r in await conn.fetch(
            "SELECT l.name FROM blob_placements p JOIN storage_locations l ON l.id = p.location_id "
            "WHERE p.blob_id = $1", candidate["blob_id"])]
        if dry_run:
            report.blobs.append(candidate["digest"])
            report.bytes_reclaimed += candidate["size"] * len(placed)
            raise _Rollback()
        failed = await self._delete_everywhere(candidate["digest"], placed, known, report)
        if failed:
            # Keep the row and the placements that still hold bytes; the next pass retries.
            await conn.execute(
                "DELETE FROM blob_placements p USING storage_locations l WHERE p.location_id = l.id "
                "AND p.blob_id = $1 AND NOT (l.name = ANY($2::text[]))", candidate["blob_id"], failed)
            return
        await conn.execute("DELETE FROM blobs WHERE id = $1", candidate["blob_id"])
        reclaimed = candidate["size"] * len(placed)
        report.blobs.append(candidate["digest"])
        report.bytes_reclaimed += reclaimed
        GC_BLOBS_DELETED.inc()
        GC_BYTES_RECLAIMED.inc(reclaimed)

    async def _delete_everywhere(self, digest: str, placed: list[str], known: list[str], report: Report) -> list[str]:
        """Delete the bytes in every location that holds them (and, best effort, every other known
        one, for copies whose placement was never recorded); returns placed locations that failed."""
        failed = []

        async def one(location: str) -> None:
            try:
                await delete_blob(self.locations, self.bus, location, digest)
            except (StorageCommandFailed, OSError) as exc:
                if location in placed:
                    failed.append(location)
                    report.errors.append(f"{digest} at {location}: {exc}")

        await asyncio.gather(*(one(location) for location in sorted(set(placed) | set(known))))
        return failed

    async def _clean_uploads(self, lock: Lock | None, report: Report, dry_run: bool) -> None:
        max_age = self.config.meridian_upload_session_max_age_sec

        async def work(conn):
            rows = await conn.fetch(
                "DELETE FROM upload_sessions u USING storage_locations l WHERE l.id = u.location_id "
                "AND u.updated_at < now() - make_interval(secs => $1) RETURNING u.id::text AS id, l.name",
                max_age)
            found: dict[str, list[str]] = {}
            for row in rows:
                found.setdefault(row["name"], []).append(row["id"])
            return found

        stale = await self._transaction(dry_run, work, lock)
        report.uploads += sum(len(v) for v in stale.values())
        if dry_run:
            return
        GC_UPLOADS_CLEANED.inc(report.uploads)
        locations = set(self.locations.drivers) | set(self.locations.remote_urls) | set(stale)
        for location in sorted(locations):
            try:
                await clean_location(self.locations, self.bus, location, max_age, stale.get(location, []))
            except StorageCommandFailed as exc:
                report.errors.append(str(exc))
