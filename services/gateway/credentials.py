"""Credentials a person or script presents: Basic (password, robot token, API token) for /v2/auth,
session cookie or Bearer API token for /api/v1."""
from __future__ import annotations

import base64
import binascii
from collections.abc import Collection

from shared.model import Db, accounts
from shared.model.accounts import Principal, api_token_principal

SESSION_COOKIE = "meridian_session"
TOKEN_USERNAMES = ("$token", "$oauthtoken", "$app")


class BadCredentials(Exception):
    pass


def parse_basic(header: str) -> tuple[str, str] | None:
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "basic" or not raw:
        return None
    try:
        username, sep, secret = base64.b64decode(raw.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise BadCredentials("malformed Basic credentials") from None
    if not sep:
        raise BadCredentials("malformed Basic credentials")
    return username, secret


async def basic_principal(pool: Db, username: str, secret: str, super_users: Collection[str]) -> tuple[Principal, str]:
    """(principal, kind) for Basic credentials; BadCredentials when they do not check out."""
    if username in TOKEN_USERNAMES:
        found = await api_token_principal(pool, secret, "bearer", super_users)
        if found is None:
            raise BadCredentials("Specified credentials are invalid")
        return found[0], "token"
    if "+" in username:
        principal = await accounts.check_robot_token(pool, username, secret)
        if principal is None:
            raise BadCredentials("Specified credentials are invalid")
        return principal, "robot"
    principal = await accounts.check_password(pool, username, secret, super_users)
    if principal is None:
        raise BadCredentials("Specified credentials are invalid")
    return principal, "user"
