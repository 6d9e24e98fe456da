"""Organisations: create, view, update (e-mail, time-machine window), delete, members."""
from __future__ import annotations

from aiohttp import web

from shared.config import parse_duration, valid_duration
from shared.errors import ApiError
from shared.model import accounts
from shared.model import teams as teams_model

from ..v2.base import gateway
from .base import ApiRoute, Op, iso, json_body, log_action, namespace_name, ok, organization_for, signed_in, text_field
from .quotas import quota_report


def expiration_options(config) -> list[int]:
    return [valid_duration(option) for option in config.tag_expiration_options]


async def create_organization(request: web.Request) -> web.Response:
    gw = gateway(request)
    principal = await signed_in(request)
    if principal.robot:
        raise ApiError(403, "robots cannot create organizations", error_type="insufficient_scope")
    body = await json_body(request)
    name = namespace_name(body, "name")
    email = text_field(body, "email", max_length=255)
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            namespace_id = await accounts.create_organization(
                conn, name, email, principal.id, parse_duration(gw.config.default_tag_expiration))
            await log_action(conn, request, "org_create", namespace_id=namespace_id, namespace=name, email=email)
    return ok({"name": name, "email": email}, 201)


async def _view(gw, row, role) -> dict:
    view = {"name": row["name"], "is_member": role is not None, "is_admin": role == "admin"}
    if role is None:
        return view
    teams = await teams_model.teams_with_member_counts(gw.pool, row["id"])
    return {**view, "email": row["email"], "created": iso(row["created_at"]),
            "tag_expiration_s": row["tag_expiration_s"] if row["tag_expiration_s"] is not None
            else parse_duration(gw.config.default_tag_expiration),
            "tag_expiration_options_s": expiration_options(gw.config),
            "teams": {t["name"]: {"name": t["name"], "role": t["role"], "description": t["description"],
                                  "member_count": t["members"]} for t in teams},
            "ordered_teams": [t["name"] for t in teams],
            # The usage covers every repository: shown to those who may read them all (administrators),
            # so a plain member learns nothing about repositories he cannot read.
            **({"quota_report": await quota_report(gw, row["id"])}
               if gw.config.feature_quota_management and role == "admin" else {})}


async def get_organization(request: web.Request, orgname: str) -> web.Response:
    gw = gateway(request)
    row, role = await organization_for(request, orgname)
    return ok(await _view(gw, row, role))


async def update_organization(request: web.Request, orgname: str) -> web.Response:
    gw = gateway(request)
    row, role = await organization_for(request, orgname, need="admin")
    body = await json_body(request)
    email = text_field(body, "email", max_length=255, default=row["email"])
    expiration = body.get("tag_expiration_s", row["tag_expiration_s"])
    if "tag_expiration_s" in body:
        options = expiration_options(gw.config)
        if not isinstance(expiration, int) or isinstance(expiration, bool) or expiration not in options:
            raise ApiError(400, f"field 'tag_expiration_s' must be one of {options} (TAG_EXPIRATION_OPTIONS); got {expiration!r}")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            await accounts.update_namespace_settings(conn, row["id"], email, expiration)
            await log_action(conn, request, "org_change_details", namespace_id=row["id"], namespace=orgname,
                             email=email, tag_expiration_s=expiration)
    row = await accounts.namespace_row(gw.pool, orgname)
    return ok(await _view(gw, row, role))


async def delete_organization(request: web.Request, orgname: str) -> web.Response:
    gw = gateway(request)
    row, _ = await organization_for(request, orgname, need="admin")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            await log_action(conn, request, "org_delete", namespace_id=row["id"], namespace=orgname)
            await accounts.mark_namespace_deleted(conn, row["id"])
    return ok(status=204)


async def list_members(request: web.Request, orgname: str) -> web.Response:
    gw = gateway(request)
    row, _ = await organization_for(request, orgname, need="member")
    rows = await accounts.organization_members(gw.pool, row["id"])
    return ok({"members": [{"name": r["username"], "kind": "robot" if r["robot"] else "user",
                            "teams": [{"name": t} for t in r["teams"]]} for r in rows]})


ROUTES = [
    ApiRoute("organizations", "/organization/", {
        "POST": Op(create_organization, "Create an organization; you become a member of its owners team", status=201,
                   body={"type": "object", "required": ["name"],
                         "properties": {"name": {"type": "string"}, "email": {"type": "string"}}}),
    }),
    ApiRoute("organization", "/organization/{orgname}", {
        "GET": Op(get_organization, "An organization (members see teams and settings)", auth="optional"),
        "PUT": Op(update_organization, "Change e-mail or time-machine window (tag_expiration_s)",
                  body={"type": "object", "properties": {"email": {"type": "string"}, "tag_expiration_s": {"type": "integer"}}}),
        "DELETE": Op(delete_organization, "Delete an organization (hidden at once, purged by gc)", status=204),
    }),
    ApiRoute("organization_members", "/organization/{orgname}/members", {
        "GET": Op(list_members, "Users and robots in any team of the organization"),
    }),
]
