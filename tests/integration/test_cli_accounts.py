"""`meridian user create|token` and `meridian keys ...`: bootstrap accounts and service keys without SQL."""
from __future__ import annotations

import asyncio
import sys

import yaml

from shared.servicekeys import thumbprint


async def meridian(*args: str, stdin: str = "", cwd=None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=cwd)
    out, _ = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return await process.wait(), out.decode()  # it has exited: communicate() waited for it


async def test_user_create_and_token_bootstrap_the_api(make_registry, tmp_path):
    reg = await make_registry(MERIDIAN_INSECURE_OPEN_ACCESS=False, SUPER_USERS=["boss"])
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(reg.doc))
    code, out = await meridian("user", "create", "boss", "--email", "boss@example.com", "--password-stdin",
                               "--config", str(config), stdin="a long enough password\n")
    assert code == 0 and "superuser" in out, out
    code, out = await meridian("user", "create", "boss", "--password-stdin", "--config", str(config), stdin="another password\n")
    assert code != 0 and "already taken" in out
    code, out = await meridian("user", "create", "Not Valid", "--password-stdin", "--config", str(config), stdin="x" * 12 + "\n")
    assert code != 0 and "invalid name" in out
    code, out = await meridian("user", "create", "shorty", "--password-stdin", "--config", str(config), stdin="short\n")
    assert code != 0 and "at least 8 characters" in out
    code, token = await meridian("user", "token", "boss", "--config", str(config))
    assert code == 0
    async with reg.http.get(f"{reg.url}/api/v1/user/", headers={"Authorization": f"Bearer {token.strip()}"}) as r:
        me = await r.json()
    assert me["username"] == "boss" and me["super_user"] is True
    async with reg.http.post(f"{reg.url}/api/v1/signin", json={"username": "boss", "password": "a long enough password"}) as r:
        assert r.status == 200


async def test_keys_generate_add_list_extend_approve_delete(make_registry, tmp_path, db):
    reg = await make_registry()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(reg.doc))
    code, out = await meridian("keys", "generate", "ro", cwd=tmp_path)
    assert code == 0, out
    assert oct((tmp_path / "ro.pem").stat().st_mode & 0o777) == "0o600"
    kid = (tmp_path / "ro.kid").read_text().strip()
    assert thumbprint(yaml.safe_load((tmp_path / "ro.jwk").read_text())) == kid
    code, out = await meridian("keys", "generate", "ro", cwd=tmp_path)
    assert code != 0 and "exists" in out
    code, out = await meridian("keys", "add", str(tmp_path / "ro.jwk"), "--expiration", "7", "--config", str(config))
    assert code == 0 and kid in out, out
    row = await db.fetchrow("SELECT approval_type, expires_at - now() AS left FROM service_keys WHERE kid = $1", kid)
    assert row["approval_type"] == "cli" and 6.9 < row["left"].total_seconds() / 86400 <= 7
    code, out = await meridian("keys", "add", str(tmp_path / "ro.jwk"), "--config", str(config))
    assert code != 0 and "already registered" in out
    code, out = await meridian("keys", "list", "--config", str(config))
    assert kid in out and "approved=cli" in out
    code, out = await meridian("keys", "extend", kid, "--expiration", "30", "--config", str(config))
    assert code == 0
    assert (await db.fetchval("SELECT expires_at - now() FROM service_keys WHERE kid = $1", kid)).total_seconds() / 86400 > 29.9
    await db.execute("UPDATE service_keys SET approved_at = NULL WHERE kid = $1", kid)
    code, out = await meridian("keys", "approve", kid, "--config", str(config))
    assert code == 0 and await db.fetchval("SELECT approved_at IS NOT NULL FROM service_keys WHERE kid = $1", kid)
    code, out = await meridian("keys", "delete", kid, "--config", str(config))
    assert code == 0 and await db.fetchval("SELECT count(*) FROM service_keys WHERE kid = $1", kid) == 0
    code, out = await meridian("keys", "delete", kid, "--config", str(config))
    assert code != 0 and "no key" in out


async def test_superuser_key_api_registers_a_key_read_only_mode_can_use(make_registry, db, tmp_path):
    import json

    from shared.model import accounts
    from shared.servicekeys import SigningKey, write_key_files

    reg = await make_registry(MERIDIAN_INSECURE_OPEN_ACCESS=False, SUPER_USERS=["root"])
    async with db.transaction():
        _, token, _ = await accounts.create_api_token(db, await accounts.create_user(db, "root", "a long password"))
    headers = {"Authorization": f"Bearer {token}"}
    key = SigningKey.generate()
    write_key_files(key, tmp_path / "ro")
    jwk = json.loads((tmp_path / "ro.jwk").read_text())
    async with reg.http.post(f"{reg.url}/api/v1/superuser/keys", json={"jwk": jwk, "name": "read-only window"}, headers=headers) as r:
        assert r.status == 201 and (await r.json())["kid"] == key.kid
    async with reg.http.post(f"{reg.url}/api/v1/superuser/keys", json={"jwk": jwk}, headers=headers) as r:
        assert r.status == 409
    async with reg.http.put(f"{reg.url}/api/v1/superuser/keys/{key.kid}", json={"expiration_days": 3}, headers=headers) as r:
        assert r.status == 200 and (await r.json())["expires"] is not None
    async with reg.http.get(f"{reg.url}/api/v1/superuser/keys", headers=headers) as r:
        assert key.kid in [k["kid"] for k in (await r.json())["keys"]]
    ro = await make_registry(REGISTRY_STATE="readonly", INSTANCE_SERVICE_KEY_LOCATION=str(tmp_path / "ro.pem"),
                             INSTANCE_SERVICE_KEY_KID_LOCATION=str(tmp_path / "ro.kid"))
    async with ro.http.get(f"{ro.url}/v2/auth", params={"scope": "repository:root/app:pull"}) as r:
        import jwt

        assert jwt.get_unverified_header((await r.json())["token"])["kid"] == key.kid
    async with reg.http.delete(f"{reg.url}/api/v1/superuser/keys/{key.kid}", headers=headers) as r:
        assert r.status == 204
    assert await db.fetchval("SELECT count(*) FROM service_keys WHERE kid = $1", key.kid) == 0
