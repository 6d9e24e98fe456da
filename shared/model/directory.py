"""Reads behind the web UI's organisation pages: organisations, their robots, teams, members,
collaborators, a team's members, the organisation's repositories with one holder's role, users (for
superusers) and entity look-ups; each filtered, sorted and paged in SQL with its total.

Every list has the same shape (`_page`): a CTE `visible` of the rows the caller may see, counted;
columns that cost a subquery per row are computed for the rows of the page only, except the one the
list is sorted by, which must be known for every row."""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.model import Db
from shared.model.browse import caller_grants, fetch_filtered, joined_rank, name_condition

LIVE_REPOSITORY = "r.state <> 'deleted'"
ROLE_ORDER = "array_position(ARRAY['read','write','admin'], {})"
TEAM_ROLE_ORDER = "array_position(ARRAY['member','creator','admin'], {})"


@dataclass(frozen=True)
class Listing:
    """One list: the `visible` CTE (its rows have `id` and `name`), the sortable plain columns of
    `visible`, and the computed columns ({row} names the row: a subquery per row)."""

    cte: str
    columns: dict[str, str]  # sort key -> expression over `visible` (alias {row})
    computed: dict[str, str] = field(default_factory=dict)  # output name -> expression (alias {row})


async def _page(conn: Db, listing: Listing, args: list, *, sort: str, descending: bool, limit: int, offset: int):
    """(rows of the page, total). Rows hold the columns of `visible` and every computed column."""
    total = (await fetch_filtered(conn, f"{listing.cte} SELECT count(*) AS n FROM visible v", *args))[0]["n"]
    direction = "DESC" if descending else "ASC"
    inner_sort = listing.columns.get(sort) or listing.computed[sort]
    outer = [f"{expr.format(row='page')} AS {name}" for name, expr in listing.computed.items() if name != sort]
    if sort in listing.computed:
        outer.append(f"page.sort_key AS {sort}")
    n = len(args)
    rows = await fetch_filtered(conn, f"""
        {listing.cte}
        SELECT page.*{''.join(', ' + column for column in outer)} FROM (
            SELECT v.*, {inner_sort.format(row='v')} AS sort_key
            FROM visible v
            ORDER BY sort_key {direction} NULLS LAST, v.name {direction}, v.id
            LIMIT ${n + 1} OFFSET ${n + 2}
        ) page
        ORDER BY page.sort_key {direction} NULLS LAST, page.name {direction}, page.id
    """, *args, limit, offset)
    return rows, total


def _filter(column: str, param: str, regex: bool) -> str:
    return f"({param}::text IS NULL OR {name_condition(column, param, regex)})"


def _readable_repositories(superuser: str, user: str, namespaces: str) -> str:
    """CTEs: the caller's grants and `readable_repos` (id, namespace_id), the live repositories of
    `namespaces` (a subquery of namespace ids) the caller may read. Counts, sizes and dates shown to
    a member are of these only: what they may not read is not counted either."""
    return f"""{caller_grants(user)},
        readable_repos AS MATERIALIZED (
            SELECT r.id, r.namespace_id FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
            LEFT JOIN granted g ON g.repository_id = r.id
            WHERE r.namespace_id IN ({namespaces}) AND {LIVE_REPOSITORY} AND ({superuser} OR {joined_rank(user)} >= 1)
        )"""


# Organisations

_IS_ADMIN = ("($1 OR EXISTS (SELECT 1 FROM teams t JOIN team_members tm ON tm.team_id = t.id "
             "WHERE t.namespace_id = {row}.id AND t.role = 'admin' AND tm.user_id = $2))")
ORGANIZATION_SORTS = ("name", "email", "repositories", "teams", "members", "robots", "last_modified", "size")
_ORG_COMPUTED = {
    "repositories": "(SELECT count(*) FROM readable_repos rr WHERE rr.namespace_id = {row}.id)",
    "teams": "(SELECT count(*) FROM teams t WHERE t.namespace_id = {row}.id)",
    "members": "(SELECT count(DISTINCT tm.user_id) FROM teams t JOIN team_members tm ON tm.team_id = t.id "
               "JOIN users u ON u.id = tm.user_id WHERE t.namespace_id = {row}.id AND u.enabled AND u.robot_namespace_id IS NULL)",
    # Robots are for administrators (as in Quay): a plain member gets NULL, which also sorts as unknown.
    "robots": "(CASE WHEN " + _IS_ADMIN + " THEN (SELECT count(*) FROM users u "
              "WHERE u.robot_namespace_id = {row}.id AND u.enabled) END)",
    "last_modified": "(SELECT max(t.lifetime_start) FROM readable_repos rr JOIN tags t ON t.repository_id = rr.id "
                     "WHERE rr.namespace_id = {row}.id)",
    # Exact usage (docs/quotas.md): the namespace's kept total when the caller reads every repository of
    # it, else the distinct counted blobs of the repositories they may read (what they may not read is
    # not counted either).
    "size": "(CASE WHEN NOT EXISTS (SELECT 1 FROM repositories r WHERE r.namespace_id = {row}.id AND " + LIVE_REPOSITORY + " "
            "AND NOT EXISTS (SELECT 1 FROM readable_repos rr WHERE rr.id = r.id)) "
            "THEN coalesce((SELECT u.size_bytes FROM namespace_usage u WHERE u.namespace_id = {row}.id), 0) "
            "ELSE coalesce((SELECT sum(b.size) FROM blobs b WHERE b.id IN (SELECT q.blob_id FROM quota_repository_blobs q "
            "JOIN readable_repos rr ON rr.id = q.repository_id WHERE rr.namespace_id = {row}.id)), 0) END)::bigint",
    "is_admin": _IS_ADMIN,
}


async def organizations_page(conn: Db, *, user_id: int | None, superuser: bool, text: str | None, regex: bool, sort: str,
                             descending: bool, limit: int, offset: int):
    """Organisations the user sits in a team of (a superuser: all): name, email, created_at and the
    counts, last_modified, size (of the repositories the user may read), is_admin."""
    listing = Listing(
        cte=f"""
        WITH visible AS (
            SELECT n.id, n.name, n.email, n.created_at FROM namespaces n
            WHERE n.kind = 'organization' AND n.deleted_at IS NULL AND {_filter('n.name', '$3', regex)}
              AND ($1 OR EXISTS (SELECT 1 FROM teams t JOIN team_members tm ON tm.team_id = t.id
                                 WHERE t.namespace_id = n.id AND tm.user_id = $2))
        ),
        {_readable_repositories('$1', '$2::bigint', 'SELECT id FROM visible')}""",
        columns={"name": "{row}.name", "email": "{row}.email"},
        computed=_ORG_COMPUTED,
    )
    return await _page(conn, listing, [superuser, user_id, text], sort=sort, descending=descending, limit=limit, offset=offset)


# Robots, teams, members and collaborators of one organisation

ROBOT_SORTS = ("name", "created", "last_accessed", "teams", "repositories")


async def robots_page(conn: Db, namespace_id: int, *, text: str | None, regex: bool, sort: str, descending: bool,
                      limit: int, offset: int):
    """The namespace's robots: name, description, created, last_accessed, teams (count), team_names,
    repositories (live repositories it holds a role on)."""
    listing = Listing(
        cte=f"""
        WITH visible AS (
            SELECT u.id, u.username AS name, u.description, u.created_at AS created, u.last_accessed FROM users u
            WHERE u.robot_namespace_id = $1 AND u.enabled AND {_filter('u.username', '$2', regex)}
        )""",
        columns={"name": "{row}.name", "created": "{row}.created", "last_accessed": "{row}.last_accessed"},
        computed={
            "teams": "(SELECT count(*) FROM team_members tm WHERE tm.user_id = {row}.id)",
            "repositories": f"(SELECT count(*) FROM repository_permissions p JOIN repositories r ON r.id = p.repository_id "
                            f"WHERE p.user_id = {{row}}.id AND {LIVE_REPOSITORY})",
            "team_names": "(SELECT coalesce(array_agg(t.name ORDER BY t.name), '{{}}') FROM team_members tm "
                          "JOIN teams t ON t.id = tm.team_id WHERE tm.user_id = {row}.id)",
        },
    )
    return await _page(conn, listing, [namespace_id, text], sort=sort, descending=descending, limit=limit, offset=offset)


TEAM_SORTS = ("name", "role", "members", "repositories")


async def teams_page(conn: Db, namespace_id: int, *, viewer_id: int, superuser: bool, text: str | None, regex: bool, sort: str,
                     descending: bool, limit: int, offset: int):
    """The namespace's teams: name, role, description, members (enabled users and robots),
    repositories (live repositories the team holds a role on that the viewer may read)."""
    listing = Listing(
        cte=f"""
        WITH visible AS (
            SELECT t.id, t.name, t.role, t.description FROM teams t
            WHERE t.namespace_id = $1 AND {_filter('t.name', '$2', regex)}
        ),
        {_readable_repositories('$3', '$4::bigint', '$1')}""",
        columns={"name": "{row}.name", "role": TEAM_ROLE_ORDER.format("{row}.role")},
        computed={
            "members": "(SELECT count(*) FROM team_members tm JOIN users u ON u.id = tm.user_id "
                       "WHERE tm.team_id = {row}.id AND u.enabled)",
            "repositories": "(SELECT count(*) FROM repository_permissions p JOIN readable_repos rr ON rr.id = p.repository_id "
                            "WHERE p.team_id = {row}.id)",
        },
    )
    return await _page(conn, listing, [namespace_id, text, superuser, viewer_id], sort=sort, descending=descending, limit=limit,
                       offset=offset)


MEMBER_SORTS = ("name", "teams", "repositories")


async def members_page(conn: Db, namespace_id: int, *, viewer_id: int, superuser: bool, text: str | None, regex: bool,
                       kind: str | None, sort: str, descending: bool, limit: int, offset: int):
    """Enabled users and robots in any team of the namespace: name, robot, teams (count), team_names,
    repositories (direct permissions on the namespace's live repositories the viewer may read)."""
    listing = Listing(
        cte=f"""
        WITH visible AS (
            SELECT DISTINCT u.id, u.username AS name, u.robot_namespace_id IS NOT NULL AS robot
            FROM teams t JOIN team_members tm ON tm.team_id = t.id JOIN users u ON u.id = tm.user_id
            WHERE t.namespace_id = $1 AND u.enabled AND {_filter('u.username', '$2', regex)}
              AND ($3::text IS NULL OR (u.robot_namespace_id IS NOT NULL) = ($3 = 'robot'))
        ),
        {_readable_repositories('$4', '$5::bigint', '$1')}""",
        columns={"name": "{row}.name"},
        computed={
            "teams": "(SELECT count(*) FROM team_members tm JOIN teams t ON t.id = tm.team_id "
                     "WHERE tm.user_id = {row}.id AND t.namespace_id = $1)",
            "repositories": "(SELECT count(*) FROM repository_permissions p JOIN readable_repos rr ON rr.id = p.repository_id "
                            "WHERE p.user_id = {row}.id)",
            "team_names": "(SELECT coalesce(array_agg(t.name ORDER BY t.name), '{{}}') FROM team_members tm "
                          "JOIN teams t ON t.id = tm.team_id WHERE tm.user_id = {row}.id AND t.namespace_id = $1)",
        },
    )
    return await _page(conn, listing, [namespace_id, text, kind, superuser, viewer_id], sort=sort, descending=descending,
                       limit=limit, offset=offset)


COLLABORATOR_SORTS = ("name", "repositories")


async def collaborators_page(conn: Db, namespace_id: int, *, text: str | None, regex: bool, sort: str, descending: bool,
                             limit: int, offset: int):
    """Users outside every team of the namespace who hold a direct permission on one of its live
    repositories: name, repositories (count)."""
    listing = Listing(
        cte=f"""
        WITH visible AS (
            SELECT DISTINCT u.id, u.username AS name
            FROM repository_permissions p JOIN repositories r ON r.id = p.repository_id JOIN users u ON u.id = p.user_id
            WHERE r.namespace_id = $1 AND {LIVE_REPOSITORY} AND u.enabled AND u.robot_namespace_id IS NULL
              AND {_filter('u.username', '$2', regex)}
              AND NOT EXISTS (SELECT 1 FROM team_members tm JOIN teams t ON t.id = tm.team_id
                              WHERE tm.user_id = u.id AND t.namespace_id = $1)
        )""",
        columns={"name": "{row}.name"},
        computed={
            "repositories": f"(SELECT count(*) FROM repository_permissions p JOIN repositories r ON r.id = p.repository_id "
                            f"WHERE p.user_id = {{row}}.id AND r.namespace_id = $1 AND {LIVE_REPOSITORY})",
        },
    )
    return await _page(conn, listing, [namespace_id, text], sort=sort, descending=descending, limit=limit, offset=offset)


TEAM_MEMBER_SORTS = ("name", "kind")


async def team_members_page(conn: Db, team_id: int, *, text: str | None, regex: bool, sort: str, descending: bool,
                            limit: int, offset: int):
    """Enabled members of a team: name, robot."""
    listing = Listing(
        cte=f"""
        WITH visible AS (
            SELECT u.id, u.username AS name, u.robot_namespace_id IS NOT NULL AS robot
            FROM team_members tm JOIN users u ON u.id = tm.user_id
            WHERE tm.team_id = $1 AND u.enabled AND {_filter('u.username', '$2', regex)}
        )""",
        columns={"name": "{row}.name", "kind": "{row}.robot"},
    )
    return await _page(conn, listing, [team_id, text], sort=sort, descending=descending, limit=limit, offset=offset)


REPOSITORY_ROLE_SORTS = ("name", "role", "visibility")


async def repository_roles_page(conn: Db, namespace_id: int, *, holder: tuple[str, int] | None, granted_only: bool,
                                text: str | None, regex: bool, sort: str, descending: bool, limit: int, offset: int):
    """The namespace's live repositories with the direct role of one holder (("user", id) for a user
    or robot, ("team", id)), or none: name (full), short_name, visibility, role."""
    column = {"user": "user_id", "team": "team_id"}[holder[0]] if holder else "user_id"
    listing = Listing(
        cte=f"""
        WITH visible AS (
            SELECT * FROM (
                SELECT r.id, r.full_name AS name, r.name AS short_name, r.visibility,
                       (SELECT p.role FROM repository_permissions p WHERE p.repository_id = r.id AND p.{column} = $2) AS role
                FROM repositories r
                WHERE r.namespace_id = $1 AND {LIVE_REPOSITORY} AND {_filter('r.full_name', '$3', regex)}
            ) repos WHERE NOT $4 OR role IS NOT NULL
        )""",
        columns={"name": "{row}.name", "role": ROLE_ORDER.format("{row}.role"), "visibility": "{row}.visibility"},
    )
    return await _page(conn, listing, [namespace_id, holder[1] if holder else None, text, granted_only],
                       sort=sort, descending=descending, limit=limit, offset=offset)


# Users (superusers' view)

USER_SORTS = ("name", "email", "created", "enabled")


async def users_page(conn: Db, *, text: str | None, regex: bool, enabled: bool | None, sort: str, descending: bool,
                     limit: int, offset: int):
    """Every user (no robots), disabled ones included: name, email, enabled, created."""
    listing = Listing(
        cte=f"""
        WITH visible AS (
            SELECT u.id, u.username AS name, u.email, u.enabled, u.created_at AS created FROM users u
            WHERE u.robot_namespace_id IS NULL AND {_filter('u.username', '$1', regex)}
              AND ($2::boolean IS NULL OR u.enabled = $2)
        )""",
        columns={"name": "{row}.name", "email": "{row}.email", "created": "{row}.created", "enabled": "{row}.enabled"},
    )
    return await _page(conn, listing, [text, enabled], sort=sort, descending=descending, limit=limit, offset=offset)


# Entity look-up for pickers: users by name prefix; a namespace's robots and teams.

async def entities(conn: Db, prefix: str, *, namespace_id: int | None, robots: bool, teams: bool, limit: int) -> list[dict]:
    """Users (enabled, no robots) whose name starts with `prefix`; with a namespace, its robots (by
    full or short name) and teams when asked. Each: name, kind ("user", "robot", "team")."""
    found: list[dict] = []
    rows = await conn.fetch(
        "SELECT username FROM users WHERE enabled AND robot_namespace_id IS NULL AND starts_with(username, $1) "
        "ORDER BY username LIMIT $2", prefix, limit)
    found += [{"name": r["username"], "kind": "user"} for r in rows]
    if namespace_id is not None and robots:
        rows = await conn.fetch(
            "SELECT username FROM users WHERE enabled AND robot_namespace_id = $1 "
            "AND (starts_with(username, $2) OR starts_with(split_part(username, '+', 2), $2)) ORDER BY username LIMIT $3",
            namespace_id, prefix, limit)
        found += [{"name": r["username"], "kind": "robot"} for r in rows]
    if namespace_id is not None and teams:
        rows = await conn.fetch(
            "SELECT name FROM teams WHERE namespace_id = $1 AND starts_with(name, $2) ORDER BY name LIMIT $3",
            namespace_id, prefix, limit)
        found += [{"name": r["name"], "kind": "team"} for r in rows]
    return found
