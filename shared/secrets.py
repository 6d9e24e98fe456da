"""Passwords (argon2id) and random tokens (stored as sha256: they carry 256 bits of entropy, so a fast
hash is enough and sign-in with a robot token stays cheap)."""
from __future__ import annotations

import asyncio
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
ROBOT_TOKEN_LENGTH = 64


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow; keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False

    def check() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def new_token(length: int = ROBOT_TOKEN_LENGTH) -> str:
    """Letters and digits only, so a token survives any shell or config file unquoted."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

