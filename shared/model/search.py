"""Search across the registry for one caller: repositories by name, live tags by name and manifests
by digest prefix, only in repositories the caller may read (what they may not read is simply not
there, as if it did not exist). Exact matches come first, then prefixes, then the rest."""
from __future__ import annotations

import re

from shared.model import Db
from shared.model.access import readable_sql
from shared.model.accounts import Principal

_HEX = re.compile(r"^(?:(sha256|sha512):)?([0-9a-f]{4,128})$")
_LIVE_TAG = "t.lifetime_end IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())"

# The repositories the caller may read: computed once per query, then joined (a per-row check
# over every tag of the registry would cost a subquery per tag).
_READABLE = f"""
WITH readable AS MATERIALIZED (
    SELECT r.id, r.full_name, r.visibility FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
    WHERE r.state <> 'deleted' AND n.deleted_at IS NULL AND {readable_sql('$1::bigint', '$2::boolean')}
)
"""


def digest_prefix(text: str) -> str | None:
    """`sha256:ab12`, or bare hex of at least four digits (taken as sha256), to a LIKE prefix; None
    when the text cannot start a digest. Hex holds no LIKE wildcards."""
    found = _HEX.match(text.strip().lower())
    if not found:
        return None
    return f"{found.group(1) or 'sha256'}:{found.group(2)}%"


def _who(principal: Principal | None, sees_all: bool) -> list:
    return [principal.id if principal else None, sees_all or bool(principal and principal.superuser)]


async def repositories(conn: Db, principal: Principal | None, text: str, *, limit: int, offset: int, sees_all: bool = False) -> list:
    """full_name, namespace, name, visibility, description, last_modified."""
    return await conn.fetch(
        f"""
        {_READABLE}
        SELECT rd.full_name, n.name AS namespace, r.name, r.visibility, r.description,
               (SELECT max(t.lifetime_start) FROM tags t WHERE t.repository_id = r.id) AS last_modified
        FROM readable rd JOIN repositories r ON r.id = rd.id JOIN namespaces n ON n.id = r.namespace_id
        WHERE strpos(rd.full_name, $3) > 0
        ORDER BY (r.name = $3 OR rd.full_name = $3) DESC, starts_with(r.name, $3) DESC, rd.full_name
        LIMIT $4 OFFSET $5
        """,
        *_who(principal, sees_all), text.lower(), limit, offset,
    )


async def tags(conn: Db, principal: Principal | None, text: str, *, limit: int, offset: int, sees_all: bool = False) -> list:
    """Live tags whose name holds the text (any case): repository, name, digest, last_modified."""
    return await conn.fetch(
        f"""
        {_READABLE}
        SELECT rd.full_name AS repository, t.name, m.digest, t.lifetime_start AS last_modified
        FROM readable rd JOIN tags t ON t.repository_id = rd.id JOIN manifests m ON m.id = t.manifest_id
        WHERE {_LIVE_TAG} AND strpos(lower(t.name), $3) > 0
        ORDER BY (lower(t.name) = $3) DESC, starts_with(lower(t.name), $3) DESC, t.lifetime_start DESC, rd.full_name, t.name
        LIMIT $4 OFFSET $5
        """,
        *_who(principal, sees_all), text.lower(), limit, offset,
    )


async def digests(conn: Db, principal: Principal | None, text: str, *, limit: int, offset: int, sees_all: bool = False) -> list:
    """Manifests whose digest starts with the text: repository, digest, media_type, artifact_type,
    created_at, tags (live tags on it). Nothing when the text cannot start a digest."""
    prefix = digest_prefix(text)
    if prefix is None:
        return []
    return await conn.fetch(
        f"""
        {_READABLE}
        SELECT rd.full_name AS repository, m.digest, m.media_type, m.artifact_type, m.created_at,
               (SELECT coalesce(array_agg(t.name ORDER BY t.name), '{{}}') FROM tags t
                 WHERE t.manifest_id = m.id AND {_LIVE_TAG}) AS tags
        FROM manifests m JOIN readable rd ON rd.id = m.repository_id
        WHERE m.digest LIKE $3
        ORDER BY m.created_at DESC, rd.full_name, m.digest
        LIMIT $4 OFFSET $5
        """,
        *_who(principal, sees_all), prefix, limit, offset,
    )
