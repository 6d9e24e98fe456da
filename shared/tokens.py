"""Short-lived tokens services present to blobstores: HS256 JWTs bound to a location, an action and
one digest, signed with MERIDIAN_SERVICE_SECRET. Storage credentials never leave their region."""
from __future__ import annotations

import time

import jwt

ALGORITHM = "HS256"
DEFAULT_TTL = 120


class TokenError(Exception):
    pass


def sign(secret: str, *, location: str, action: str, digest: str, ttl: float = DEFAULT_TTL) -> str:
    now = int(time.time())
    claims = {"aud": f"blobstore:{location}", "act": action, "dig": digest, "iat": now, "exp": now + int(ttl)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: str, *, location: str, action: str, digest: str) -> None:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], audience=f"blobstore:{location}", leeway=5)
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from None
    if claims.get("act") != action or claims.get("dig") != digest:
        raise TokenError(f"token does not grant {action} on {digest}")
