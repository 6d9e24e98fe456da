"""Who calls /api/v1 or a health endpoint, and the one superuser check.

A caller presents a Bearer API token, or a session cookie: the token of a session row, or in
read-only mode (where no row may be written) a session signed with the instance's service key. The
gateway's API resolves callers here and adds what only it needs (the CSRF check, 401/403 answers);
both health endpoints ask `is_superuser_caller` whether to show why a check failed. Whether a
principal is a superuser at all is decided by `accounts.is_superuser` when the principal is made.
"""
from __future__ import annotations

from dataclasses import dataclass

import jwt

from shared.config import Config
from shared.errors import ApiError
from shared.model import Db, accounts
from shared.model.accounts import Principal, api_token_principal
from shared.servicekeys import PublicKeys


@dataclass(frozen=True)
class Caller:
    principal: Principal
    by_session: bool  # a session cookie, whose changes must carry its CSRF token
    csrf_token: str | None = None


async def api_caller(db: Db, config: Config, public_keys: PublicKeys | None, *, authorization: str,
                     session: str | None) -> Caller | None:
    """Who these credentials are, or None when none were sent or the session is unknown or over. A
    malformed or unknown Bearer token is refused (401): a script should hear that its token is wrong.
    Without `public_keys`, sessions signed in read-only mode are not recognised."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "the API takes `Authorization: Bearer <token>` (create one with POST /api/v1/user/tokens "
                                "or `meridian user token`) or a session cookie from POST /api/v1/signin",
                           error_type="invalid_token")
        found = await api_token_principal(db, token.strip(), "bearer", config.super_users)
        if found is None:
            raise ApiError(401, "the bearer token is invalid or expired", error_type="invalid_token")
        return Caller(found[0], by_session=False)
    if session:
        if session.count(".") == 2:  # a signed session from read-only mode
            found = await _signed_session_principal(db, config, public_keys, session) if public_keys else None
        else:
            found = await api_token_principal(db, session, "session", config.super_users)
        if found is not None:
            return Caller(found[0], by_session=True, csrf_token=found[1]["csrf_token"])
    return None


async def _signed_session_principal(db: Db, config: Config, public_keys: PublicKeys, cookie: str):
    try:
        kid = jwt.get_unverified_header(cookie).get("kid")
        key = await public_keys.get(kid) if kid else None
        if key is None:
            return None
        claims = jwt.decode(cookie, key, algorithms=["RS256"], audience=config.server_hostname,
                            issuer=config.instance_service_key_service)
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "session":
        return None
    principal = await accounts.principal_by_id(db, int(claims["sub"]), config.super_users)
    return (principal, {"csrf_token": claims.get("csrf")}) if principal else None


async def is_superuser_caller(db: Db, config: Config, public_keys: PublicKeys | None, *, authorization: str,
                              session: str | None = None) -> bool:
    """Whether these credentials are a superuser's; credentials that do not check out are no one's."""
    try:
        found = await api_caller(db, config, public_keys, authorization=authorization, session=session)
    except ApiError:
        return False
    return bool(found and found.principal.superuser)
