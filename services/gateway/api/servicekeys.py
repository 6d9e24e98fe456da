"""Service keys through the API, for superusers: what `meridian keys list|add|extend|approve|delete`
does on the command line."""
from __future__ import annotations

import json

import jwt
from aiohttp import web
from jwt.algorithms import RSAAlgorithm

from shared import servicekeys
from shared.errors import ApiError
from shared.model import Db

from ..v2.base import gateway
from .base import ApiRoute, Op, iso, json_body, log_action, ok, signed_in_superuser, text_field

MAY = "manage service keys"  # completes "only superusers ... may"


def _view(row) -> dict:
    return {"kid": row["kid"], "name": row["name"], "service": row["service"], "created": iso(row["created_at"]),
            "expires": iso(row["expires_at"]), "approved": row["approved_at"] is not None,
            "approval_type": row["approval_type"], "approved_by": row["approved_by"],
            "jwk": json.loads(row["jwk"]) if isinstance(row["jwk"], str) else row["jwk"]}


def _days(body: dict) -> int | None:
    days = body.get("expiration_days")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650):
        raise ApiError(400, "expiration_days must be a whole number from 1 to 3650, or null for no expiry")
    return days


async def list_keys(request: web.Request) -> web.Response:
    gw = gateway(request)
    await signed_in_superuser(request, MAY)
    return ok({"keys": [_view(r) for r in await servicekeys.all_keys(gw.pool)]})


async def add_key(request: web.Request) -> web.Response:
    gw = gateway(request)
    principal = await signed_in_superuser(request, MAY)
    body = await json_body(request)
    jwk = body.get("jwk")
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not isinstance(jwk.get("n"), str) or not isinstance(jwk.get("e"), str):
        raise ApiError(400, "jwk must be an RSA public JWK like the NAME.jwk `meridian keys generate` writes")
    try:
        RSAAlgorithm.from_jwk({"kty": "RSA", "n": jwk["n"], "e": jwk["e"]})
    except (ValueError, TypeError, KeyError, jwt.PyJWTError):
        raise ApiError(400, "jwk is not a usable RSA public key (n and e must be base64url numbers)") from None
    kid = servicekeys.thumbprint(jwk)
    name = text_field(body, "name", max_length=255) or f"added by {principal.username}"
    expires = servicekeys.expiry_in(_days(body))
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            if await servicekeys.is_registered(conn, kid):
                raise ApiError(409, f"key {kid} is already registered", error_type="conflict")
            await servicekeys.register(conn, kid=kid, name=name, service=gw.config.instance_service_key_service,
                                       jwk={"kty": "RSA", "n": jwk["n"], "e": jwk["e"], "kid": kid}, expires_at=expires,
                                       approval_type="superuser", approved_by=principal.username)
            await log_action(conn, request, "service_key_create", kid=kid, name=name)
            row = await servicekeys.key_row(conn, kid)
    return ok(_view(row), 201)


async def _key(conn: Db, kid: str):
    row = await servicekeys.key_row(conn, kid)
    if row is None:
        raise ApiError(404, f"service key {kid} not found", error_type="not_found")
    return row


async def update_key(request: web.Request, kid: str) -> web.Response:
    """{"expiration_days": n | null} sets the expiry from now; {"approve": true} approves."""
    gw = gateway(request)
    principal = await signed_in_superuser(request, MAY)
    body = await json_body(request)
    if "expiration_days" not in body and body.get("approve") is not True:
        raise ApiError(400, "give expiration_days (a number of days, or null for never) and/or approve: true")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            await _key(conn, kid)
            if "expiration_days" in body:
                days = _days(body)
                await servicekeys.extend(conn, kid, days)
                await log_action(conn, request, "service_key_extend", kid=kid, expiration_days=days)
            if body.get("approve") is True:
                await servicekeys.approve(conn, kid, "superuser", principal.username)
                await log_action(conn, request, "service_key_approve", kid=kid)
            row = await _key(conn, kid)
    return ok(_view(row))


async def delete_key(request: web.Request, kid: str) -> web.Response:
    gw = gateway(request)
    await signed_in_superuser(request, MAY)
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            await _key(conn, kid)
            await servicekeys.delete(conn, kid)
            await log_action(conn, request, "service_key_delete", kid=kid)
    return ok(status=204)


ROUTES = [
    ApiRoute("superuser_keys", "/superuser/keys", {
        "GET": Op(list_keys, "Service keys (superuser)"),
        "POST": Op(add_key, "Register and approve a public key (the NAME.jwk of `meridian keys generate`)", status=201,
                   body={"type": "object", "required": ["jwk"],
                         "properties": {"jwk": {"type": "object", "required": ["kty", "n", "e"],
                                                "properties": {"kty": {"enum": ["RSA"]}, "n": {"type": "string"}, "e": {"type": "string"}}},
                                        "name": {"type": "string"},
                                        "expiration_days": {"type": "integer", "minimum": 1, "maximum": 3650, "nullable": True}}}),
    }),
    ApiRoute("superuser_key", "/superuser/keys/{kid}", {
        "PUT": Op(update_key, "Extend (expiration_days from now, null = never) or approve a key",
                  body={"type": "object",
                        "properties": {"expiration_days": {"type": "integer", "minimum": 1, "maximum": 3650, "nullable": True},
                                       "approve": {"type": "boolean"}}}),
        "DELETE": Op(delete_key, "Delete a key; tokens it signed stop working within MERIDIAN_TOKEN_RECHECK_SEC "
                                 "(5 s by default) on every gateway", status=204),
    }),
]
