"""Tags and labels: history with name and date filters, details with pull commands, create/move,
expiry (one tag or many), delete, restore inside the time-machine window, permanent expiry, and
manifest labels."""
from __future__ import annotations

import datetime as dt
import uuid

from aiohttp import web

from shared.config import parse_duration, valid_duration
from shared.digest import InvalidDigest, parse_digest
from shared.errors import ApiError
from shared.model import labels as label_model
from shared.registry import actor_for, manifests, tags
from shared.registry.repositories import Repo

from ..state import gateway
from ..v2.manifest_rules import TAG_RE
from .base import ApiRoute, Op, iso, json_body, log_action, ok, repository_for, request_principal, text_field
from .logs import parse_time

MAX_PAGE = 1_000_000
TAG_ERROR = 'Invalid tag: must match [A-Za-z0-9_.-], NOT start with "." or "-", and can contain 1-128 characters'
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


def _tag_name(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise ApiError(400, TAG_ERROR)
    return tag


def _epoch(value) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _repo(row, repository: str) -> Repo:
    return Repo(row["id"], repository, row["namespace_id"])


def _change(request: web.Request):
    return gateway(request).registry.change(actor_for(request_principal(request)))


def _tag_view(row) -> dict:
    end = row["lifetime_end"]
    if end is None and row["expires_at"] is not None and not row["live"]:
        end = row["expires_at"]
    return {
        "name": row["name"], "reversion": row["reversion"], "manifest_digest": row["digest"],
        "is_manifest_list": row["media_type"] in INDEX_TYPES, "size": row["size"],
        "start_ts": _epoch(row["lifetime_start"]), "end_ts": _epoch(end), "last_modified": iso(row["lifetime_start"]),
        "expiration": iso(row["expires_at"]), "is_live": row["live"],
    }


async def list_tags(request: web.Request, repository: str) -> web.Response:
    gw = gateway(request)
    repo, _ = await repository_for(request, repository, "read")
    query = request.query
    try:
        limit = int(query.get("limit", "50"))
        page = int(query.get("page", "1"))
    except ValueError:
        raise ApiError(400, "limit and page must be whole numbers") from None
    if not 1 <= limit <= 100 or not 1 <= page <= MAX_PAGE:
        raise ApiError(400, f"limit must be from 1 to 100 and page from 1 to {MAX_PAGE}")
    where = tags.HistoryFilter(specific=query.get("specificTag") or None,
                               only_active=query.get("onlyActiveTags", "false").lower() == "true")
    name_filter = query.get("filter_tag_name")
    if name_filter:
        kind, _, value = name_filter.partition(":")
        if kind not in ("like", "eq") or not value:
            raise ApiError(400, "filter_tag_name must be like:<text> or eq:<name>")
        if kind == "eq":
            where.equals = value
        else:
            where.contains = value
    if query.get("starttime") or query.get("endtime"):
        # Rows alive at any moment of [starttime, endtime): history "as of" a period.
        where.alive_from = parse_time(query["starttime"], "starttime", end=False) if query.get("starttime") else None
        where.alive_until = parse_time(query["endtime"], "endtime", end=True) if query.get("endtime") else None
        if where.alive_from and where.alive_until and where.alive_until < where.alive_from:
            raise ApiError(400, "endtime is before starttime")
    rows = await tags.history(gw.pool, repo["id"], where, limit + 1, (page - 1) * limit)
    return ok({"tags": [_tag_view(r) for r in rows[:limit]], "page": page, "has_additional": len(rows) > limit})


async def tag_details(request: web.Request, repository: str, tag: str) -> web.Response:
    gw = gateway(request)
    repo, _ = await repository_for(request, repository, "read")
    row = await tags.live_row(gw.pool, repo["id"], _tag_name(tag))
    if row is None:
        raise ApiError(404, f"tag {tag} not found in {repository}", error_type="not_found")
    first = await tags.first_seen(gw.pool, repo["id"], tag)
    manifest_id = await manifests.id_of(gw.pool, repo["id"], row["digest"])
    labels = await label_model.list_for(gw.pool, manifest_id) if manifest_id is not None else []
    host = gw.config.server_hostname
    return ok({
        **_tag_view(row), "repository": repository, "created": iso(first), "modified": iso(row["lifetime_start"]),
        "labels": [label_model.view(label) for label in labels],
        "pull_commands": {
            "podman": f"podman pull {host}/{repository}:{tag}", "docker": f"docker pull {host}/{repository}:{tag}",
            "podman_by_digest": f"podman pull {host}/{repository}@{row['digest']}",
            "docker_by_digest": f"docker pull {host}/{repository}@{row['digest']}",
        },
    })


async def _manifest_id(conn, repo_id: int, digest: str, repository: str) -> int:
    try:
        digest = parse_digest(digest)
    except InvalidDigest as exc:
        raise ApiError(400, f"manifest_digest: {exc}") from None
    manifest_id = await manifests.id_of(conn, repo_id, digest)
    if manifest_id is None:
        raise ApiError(404, f"manifest {digest} not found in {repository}", error_type="not_found")
    return manifest_id


# The last second PostgreSQL and Python both hold (9999-12-31T23:59:59Z).
MAX_EPOCH = 253402300799


def _expiration(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, "expiration must be seconds since the epoch (UTC), or null to clear it")
    if not 0 <= value <= MAX_EPOCH:  # also NaN (every comparison is false)
        raise ApiError(400, f"expiration must be seconds since the epoch (UTC) from now to {MAX_EPOCH} (year 9999)")
    moment = dt.datetime.fromtimestamp(value, dt.UTC)
    if moment <= dt.datetime.now(dt.UTC):
        raise ApiError(400, "Could not update tag expiration; expiration must be in the future")
    return moment


async def change_tag(request: web.Request, repository: str, tag: str) -> web.Response:
    row, _ = await repository_for(request, repository, "write")
    repo = _repo(row, repository)
    _tag_name(tag)
    body = await json_body(request)
    if "manifest_digest" not in body and "expiration" not in body:
        raise ApiError(400, "give manifest_digest (create or move the tag) and/or expiration (seconds since the epoch, or null)")
    expires = _expiration(body.get("expiration")) if "expiration" in body else None
    async with _change(request) as change:
        if body.get("manifest_digest") is not None:
            digest = text_field(body, "manifest_digest", required=True, max_length=200)
            manifest_id = await _manifest_id(change.conn, repo.id, digest, repository)
            existed = await tags.is_live(change.conn, repo.id, tag)
            if await tags.put(change, repo, tag, manifest_id, digest, expires_at=expires):
                await log_action(change.conn, request, "move_tag" if existed else "create_tag",
                                 namespace_id=repo.namespace_id, repository_id=repo.id, repository=repository, tag=tag,
                                 manifest_digest=digest)
        if "expiration" in body:
            if await tags.set_expiration(change, repo.id, [tag], expires):
                raise ApiError(404, f"tag {tag} not found in {repository}", error_type="not_found")
            await log_action(change.conn, request, "change_tag_expiration", namespace_id=repo.namespace_id,
                             repository_id=repo.id, repository=repository, tag=tag, expiration=iso(expires))
    return ok({"success": True}, 201)


async def bulk_expiration(request: web.Request, repository: str) -> web.Response:
    row, _ = await repository_for(request, repository, "write")
    body = await json_body(request)
    names = body.get("tags")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ApiError(400, "tags must be a non-empty list of tag names")
    for name in names:
        _tag_name(name)
    if "expiration" not in body:
        raise ApiError(400, "expiration is required: seconds since the epoch, or null to clear")
    expires = _expiration(body["expiration"])
    async with _change(request) as change:
        missing = await tags.set_expiration(change, row["id"], names, expires)
        if missing:
            raise ApiError(400, f"nothing was changed: no live tag {', '.join(missing)} in {repository}",
                           detail={"missing": missing})
        for name in sorted(set(names)):
            await log_action(change.conn, request, "change_tag_expiration", namespace_id=row["namespace_id"],
                             repository_id=row["id"], repository=repository, tag=name, expiration=iso(expires), bulk=True)
    return ok({"success": True, "tags": sorted(set(names)), "expiration": iso(expires)})


async def delete_tag(request: web.Request, repository: str, tag: str) -> web.Response:
    row, _ = await repository_for(request, repository, "write")
    repo = _repo(row, repository)
    _tag_name(tag)
    async with _change(request) as change:
        if not await tags.delete(change, repo, tag):
            raise ApiError(404, f"tag {tag} not found in {repository}", error_type="not_found")
        await log_action(change.conn, request, "delete_tag", namespace_id=repo.namespace_id, repository_id=repo.id,
                         repository=repository, tag=tag)
    return ok(status=204)


async def restore_tag(request: web.Request, repository: str, tag: str) -> web.Response:
    gw = gateway(request)
    row, _ = await repository_for(request, repository, "write")
    repo = _repo(row, repository)
    _tag_name(tag)
    digest = text_field(await json_body(request), "manifest_digest", required=True, max_length=200)
    async with _change(request) as change:
        manifest_id = await _manifest_id(change.conn, repo.id, digest, repository)
        window = await tags.window_s(change.conn, repo.namespace_id, valid_duration(gw.config.default_tag_expiration))
        if not await tags.restore(change, repo, tag, manifest_id, digest, window):
            raise ApiError(400, f"cannot restore {tag} to {digest}: the tag did not point there within the time-machine "
                                f"window ({window} s) of this organization", error_type="outside_time_machine")
        await log_action(change.conn, request, "revert_tag", namespace_id=repo.namespace_id, repository_id=repo.id,
                         repository=repository, tag=tag, manifest_digest=digest)
    return ok({"success": True})


async def expire_tag(request: web.Request, repository: str, tag: str) -> web.Response:
    """Permanently expire ended rows of the tag (all, or those of one manifest): out of the time
    machine at once, so restore refuses them and gc collects them on its next pass."""
    row, _ = await repository_for(request, repository, "write")
    _tag_name(tag)
    digest = text_field(await json_body(request), "manifest_digest", max_length=200)
    async with _change(request) as change:
        manifest_id = await _manifest_id(change.conn, row["id"], digest, repository) if digest else None
        count = await tags.expire_history(change, row["id"], tag, manifest_id)
        if not count:
            raise ApiError(400, f"no ended history of {tag} to expire: delete the tag first", error_type="nothing_to_expire")
        await log_action(change.conn, request, "permanently_delete_tag", namespace_id=row["namespace_id"],
                         repository_id=row["id"], repository=repository, tag=tag, manifest_digest=digest, rows=count)
    return ok({"success": True, "expired_rows": count})


async def list_labels(request: web.Request, repository: str, digest: str) -> web.Response:
    gw = gateway(request)
    repo, _ = await repository_for(request, repository, "read")
    manifest_id = await _manifest_id(gw.pool, repo["id"], digest, repository)
    rows = await label_model.list_for(gw.pool, manifest_id, request.query.get("filter", ""))
    return ok({"labels": [label_model.view(r) for r in rows]})


EXPIRES_AFTER = "quay.expires-after"


def _expires_after(key: str, value: str) -> None:
    """`quay.expires-after` asks for a tag expiry: a duration ("2w") that ends before year 9999."""
    if key != EXPIRES_AFTER:
        return
    seconds = parse_duration(value)
    if seconds is None or seconds > MAX_EPOCH - dt.datetime.now(dt.UTC).timestamp():
        raise label_model.LabelError(f"{EXPIRES_AFTER} must be a duration like 2w, 1d, 12h, 30m or 45s that ends before "
                                     f"year 9999; got {value[:40]!r}")


async def add_label(request: web.Request, repository: str, digest: str) -> web.Response:
    repo, _ = await repository_for(request, repository, "write")
    body = await json_body(request)
    try:
        if "label" in body:
            key, value = label_model.parse_label(text_field(body, "label", required=True, max_length=70000))
        else:
            key = text_field(body, "key", required=True, max_length=255)
            value = text_field(body, "value", required=True, max_length=65536)
        label_model.check(key, value)
        _expires_after(key, value)
    except label_model.LabelError as exc:
        raise ApiError(400, str(exc)) from None
    media_type = body.get("media_type") or "text/plain"
    if media_type not in label_model.MEDIA_TYPES:
        raise ApiError(400, f"media_type must be one of {', '.join(label_model.MEDIA_TYPES)}")
    async with _change(request) as change:
        manifest_id = await _manifest_id(change.conn, repo["id"], digest, repository)
        label_id = await label_model.add(change.conn, manifest_id, key, value, media_type, "api")
        await log_action(change.conn, request, "manifest_label_add", namespace_id=repo["namespace_id"],
                         repository_id=repo["id"], repository=repository, manifest_digest=digest, key=key, value=value)
        row = await label_model.get(change.conn, manifest_id, label_id)
    return ok(label_model.view(row), 201)


async def _label(conn, manifest_id: int, labelid: str):
    try:
        ident = uuid.UUID(labelid)
    except ValueError:
        raise ApiError(404, f"label {labelid} not found", error_type="not_found") from None
    row = await label_model.get(conn, manifest_id, ident)
    if row is None:
        raise ApiError(404, f"label {labelid} not found", error_type="not_found")
    return row


async def get_label(request: web.Request, repository: str, digest: str, labelid: str) -> web.Response:
    gw = gateway(request)
    repo, _ = await repository_for(request, repository, "read")
    manifest_id = await _manifest_id(gw.pool, repo["id"], digest, repository)
    return ok(label_model.view(await _label(gw.pool, manifest_id, labelid)))


async def delete_label(request: web.Request, repository: str, digest: str, labelid: str) -> web.Response:
    repo, _ = await repository_for(request, repository, "write")
    async with _change(request) as change:
        manifest_id = await _manifest_id(change.conn, repo["id"], digest, repository)
        row = await _label(change.conn, manifest_id, labelid)
        await label_model.delete(change.conn, row["id"])
        await log_action(change.conn, request, "manifest_label_delete", namespace_id=repo["namespace_id"],
                         repository_id=repo["id"], repository=repository, manifest_digest=digest, key=row["key"])
    return ok(status=204)


HISTORY_QUERY: dict[str, dict] = {
    "specificTag": {"type": "string"}, "filter_tag_name": {"type": "string"},
    "onlyActiveTags": {"type": "string", "enum": ["true", "false"]},
    "limit": {"type": "integer", "minimum": 1, "maximum": 100}, "page": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    "starttime": {"type": "string"}, "endtime": {"type": "string"},
}
ROUTES = [
    ApiRoute("tags", "/repository/{repository}/tag/", {
        "GET": Op(list_tags, "Tag history, newest first: live and ended rows, by name and date range", auth="optional",
                  query=HISTORY_QUERY),
    }),
    ApiRoute("tags_expiration", "/repository/{repository}/tags/expiration", {
        "PUT": Op(bulk_expiration, "Set or clear the expiry of many live tags at once (all or nothing)",
                  body={"type": "object", "required": ["tags", "expiration"],
                        "properties": {"tags": {"type": "array", "items": {"type": "string"}},
                                       "expiration": {"type": "integer", "nullable": True}}}),
    }),
    ApiRoute("tag_restore", "/repository/{repository}/tag/{tag}/restore", {
        "POST": Op(restore_tag, "Point the tag back at a manifest it had inside the time-machine window",
                   body={"type": "object", "required": ["manifest_digest"], "properties": {"manifest_digest": {"type": "string"}}}),
    }),
    ApiRoute("tag_expire", "/repository/{repository}/tag/{tag}/expire", {
        "POST": Op(expire_tag, "Take the tag's ended history out of the time machine now",
                   body={"type": "object", "properties": {"manifest_digest": {"type": "string"}}}),
    }),
    ApiRoute("tag", "/repository/{repository}/tag/{tag}", {
        "GET": Op(tag_details, "A live tag: digest, size, times, labels and pull commands", auth="optional"),
        "PUT": Op(change_tag, "Create or move the tag (manifest_digest) and/or set its expiry (expiration)", status=201,
                  body={"type": "object", "properties": {"manifest_digest": {"type": "string"},
                                                         "expiration": {"type": "integer", "nullable": True}}}),
        "DELETE": Op(delete_tag, "Delete the tag (its history stays restorable inside the window)", status=204),
    }),
    ApiRoute("labels", "/repository/{repository}/manifest/{digest}/labels", {
        "GET": Op(list_labels, "Labels of a manifest", auth="optional", query={"filter": {"type": "string"}}),
        "POST": Op(add_label, "Add a label: {key, value, media_type} or {label: \"key=value\"}", status=201,
                   body={"type": "object", "properties": {"key": {"type": "string"}, "value": {"type": "string"},
                                                          "label": {"type": "string"},
                                                          "media_type": {"type": "string", "enum": list(label_model.MEDIA_TYPES)}}}),
    }),
    ApiRoute("label", "/repository/{repository}/manifest/{digest}/labels/{labelid}", {
        "GET": Op(get_label, "One label", auth="optional"),
        "DELETE": Op(delete_label, "Delete a label", status=204),
    }),
]
