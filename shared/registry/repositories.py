"""Repositories: names, lookups, creation (by the API or on first push), state, visibility, deletion."""
from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg

from shared.messages import RepositoryChanged
from shared.model import Db, access, accounts, fetch_id_retrying
from shared.model.accounts import Principal

from .change import Change

# OCI distribution-spec name grammar; Meridian also requires namespace/repository (as Quay does).
COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{COMPONENT}(?:/{COMPONENT})+$")
MAX_NAME_LENGTH = 255
STATES = ("normal", "readonly")
VISIBILITIES = ("public", "private")


def name_problem(full_name: str) -> str | None:
    """Why a repository name is invalid, or None when it is fine."""
    if len(full_name) > MAX_NAME_LENGTH:
        return f"repository name longer than {MAX_NAME_LENGTH} characters"
    if "/" not in full_name:
        return "repository names take the form namespace/repository"
    if not NAME_RE.match(full_name):
        return "repository name must match [a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    return None


@dataclass(frozen=True)
class Repo:
    """A live repository as the domain operations need it."""

    id: int
    full_name: str
    namespace_id: int

    @property
    def namespace(self) -> str:
        return self.full_name.split("/", 1)[0]


async def get(db: Db, full_name: str) -> Repo | None:
    row = await db.fetchrow(
        "SELECT id, full_name, namespace_id FROM repositories WHERE full_name = $1 AND state <> 'deleted'", full_name)
    return Repo(row["id"], row["full_name"], row["namespace_id"]) if row else None


async def get_id(db: Db, full_name: str) -> int | None:
    return await db.fetchval("SELECT id FROM repositories WHERE full_name = $1 AND state <> 'deleted'", full_name)


async def is_read_only(db: Db, full_name: str) -> bool:
    return bool(await db.fetchval("SELECT state = 'readonly' FROM repositories WHERE full_name = $1", full_name))


async def _announce(change: Change, verb: str, full_name: str, **fields) -> None:
    await change.emit(change.subjects.repository(verb), RepositoryChanged(
        repository=full_name, namespace=full_name.split("/", 1)[0], region=change.region, at=change.at,
        actor=change.actor, **fields))


async def create(change: Change, namespace_id: int, namespace: str, name: str, *, creator: Principal | None,
                 visibility: str = "private", description: str = "") -> tuple[int, bool]:
    """(repository id, created?). A new repository gets its creator's and the namespace's default
    permissions (shared/model/access.py) and a repository.created event."""
    repo_id, created = await access.create_repository(change.conn, namespace_id, namespace, name, creator=creator,
                                                      visibility=visibility, description=description)
    if created:
        await _announce(change, "created", f"{namespace}/{name}", visibility=visibility, state="normal")
    return repo_id, created


async def create_with_namespace(change: Change, full_name: str) -> Repo:
    """Open access (development): the namespace and the repository appear on first write."""
    namespace, name = full_name.split("/", 1)
    # Insert-or-select, never an upsert: `DO UPDATE SET name = ...` rewrote the namespace's key, which
    # blocks the foreign-key check of every concurrent repository insert in that namespace; with two
    # pushes creating the same repository, each then waited on the other (a deadlock, seen in CI).
    # The repository insert skips a conflict on either unique key ((namespace_id, name) and full_name):
    # naming only full_name, a concurrent insert of the same repository that PostgreSQL met first in the
    # other index was a unique violation, not a skip.
    namespace_id = await fetch_id_retrying(
        change.conn,
        """
        WITH made AS (INSERT INTO namespaces (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id)
        SELECT id FROM made UNION ALL SELECT id FROM namespaces WHERE name = $1 LIMIT 1
        """,
        namespace,
    )
    inserted = await change.conn.fetchval(
        "INSERT INTO repositories (namespace_id, name, full_name) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING id",
        namespace_id, name, full_name,
    )
    if inserted is not None:
        await _announce(change, "created", full_name, visibility="private", state="normal")
    else:  # created by a concurrent push: wait for it to be visible
        await fetch_id_retrying(change.conn, "SELECT id FROM repositories WHERE full_name = $1", full_name)
    repo = await get(change.conn, full_name)
    assert repo is not None
    return repo


async def set_description(change: Change, repo_id: int, description: str) -> None:
    await change.conn.execute("UPDATE repositories SET description = $2 WHERE id = $1", repo_id, description)


async def set_visibility(change: Change, repo_id: int, full_name: str, visibility: str) -> None:
    await change.conn.execute("UPDATE repositories SET visibility = $2 WHERE id = $1", repo_id, visibility)
    await _announce(change, "changed", full_name, visibility=visibility)


async def set_state(change: Change, repo_id: int, full_name: str, state: str) -> None:
    await change.conn.execute("UPDATE repositories SET state = $2 WHERE id = $1", repo_id, state)
    await _announce(change, "changed", full_name, state=state)


async def delete(change: Change, repo_id: int, full_name: str) -> None:
    """Hide a repository at once and free its name (both unique keys, so it can be created again at
    once); its usage leaves the namespace's at once; gc purges its rows and unreferenced blobs later."""
    from . import quota

    namespace_id = await change.conn.fetchval("SELECT namespace_id FROM repositories WHERE id = $1", repo_id)
    if namespace_id is not None:
        await quota.repository_removed(change, Repo(repo_id, full_name, namespace_id))
        await quota.settle(change, repository=full_name)
    await accounts.mark_repository_deleted(change.conn, repo_id)
    await _announce(change, "deleted", full_name)


async def list_names(db: Db, last: str | None, limit: int) -> list[str]:
    """Every live repository holding a manifest, by name after `last` (open access: anyone may see all
    of them). A push whose manifest was refused leaves no name here (docs/decisions.md)."""
    rows = await db.fetch(
        "SELECT r.full_name FROM repositories r WHERE r.state <> 'deleted' AND r.full_name > $1 "
        "AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id) ORDER BY r.full_name LIMIT $2",
        last or "", limit)
    return [r["full_name"] for r in rows]


async def list_readable(db: Db, principal: Principal | None, *, after: str, namespace: str | None, public_only: bool,
                        limit: int, sees_all: bool = False) -> list[asyncpg.Record]:
    """A page of repositories the principal may read (every one with `sees_all`: open access), with
    its role rank on each (`rank`)."""
    return await db.fetch(
        f"""
        SELECT r.id, r.full_name, r.description, r.visibility, r.state, r.created_at,
               {access.role_rank_sql('$1::bigint')} AS rank
        FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
        WHERE r.state <> 'deleted' AND n.deleted_at IS NULL AND r.full_name > $2
          AND ($3::text IS NULL OR n.name = $3) AND (NOT $4 OR r.visibility = 'public')
          AND {access.readable_sql('$1::bigint', '$5::boolean')}
        ORDER BY r.full_name LIMIT $6
        """,
        principal.id if principal else None, after, namespace, public_only, sees_all or bool(principal and principal.superuser), limit,
    )
