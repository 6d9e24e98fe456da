"""Default permissions ("prototypes"): when anyone, or a given user or robot, creates a repository in
the organisation, grant a user, robot or team a role. Applied at creation, including create-on-push."""
from __future__ import annotations

import uuid
from typing import overload

from aiohttp import web

from shared.errors import ApiError
from shared.model import Db, default_permissions
from shared.model import access as access_model

from ..v2.base import gateway
from .base import ApiRoute, Op, choice_field, json_body, log_action, ok, organization_for
from .teams import member_id, team_row


def _view(row) -> dict:
    delegate = ({"name": row["delegate_user"], "kind": "user"} if row["delegate_user"]
                else {"name": row["delegate_team"], "kind": "team"})
    return {"id": str(row["id"]), "role": row["role"], "delegate": delegate,
            "activating_user": {"name": row["activating_user"]} if row["activating_user"] else None}


@overload
def _name_of(value: dict, key: str) -> str: ...


@overload
def _name_of(value: object, key: str) -> str | None: ...


def _name_of(value, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ApiError(400, f"field {key!r} must be an object like {{\"name\": \"...\"}}")
    return value["name"]


async def list_prototypes(request: web.Request, orgname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    rows = await default_permissions.in_namespace(gw.pool, namespace["id"])
    return ok({"prototypes": [_view(r) for r in rows]})


async def create_prototype(request: web.Request, orgname: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    body = await json_body(request)
    role = choice_field(body, "role", access_model.REPO_ROLES)
    delegate = body.get("delegate")
    if not isinstance(delegate, dict):
        raise ApiError(400, "field 'delegate' is required, like {\"name\": \"builders\", \"kind\": \"team\"}")
    kind = choice_field(delegate, "kind", ("user", "team"))
    delegate_name = _name_of(delegate, "delegate")
    activating = _name_of(body.get("activating_user"), "activating_user")
    prototype_id = uuid.uuid4()
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            activating_id = await member_id(conn, namespace, activating) if activating else None
            user_id = await member_id(conn, namespace, delegate_name) if kind == "user" else None
            team_id = (await team_row(conn, namespace["id"], delegate_name))["id"] if kind == "team" else None
            await default_permissions.create(conn, prototype_id, namespace["id"], activating_user_id=activating_id,
                                             delegate_user_id=user_id, delegate_team_id=team_id, role=role)
            await log_action(conn, request, "create_prototype_permission", namespace_id=namespace["id"], namespace=orgname,
                             role=role, delegate={"name": delegate_name, "kind": kind}, activating_user=activating)
            row = await default_permissions.by_id(conn, prototype_id)
    return ok(_view(row), 201)


async def _prototype(conn: Db, namespace, prototypeid: str):
    try:
        ident = uuid.UUID(prototypeid)
    except ValueError:
        raise ApiError(404, f"default permission {prototypeid} not found", error_type="not_found") from None
    row = await default_permissions.by_id_in_namespace(conn, ident, namespace["id"])
    if row is None:
        raise ApiError(404, f"default permission {prototypeid} not found", error_type="not_found")
    return row


async def update_prototype(request: web.Request, orgname: str, prototypeid: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    role = choice_field(await json_body(request), "role", access_model.REPO_ROLES)
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            row = await _prototype(conn, namespace, prototypeid)
            await default_permissions.set_role(conn, row["id"], role)
            await log_action(conn, request, "modify_prototype_permission", namespace_id=namespace["id"], namespace=orgname,
                             id=prototypeid, role=role)
            row = await default_permissions.by_id(conn, row["id"])
    return ok(_view(row))


async def delete_prototype(request: web.Request, orgname: str, prototypeid: str) -> web.Response:
    gw = gateway(request)
    namespace, _ = await organization_for(request, orgname, need="admin")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            row = await _prototype(conn, namespace, prototypeid)
            await default_permissions.delete(conn, row["id"])
            await log_action(conn, request, "delete_prototype_permission", namespace_id=namespace["id"], namespace=orgname,
                             id=prototypeid)
    return ok(status=204)


ROUTES = [
    ApiRoute("prototypes", "/organization/{orgname}/prototypes", {
        "GET": Op(list_prototypes, "Default permissions of the organization"),
        "POST": Op(create_prototype, "Add a default permission", status=201, body={
            "type": "object", "required": ["role", "delegate"],
            "properties": {"role": {"enum": list(access_model.REPO_ROLES)},
                           "activating_user": {"type": "object", "properties": {"name": {"type": "string"}}},
                           "delegate": {"type": "object", "required": ["name", "kind"],
                                        "properties": {"name": {"type": "string"}, "kind": {"enum": ["user", "team"]}}}}}),
    }),
    ApiRoute("prototype", "/organization/{orgname}/prototypes/{prototypeid}", {
        "PUT": Op(update_prototype, "Change a default permission's role",
                  body={"type": "object", "required": ["role"], "properties": {"role": {"enum": list(access_model.REPO_ROLES)}}}),
        "DELETE": Op(delete_prototype, "Remove a default permission", status=204),
    }),
]
