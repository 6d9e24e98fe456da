"""Reads behind the web UI's lists: repositories and live tags paged, sorted and filtered in SQL, and
what one page of tags or one manifest needs beside (sizes, the regions holding every blob, platforms,
referrers). Each page query is bounded: a count plus an ordered LIMIT/OFFSET that walks an index for
the default orders, and per-row extras computed only for the rows of the page."""
from __future__ import annotations

import json
from typing import Any

LIVE = "t.lifetime_end IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())"
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")

REPOSITORY_SORTS = {"name": "v.full_name", "namespace": "v.namespace", "last_modified": "last_modified",
                    "size": "size", "visibility": "v.visibility"}
TAG_SORTS = {"name": "t.name", "last_modified": "t.lifetime_start", "expires": "t.expires_at", "size": "size",
             "digest": "m.digest"}
# Only expires_at can be NULL. Saying NULLS LAST on a NOT NULL column still stops PostgreSQL from walking
# an index in that direction (a DESC index keeps NULLs first), so newest-first sorted every live tag.
NULLABLE_TAG_SORTS = {"expires"}
TAG_COLUMN_SORTS = {sort for sort, column in TAG_SORTS.items() if column.startswith("t.")}  # on the tags row alone


class BadFilter(ValueError):
    """A regular expression PostgreSQL refuses."""


def name_condition(column: str, param: str, regex: bool) -> str:
    # Substring match is literal (strpos, no LIKE wildcards); a regex is PostgreSQL's ARE.
    return f"{column} ~ {param}" if regex else f"strpos({column}, {param}) > 0"


async def fetch_filtered(conn, sql: str, *args):
    """conn.fetch, with a regular expression PostgreSQL refuses reported as BadFilter."""
    import asyncpg

    try:
        return await conn.fetch(sql, *args)
    except asyncpg.InvalidRegularExpressionError as exc:
        raise BadFilter(f"invalid regular expression: {exc}") from None


def caller_grants(user: str) -> str:
    """CTEs `my_teams`, `admin_namespaces` and `granted` (repository_id, rank) for the user in
    parameter `user` (NULL: anonymous): what access.role_rank_sql looks up per repository, gathered
    once so a list of a thousand repositories costs a few joins instead of four subqueries each."""
    return f"""
        my_teams AS (SELECT team_id FROM team_members WHERE user_id = {user}),
        admin_namespaces AS (SELECT t.namespace_id FROM teams t JOIN my_teams m ON m.team_id = t.id WHERE t.role = 'admin'),
        granted AS (
            SELECT repository_id, max(array_position(ARRAY['read','write','admin'], role)) AS rank FROM (
                SELECT repository_id, role FROM repository_permissions WHERE user_id = {user}
                UNION ALL
                SELECT p.repository_id, p.role FROM repository_permissions p JOIN my_teams m ON m.team_id = p.team_id
            ) grants GROUP BY repository_id
        )"""


def joined_rank(user: str) -> str:
    """The user's rank on repository r of namespace n, with `granted` LEFT JOINed as g: the same
    value as access.role_rank_sql."""
    return (f"GREATEST(CASE WHEN r.visibility = 'public' THEN 1 ELSE 0 END, CASE WHEN n.owner_user_id = {user} THEN 3 ELSE 0 END, "
            "coalesce(g.rank, 0), CASE WHEN n.id IN (SELECT namespace_id FROM admin_namespaces) THEN 3 ELSE 0 END)")


async def creatable_namespaces(conn, principal) -> list[dict[str, Any]]:
    """Namespaces the principal may create repositories in: their own, and organisations where a team
    gives them creator or admin (superusers: every organisation)."""
    if principal is None or principal.robot:
        return []
    rows = await conn.fetch(
        """
        SELECT n.name, n.kind = 'user' AS is_user FROM namespaces n
        WHERE n.deleted_at IS NULL AND (
              n.owner_user_id = $1
           OR ($2 AND n.owner_user_id IS NULL)
           OR EXISTS (SELECT 1 FROM teams t JOIN team_members tm ON tm.team_id = t.id
                       WHERE t.namespace_id = n.id AND tm.user_id = $1 AND t.role IN ('admin', 'creator')))
        ORDER BY (n.owner_user_id IS NOT DISTINCT FROM $1) DESC, n.name
        """,
        principal.id, principal.superuser,
    )
    return [{"name": r["name"], "kind": "user" if r["is_user"] else "organization"} for r in rows]


async def repositories_page(conn, principal, *, text: str | None, regex: bool, namespace: str | None, public_only: bool,
                            sort: str, descending: bool, limit: int, offset: int,
                            sees_all: bool = False) -> tuple[list, int]:
    """(rows of the page, total matching; every repository with `sees_all`: open access). Rows:
    namespace, name, visibility, state, description, rank, last_modified, size."""
    order_column = REPOSITORY_SORTS[sort]
    direction = "DESC" if descending else "ASC"
    nulls = "NULLS LAST"  # repositories without tags have no last_modified: last either way
    # Exact usage kept by every change (shared/registry/quota.py): the distinct blobs its live images use.
    size_sql = "coalesce((SELECT u.size_bytes FROM repository_usage u WHERE u.repository_id = v.id), 0)::bigint"
    filtered = f"""
        WITH {caller_grants('$1::bigint')},
        visible AS (
            SELECT r.id, r.full_name, n.name AS namespace, r.name, r.visibility, r.state, r.description,
                   {joined_rank('$1::bigint')} AS rank
            FROM repositories r JOIN namespaces n ON n.id = r.namespace_id LEFT JOIN granted g ON g.repository_id = r.id
            WHERE r.state <> 'deleted' AND n.deleted_at IS NULL
              AND ($3::text IS NULL OR n.name = $3) AND (NOT $4 OR r.visibility = 'public')
              AND ($5::text IS NULL OR {name_condition('r.full_name', '$5', regex)})
        )
    """
    readable = "($2 OR v.rank >= 1)"
    args = [principal.id if principal else None, sees_all or bool(principal and principal.superuser), namespace, public_only, text or None]
    total_rows = await fetch_filtered(conn, f"{filtered} SELECT count(*) AS n FROM visible v WHERE {readable}", *args)
    total = total_rows[0]["n"]
    # Sizes are computed for every row only when sorting by size.
    inner_size = f", {size_sql} AS size" if sort == "size" else ""
    rows = await fetch_filtered(conn, f"""
        {filtered}
        SELECT page.*{'' if sort == 'size' else f', {size_sql.replace("v.id", "page.id")} AS size'} FROM (
            SELECT v.*, (SELECT max(t.lifetime_start) FROM tags t WHERE t.repository_id = v.id) AS last_modified{inner_size}
            FROM visible v WHERE {readable}
            ORDER BY {order_column} {direction} {nulls}, v.full_name {direction}
            LIMIT $6 OFFSET $7
        ) page
        ORDER BY {order_column.replace('v.', 'page.')} {direction} {nulls}, page.full_name {direction}
    """, *args, limit, offset)
    return rows, total


async def tags_page(conn, repository_id: int, *, text: str | None, regex: bool, sort: str, descending: bool,
                    limit: int, offset: int) -> tuple[list, int]:
    """(live tags of the page, total matching). Name and last-modified orders walk the tags indexes;
    sorting by size computes every live tag's size."""
    direction = "DESC" if descending else "ASC"
    condition = f"t.repository_id = $1 AND {LIVE} AND ($2::text IS NULL OR {name_condition('t.name', '$2', regex)})"
    args = [repository_id, text or None]
    total = (await fetch_filtered(conn, f"SELECT count(*) AS n FROM tags t WHERE {condition}", *args))[0]["n"]
    size_sql = ("m.size + coalesce((SELECT sum(b.size) FROM manifest_blobs mb JOIN blobs b ON b.id = mb.blob_id "
                "WHERE mb.manifest_id = m.id), 0)")
    select_size = f", ({size_sql})::bigint AS size" if sort == "size" else ""
    order = f'{TAG_SORTS[sort]} {direction}{" NULLS LAST" if sort in NULLABLE_TAG_SORTS else ""}, t.name {direction}'
    columns = ("t.id, t.name, t.lifetime_start, t.expires_at, m.id AS manifest_id, m.digest, m.media_type, "
               f"m.artifact_type, m.config_media_type{select_size}")
    if sort in TAG_COLUMN_SORTS:
        # The page is cut from the tags index alone and only its rows meet their manifests: joining
        # first looked up a manifest for every tag the OFFSET skips (100,000 for the last page).
        query = f"""
            SELECT {columns} FROM (
                SELECT t.id, t.name, t.lifetime_start, t.expires_at, t.manifest_id FROM tags t
                WHERE {condition} ORDER BY {order} LIMIT $3 OFFSET $4
            ) t JOIN manifests m ON m.id = t.manifest_id
            ORDER BY {order}
        """
    else:
        query = f"""
            SELECT {columns} FROM tags t JOIN manifests m ON m.id = t.manifest_id
            WHERE {condition} ORDER BY {order} LIMIT $3 OFFSET $4
        """
    rows = await fetch_filtered(conn, query, *args, limit, offset)
    return rows, total


async def manifest_extras(conn, manifest_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per manifest (an index counts its children's blobs): total size, blob count and, per storage
    location, how many of those blobs it holds."""
    if not manifest_ids:
        return {}
    rows = await conn.fetch(
        """
        WITH RECURSIVE tree(root, id) AS (
            SELECT id, id FROM unnest($1::bigint[]) AS id
            UNION SELECT tree.root, c.child_id FROM manifest_children c JOIN tree ON c.parent_id = tree.id
        ),
        blobs_of AS (SELECT DISTINCT tree.root, mb.blob_id FROM tree JOIN manifest_blobs mb ON mb.manifest_id = tree.id),
        own AS (SELECT tree.root, sum(m.size)::bigint AS bytes FROM tree JOIN manifests m ON m.id = tree.id GROUP BY tree.root),
        sizes AS (SELECT bo.root, sum(b.size)::bigint AS bytes, count(*) AS blobs FROM blobs_of bo JOIN blobs b ON b.id = bo.blob_id
                  GROUP BY bo.root),
        held AS (SELECT bo.root, l.name, count(*) AS n FROM blobs_of bo JOIN blob_placements p ON p.blob_id = bo.blob_id
                 JOIN storage_locations l ON l.id = p.location_id GROUP BY bo.root, l.name)
        SELECT own.root, own.bytes + coalesce(sizes.bytes, 0) AS size, coalesce(sizes.blobs, 0) AS blobs,
               coalesce((SELECT jsonb_object_agg(held.name, held.n) FROM held WHERE held.root = own.root), '{}') AS held
        FROM own LEFT JOIN sizes ON sizes.root = own.root
        """,
        manifest_ids,
    )
    result = {}
    for row in rows:
        held = row["held"] if isinstance(row["held"], dict) else json.loads(row["held"])
        result[row["root"]] = {"size": row["size"], "blobs": row["blobs"], "held": held}
    return result


def regions_holding(extra: dict[str, Any], all_locations: list[str]) -> list[str]:
    """Locations that hold every blob; a manifest without blobs lives in the database, so everywhere."""
    if not extra or extra["blobs"] == 0:
        return sorted(all_locations)
    return sorted(name for name, count in extra["held"].items() if count >= extra["blobs"])


async def location_names(conn) -> list[str]:
    return [r["name"] for r in await conn.fetch("SELECT name FROM storage_locations ORDER BY name")]


async def manifest_bodies(conn, manifest_ids: list[int]) -> dict[int, bytes]:
    if not manifest_ids:
        return {}
    rows = await conn.fetch("SELECT id, body FROM manifests WHERE id = ANY($1::bigint[])", manifest_ids)
    return {r["id"]: bytes(r["body"]) for r in rows}


async def referrer_counts(conn, repository_id: int, digests: list[str]) -> dict[str, dict[str, int]]:
    """digest -> {artifact type -> how many manifests name it as their subject}."""
    if not digests:
        return {}
    rows = await conn.fetch(
        "SELECT subject_digest, coalesce(artifact_type, config_media_type, media_type) AS type, count(*) AS n "
        "FROM manifests WHERE repository_id = $1 AND subject_digest = ANY($2::text[]) GROUP BY 1, 2",
        repository_id, digests,
    )
    result: dict[str, dict[str, int]] = {}
    for row in rows:
        result.setdefault(row["subject_digest"], {})[row["type"]] = row["n"]
    return result


async def manifest_row(conn, repository_id: int, digest: str):
    return await conn.fetchrow(
        "SELECT id, digest, media_type, artifact_type, config_media_type, subject_digest, annotations, size, body, created_at "
        "FROM manifests WHERE repository_id = $1 AND digest = $2",
        repository_id, digest,
    )


async def referrers(conn, repository_id: int, digest: str) -> list:
    return await conn.fetch(
        "SELECT m.digest, m.media_type, coalesce(m.artifact_type, m.config_media_type, m.media_type) AS artifact_type, "
        "m.annotations, m.size, m.created_at, "
        "(SELECT array_agg(t.name ORDER BY t.name) FROM tags t WHERE t.manifest_id = m.id AND t.lifetime_end IS NULL) AS tags "
        "FROM manifests m WHERE m.repository_id = $1 AND m.subject_digest = $2 ORDER BY artifact_type, m.created_at, m.digest",
        repository_id, digest,
    )


async def tags_of_manifest(conn, manifest_id: int) -> list[str]:
    rows = await conn.fetch(f"SELECT t.name FROM tags t WHERE t.manifest_id = $1 AND {LIVE} ORDER BY t.name LIMIT 100", manifest_id)
    return [r["name"] for r in rows]
