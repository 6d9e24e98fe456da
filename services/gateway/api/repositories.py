"""Repositories: create (public/private, description), list with filters and pages, view, update,
delete, change visibility, change state (normal / read-only)."""
from __future__ import annotations

import base64
import re

from aiohttp import web

from shared.errors import ApiError
from shared.model import access as access_model
from shared.registry import actor_for, repositories, tags
from shared.registry.repositories import COMPONENT, name_problem

from ..state import gateway
from . import edge
from .base import (
    ApiRoute,
    Op,
    caller,
    choice_field,
    iso,
    json_body,
    log_action,
    namespace_for,
    ok,
    repository_for,
    request_principal,
    sees_everything,
    signed_in,
    text_field,
)

REPO_NAME_RE = re.compile(rf"^{COMPONENT}(?:/{COMPONENT})*$")
STATES = {"NORMAL": "normal", "READ_ONLY": "readonly"}


def _view(row, role: str | None) -> dict:
    namespace, name = row["full_name"].split("/", 1)
    return {
        "namespace": namespace, "name": name, "description": row["description"],
        "is_public": row["visibility"] == "public", "kind": "image",
        "state": {v: k for k, v in STATES.items()}.get(row["state"], row["state"].upper()),
        "can_write": access_model.RANK[role] >= 2, "can_admin": access_model.RANK[role] >= 3,
        "created": iso(row["created_at"]),
    }


async def create_repository(request: web.Request) -> web.Response:
    gw = gateway(request)
    principal = await signed_in(request)
    body = await json_body(request)
    name = text_field(body, "repository", required=True, max_length=255)
    namespace_name = text_field(body, "namespace", max_length=255, default=principal.username)
    if namespace_name is None:  # "namespace": null
        raise ApiError(400, "field 'namespace' must be a string")
    visibility = choice_field(body, "visibility", ("public", "private"), default="private")
    description = text_field(body, "description", max_length=65536, default="") or ""
    if not REPO_NAME_RE.match(name) or name_problem(f"{namespace_name}/{name}"):
        raise ApiError(400, f"invalid repository name {name!r}: use lowercase letters, digits and single '.', '_' or '-' "
                            "between them; '/' separates path components")
    namespace, role = await namespace_for(request, namespace_name)
    if not access_model.can_create_in(role):
        raise ApiError(403, f"you may not create repositories in {namespace_name}", error_type="insufficient_scope")
    async with gw.registry.change(actor_for(principal)) as change:
        repo_id, created = await repositories.create(change, namespace["id"], namespace_name, name, creator=principal,
                                                     visibility=visibility, description=description)
        if not created:
            raise ApiError(409, f"repository {namespace_name}/{name} already exists", error_type="conflict")
        await log_action(change.conn, request, "create_repo", namespace_id=namespace["id"], namespace=namespace_name,
                         repository_id=repo_id, repository=f"{namespace_name}/{name}", visibility=visibility)
    return ok({"namespace": namespace_name, "name": name, "kind": "image"}, 201)


def _cursor(token: str | None) -> str:
    if not token:
        return ""
    try:
        after = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "next_page is not a token this API gave out") from None
    if edge.text_problem(after) or len(after) > 1024:
        raise ApiError(400, "next_page is not a token this API gave out")
    return after


async def list_repositories(request: web.Request) -> web.Response:
    gw = gateway(request)
    principal = await caller(request)
    query = request.query
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        raise ApiError(400, "limit must be a whole number from 1 to 100") from None
    if not 1 <= limit <= 100:
        raise ApiError(400, "limit must be a whole number from 1 to 100")
    public_only = query.get("public", "false").lower() == "true"
    namespace = query.get("namespace")
    after = _cursor(query.get("next_page"))
    everything = await sees_everything(request)
    rows = await repositories.list_readable(gw.pool, principal, after=after, namespace=namespace, public_only=public_only,
                                            limit=limit + 1, sees_all=everything)
    page = rows[:limit]
    result: dict[str, object] = {
        "repositories": [_view(r, "admin" if everything else access_model.role_name(r["rank"])) for r in page]}
    if len(rows) > limit:
        result["next_page"] = base64.urlsafe_b64encode(page[-1]["full_name"].encode()).decode()
    return ok(result)


async def get_repository(request: web.Request, repository: str) -> web.Response:
    gw = gateway(request)
    row, role = await repository_for(request, repository, "read")
    view = _view(row, role)
    if request.query.get("includeTags", "true").lower() != "false":
        live = await tags.live_with_manifests(gw.pool, row["id"], 500)
        view["tags"] = {t["name"]: {"name": t["name"], "manifest_digest": t["digest"], "size": t["size"],
                                    "last_modified": iso(t["lifetime_start"])} for t in live}
    return ok(view)


async def update_repository(request: web.Request, repository: str) -> web.Response:
    gw = gateway(request)
    row, role = await repository_for(request, repository, "write")
    description = text_field(await json_body(request), "description", required=True, max_length=65536)
    async with gw.registry.change(actor_for(request_principal(request))) as change:
        await repositories.set_description(change, row["id"], description)
        await log_action(change.conn, request, "set_repo_description", namespace_id=row["namespace_id"],
                         repository_id=row["id"], repository=repository)
    return ok({"success": True})


async def delete_repository(request: web.Request, repository: str) -> web.Response:
    gw = gateway(request)
    row, _ = await repository_for(request, repository, "admin")
    async with gw.registry.change(actor_for(request_principal(request))) as change:
        await log_action(change.conn, request, "delete_repo", namespace_id=row["namespace_id"], repository_id=row["id"],
                         repository=repository)
        await repositories.delete(change, row["id"], repository)
    return ok(status=204)


async def change_visibility(request: web.Request, repository: str) -> web.Response:
    gw = gateway(request)
    row, _ = await repository_for(request, repository, "admin")
    visibility = choice_field(await json_body(request), "visibility", ("public", "private"))
    async with gw.registry.change(actor_for(request_principal(request))) as change:
        await repositories.set_visibility(change, row["id"], repository, visibility)
        await log_action(change.conn, request, "change_repo_visibility", namespace_id=row["namespace_id"],
                         repository_id=row["id"], repository=repository, visibility=visibility)
    return ok({"success": True, "visibility": visibility})


async def change_state(request: web.Request, repository: str) -> web.Response:
    gw = gateway(request)
    row, _ = await repository_for(request, repository, "admin")
    state = choice_field(await json_body(request), "state", tuple(STATES))
    async with gw.registry.change(actor_for(request_principal(request))) as change:
        await repositories.set_state(change, row["id"], repository, STATES[state])
        await log_action(change.conn, request, "change_repo_state", namespace_id=row["namespace_id"],
                         repository_id=row["id"], repository=repository, state=state)
    return ok({"success": True, "state": state})


ROUTES = [
    ApiRoute("repositories", "/repository", {
        "GET": Op(list_repositories, "Repositories you may read (filter by namespace, public; paged by next_page)",
                  auth="optional", query={"namespace": {"type": "string"}, "public": {"type": "string", "enum": ["true", "false"]},
                                          "next_page": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 100}}),
        "POST": Op(create_repository, "Create a repository (private unless visibility is public)", status=201, body={
            "type": "object", "required": ["repository"],
            "properties": {"repository": {"type": "string"}, "namespace": {"type": "string"},
                           "visibility": {"enum": ["public", "private"]}, "description": {"type": "string"}}}),
    }),
    ApiRoute("repository", "/repository/{repository}", {
        "GET": Op(get_repository, "A repository and its tags", auth="optional",
                  query={"includeTags": {"type": "string", "enum": ["true", "false"]}}),
        "PUT": Op(update_repository, "Change the description",
                  body={"type": "object", "required": ["description"], "properties": {"description": {"type": "string"}}}),
        "DELETE": Op(delete_repository, "Delete a repository (hidden at once, purged by gc)", status=204),
    }),
    ApiRoute("repository_visibility", "/repository/{repository}/changevisibility", {
        "POST": Op(change_visibility, "Make a repository public or private",
                   body={"type": "object", "required": ["visibility"], "properties": {"visibility": {"enum": ["public", "private"]}}}),
    }),
    ApiRoute("repository_state", "/repository/{repository}/changestate", {
        "PUT": Op(change_state, "Set the repository NORMAL or READ_ONLY (pushes refused)",
                  body={"type": "object", "required": ["state"], "properties": {"state": {"enum": list(STATES)}}}),
    }),
]
