"""Docker token auth on /v2: challenge, /v2/auth with every credential kind, down-scoping, RS256 tokens
verified against registered service keys, and create-on-push with the creator's permissions."""
from __future__ import annotations

import jwt

from tests.helpers import error_codes, eventually, push_blob, push_image
from tests.identity_world import PASSWORD, basic


async def test_v2_challenges_towards_the_token_endpoint(world):
    reg = world.reg
    async with reg.http.get(reg.v2("")) as r:
        assert r.status == 401
        challenge = r.headers["WWW-Authenticate"]
        assert challenge == f'Bearer realm="http://{reg.host}/v2/auth",service="{reg.host}"'
        assert error_codes(await r.json()) == ["UNAUTHORIZED"]
    async with reg.http.get(reg.v2("acme/public/tags/list")) as r:
        assert r.status == 401
        assert 'scope="repository:acme/public:pull"' in r.headers["WWW-Authenticate"]
    async with reg.http.get(reg.v2(""), headers={"Authorization": basic("rita", PASSWORD)}) as r:
        assert r.status == 401  # the registry itself takes only Bearer tokens, as Quay's does


async def test_token_is_rs256_signed_by_a_registered_key_and_down_scoped(world):
    token = await world.v2_token("rita", "repository:acme/private:pull,push", "repository:acme/public:pull,push")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert await world.conn.fetchval("SELECT approval_type FROM service_keys WHERE kid = $1", header["kid"]) == "automatic"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "rita" and claims["iss"] == "quay" and claims["aud"] == world.reg.host
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["access"] == [
        {"type": "repository", "name": "acme/private", "actions": ["pull"]},  # push silently dropped
        {"type": "repository", "name": "acme/public", "actions": ["pull"]},
    ]
    anonymous = jwt.decode(await world.v2_token("anonymous", "repository:acme/private:pull", "repository:acme/public:pull"),
                           options={"verify_signature": False})
    assert anonymous["sub"] == "(anonymous)"
    assert [a["actions"] for a in anonymous["access"]] == [[], ["pull"]]


async def test_bad_credentials_and_scopes_are_refused_clearly(world):
    reg = world.reg
    async with reg.http.get(f"{world.url}/v2/auth", params={"scope": "repository:acme/private:pull"},
                            headers={"Authorization": basic("rita", "wrong password")}) as r:
        assert r.status == 401
        assert (await r.json())["errors"][0]["message"] == "Specified credentials are invalid"
    async with reg.http.get(f"{world.url}/v2/auth", params={"scope": "repository:acme/private:pull"},
                            headers={"Authorization": basic("acme+ci", "not-the-token")}) as r:
        assert r.status == 401
    async with reg.http.get(f"{world.url}/v2/auth", params={"scope": "repository:acme/private:fly"}) as r:
        assert r.status == 400
        assert "Unable to decode repository and actions" in (await r.json())["errors"][0]["message"]
    async with reg.http.get(f"{world.url}/v2/auth", params={"scope": "repository:Bad Name:pull"}) as r:
        assert r.status == 400
    async with reg.http.get(f"{world.url}/v2/auth") as r:  # no credentials and no scope
        assert r.status == 401

    async def failures():  # usage logs are written in batches, about every half second
        rows = await world.conn.fetch("SELECT metadata->>'type' AS type, metadata->>'username' AS username "
                                      "FROM audit_logs WHERE kind = 'login_failure'")
        return sorted((r["type"], r["username"]) for r in rows) if len(rows) >= 2 else None

    # The two wrong credentials are audited, naming who tried; the requests without credentials are not.
    assert await eventually(failures, what="two login_failure usage logs") == [("v2auth", "acme+ci"), ("v2auth", "rita")]


async def test_forged_or_unknown_key_tokens_are_refused(world):
    from shared.servicekeys import SigningKey

    good = jwt.decode(await world.v2_token("root", "repository:acme/private:pull"), options={"verify_signature": False})
    forged = SigningKey.generate().sign(good)  # right claims, a key the registry never registered
    async with world.reg.http.get(world.reg.v2("acme/private/tags/list"), headers={"Authorization": f"Bearer {forged}"}) as r:
        assert r.status == 401
        assert "unknown or expired key" in (await r.json())["errors"][0]["message"]


async def test_every_credential_kind_gets_a_token(world):
    from shared.model import accounts

    _, api_token, _ = await accounts.create_api_token(world.conn, world.ids["walt"])
    for credentials, subject in ((basic("walt", PASSWORD), "walt"), (basic("$token", api_token), "walt"),
                                 (basic("acme+ci", world.robot_tokens["robot_with"]), "acme+ci")):
        async with world.reg.http.get(f"{world.url}/v2/auth", params={"scope": "repository:acme/private:pull,push"},
                                      headers={"Authorization": credentials}) as r:
            assert r.status == 200
            claims = jwt.decode((await r.json())["token"], options={"verify_signature": False})
        assert claims["sub"] == subject
        assert claims["access"][0]["actions"] == ["pull", "push"]


async def test_create_on_push_is_private_with_creator_and_default_permissions(world):
    conn = world.conn
    team_id = await conn.fetchval("INSERT INTO teams (namespace_id, name, role) VALUES ($1, 'builders', 'member') RETURNING id",
                                  world.ids["acme"])
    await conn.execute("INSERT INTO default_permissions (id, namespace_id, delegate_team_id, role) "
                       "VALUES (gen_random_uuid(), $1, $2, 'read')",
                       world.ids["acme"], team_id)
    # walt may write acme/private but not create repositories in acme
    walt = await world.as_actor("walt", "repository:acme/newapp:pull,push")
    async with walt.http.post(walt.v2("acme/newapp/blobs/uploads/")) as r:
        assert r.status == 404 and error_codes(await r.json()) == ["NAME_UNKNOWN"]
    await conn.execute("UPDATE teams SET role = 'creator' WHERE id = $1", team_id)
    await conn.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)", team_id, world.ids["walt"])
    walt = await world.as_actor("walt", "repository:acme/newapp:pull,push")
    await push_image(walt, "acme/newapp", "v1")
    repo = await conn.fetchrow("SELECT id, visibility FROM repositories WHERE full_name = 'acme/newapp'")
    assert repo["visibility"] == "private"
    grants = {(r["username"] or r["team"], r["role"]) for r in await conn.fetch(
        "SELECT u.username, t.name AS team, p.role FROM repository_permissions p LEFT JOIN users u ON u.id = p.user_id "
        "LEFT JOIN teams t ON t.id = p.team_id WHERE p.repository_id = $1", repo["id"])}
    assert grants == {("walt", "admin"), ("builders", "read")}
    assert await conn.fetchval("SELECT count(*) FROM audit_logs WHERE kind = 'create_repo' AND repository = 'acme/newapp'") == 1


async def test_token_for_one_repository_does_not_open_another(world):
    walt = await world.as_actor("walt", "repository:acme/private:pull,push")
    async with walt.http.get(walt.v2("acme/public/tags/list")) as r:
        assert r.status == 404  # the token names acme/private only
    digest = await push_blob(walt, "acme/private", b"walt was here")
    async with walt.http.get(walt.v2(f"acme/private/blobs/{digest}")) as r:
        assert r.status == 200
