"""Service keys: RSA keys that sign registry tokens (RS256), their public halves in the database.

In normal mode each gateway process makes its own key, registers it (approved automatically, with an
expiry) and rotates it; in read-only mode it may not write, so it signs with a key the operator made
with `meridian keys generate` and registered with `meridian keys add` beforehand.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from shared.model import Db


class ServiceKeyError(Exception):
    """A key that cannot be used; the message says what to run."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(private_key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = private_key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return {"kty": "RSA", "n": _b64(n), "e": _b64(e)}


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint: the key id, stable for the same key wherever it is computed."""
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(thumbprint(public_jwk(key)), key)

    @classmethod
    def from_pem(cls, pem: bytes, kid: str | None = None) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ServiceKeyError("the service key must be an RSA private key")
        return cls(kid or thumbprint(public_jwk(key)), key)

    @property
    def jwk(self) -> dict[str, str]:
        return {**public_jwk(self.private_key), "kid": self.kid}

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})


def write_key_files(key: SigningKey, base: Path) -> list[Path]:
    """NAME.pem (private, mode 0600), NAME.jwk (public JWK) and NAME.kid."""
    pem, jwk_path, kid_path = base.with_suffix(".pem"), base.with_suffix(".jwk"), base.with_suffix(".kid")
    pem.touch(mode=0o600, exist_ok=False)
    pem.write_bytes(key.pem())
    jwk_path.write_text(json.dumps(key.jwk, indent=2) + "\n")
    kid_path.write_text(key.kid + "\n")
    return [pem, jwk_path, kid_path]


def load_key_files(pem_path: Path, kid_path: Path) -> SigningKey:
    try:
        pem = pem_path.read_bytes()
    except OSError as exc:
        raise ServiceKeyError(f"cannot read the service key {pem_path}: {exc.strerror}") from None
    try:
        kid = kid_path.read_text().strip()
    except OSError as exc:
        raise ServiceKeyError(f"cannot read the service key id {kid_path}: {exc.strerror}") from None
    key = SigningKey.from_pem(pem, kid)
    if thumbprint(public_jwk(key.private_key)) != kid:
        raise ServiceKeyError(f"{kid_path} does not name the key in {pem_path}")
    return key


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def register(
    conn: Db,
    *,
    kid: str,
    name: str,
    service: str,
    jwk: dict[str, str],
    expires_at: dt.datetime | None,
    approval_type: str | None,
    approved_by: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        """
        INSERT INTO service_keys (kid, name, service, jwk, metadata, expires_at, approved_at, approval_type, approved_by)
        VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, CASE WHEN $7::text IS NULL THEN NULL ELSE now() END, $7, $8)
        """,
        kid, name, service, json.dumps(jwk), json.dumps(metadata or {}), expires_at, approval_type, approved_by,
    )


async def usable_problem(conn: Db, kid: str) -> str | None:
    """Why the registered key `kid` cannot sign, or None when it can."""
    row = await conn.fetchrow("SELECT approved_at, expires_at FROM service_keys WHERE kid = $1", kid)
    if row is None:
        return f"service key {kid} is not registered: run `meridian keys add NAME.jwk --expiration DAYS`"
    if row["approved_at"] is None:
        return f"service key {kid} is not approved: run `meridian keys approve {kid}`"
    if row["expires_at"] is not None and row["expires_at"] <= utcnow():
        return f"service key {kid} expired at {row['expires_at'].isoformat()}: run `meridian keys extend {kid} --expiration DAYS`"
    return None


class PublicKeys:
    """kid -> public key for verification, read from the database and cached briefly."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = 60.0) -> None:
        self.pool = pool
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Any, dt.datetime | None]] = {}

    async def get(self, kid: str):
        now = time.monotonic()
        hit = self._cache.get(kid)
        if hit is None or hit[0] < now:
            row = await self.pool.fetchrow(
                "SELECT jwk, expires_at FROM service_keys WHERE kid = $1 AND approved_at IS NOT NULL", kid
            )
            key = RSAAlgorithm.from_jwk(row["jwk"]) if row else None
            hit = (now + self.ttl, key, row["expires_at"] if row else None)
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[kid] = hit
        _, key, expires_at = hit
        if key is None or (expires_at is not None and expires_at <= utcnow()):
            return None
        return key


# Key management, shared by `meridian keys ...` and the superuser API. Each returns whether the key existed.

def expiry_in(days: int | None) -> dt.datetime | None:
    return None if days is None else utcnow() + dt.timedelta(days=days)


async def all_keys(conn: Db) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM service_keys ORDER BY created_at")


async def key_row(conn: Db, kid: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM service_keys WHERE kid = $1", kid)


async def is_registered(conn: Db, kid: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM service_keys WHERE kid = $1", kid))


async def extend(conn: Db, kid: str, days: int | None) -> bool:
    """The key expires `days` from now (None: never)."""
    return await conn.fetchval("UPDATE service_keys SET expires_at = $2 WHERE kid = $1 RETURNING true", kid, expiry_in(days)) or False


async def approve(conn: Db, kid: str, approval_type: str, approved_by: str) -> bool:
    return await conn.fetchval(
        "UPDATE service_keys SET approved_at = coalesce(approved_at, now()), approval_type = coalesce(approval_type, $2), "
        "approved_by = coalesce(approved_by, $3) WHERE kid = $1 RETURNING true", kid, approval_type, approved_by) or False


async def delete(conn: Db, kid: str) -> bool:
    return await conn.fetchval("DELETE FROM service_keys WHERE kid = $1 RETURNING true", kid) or False


async def delete_long_expired_automatic(conn: Db) -> None:
    """Gateway keys that expired a day ago can verify nothing; dropping them keeps the table small."""
    await conn.execute("DELETE FROM service_keys WHERE approval_type = 'automatic' AND expires_at < now() - interval '1 day'")
