"""Read-only mode: every write route refuses with Quay's exact message, pulls, sign-in and token issue
keep working and write nothing; the start refuses without a usable pre-provisioned key; replication
pauses; a single repository can be made read-only through the API."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import aiohttp
import pytest

from services.gateway.api.routes import API_ROUTES, READ_ONLY_EXEMPT
from services.gateway.v2.base import GATEWAY
from services.gateway.v2.routes import ROUTES as V2_ROUTES
from services.gateway.v2.routes import match as v2_match
from shared.errors import READ_ONLY_MESSAGE
from shared.servicekeys import ServiceKeyError
from tests.conftest import local_spec
from tests.helpers import eventually, push_blob, push_image
from tests.identity_world import PASSWORD, basic

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


async def read_only_twin(make_registry, world, service_key):
    """A second gateway on the same database and storage, in read-only mode."""
    return await make_registry(**{**{k: v for k, v in world.reg.doc.items() if k != "SERVER_HOSTNAME"},
                                  "REGISTRY_STATE": "readonly", **service_key})


async def written(conn) -> tuple:
    return tuple([await conn.fetchval(f"SELECT count(*) FROM {t}") for t in (
        "audit_logs", "api_tokens", "service_keys", "tags", "blobs", "upload_sessions", "repositories", "outbox")])


async def test_every_write_route_refuses_with_the_exact_message(make_registry, world, service_key):
    ro = await read_only_twin(make_registry, world, service_key)
    await world.reg.runner.app[GATEWAY].audit.flush()  # the writable gateway's buffered usage logs land first
    before = await written(world.conn)
    async with ro.http.get(f"{ro.url}/v2/auth", params={"scope": "repository:acme/private:pull,push,delete"},
                           headers={"Authorization": basic("root", PASSWORD)}) as r:
        headers = {"Authorization": f"Bearer {(await r.json())['token']}"}
    checked = []
    samples = {"name": "acme/private", "digest": world.private_digest, "reference": "v1",
               "upload": "00000000-0000-0000-0000-000000000000"}
    for route in V2_ROUTES:
        for method in sorted(set(route.methods) & route.writes):
            # Each named group of the route's pattern becomes its sample, whatever the group's own pattern.
            path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda group: samples[group[1]], route.pattern.pattern)
            path = path.replace("/?", "/")
            assert (v2_match(path) or (None,))[0] is route, (route.name, path)  # the sample path is the route's
            async with ro.http.request(method, f"{ro.url}/v2/{path}", headers=headers, data=b"{}") as r:
                body = await r.json()
            assert r.status == 405, (method, path, body)
            assert body["errors"] == [{"code": "DENIED", "message": READ_ONLY_MESSAGE}], (method, path)
            checked.append((method, route.name))
    api_samples = {"repository": "acme/private", "orgname": "acme", "namespace": "acme", "teamname": "owners",
                   "robot_shortname": "ci", "username": "rita", "membername": "tom", "tag": "v1",
                   "digest": world.private_digest, "labelid": "x", "prototypeid": "x", "tokenid": "1", "exportid": "x",
                   "kid": "x", "quota_id": "1", "limit_id": "1", "uuid": "x"}
    for api_route in API_ROUTES:
        for method in sorted(set(api_route.ops) & WRITES):
            if api_route.name in READ_ONLY_EXEMPT:
                continue
            path = api_route.template.format(**api_samples)
            async with ro.http.request(method, f"{ro.url}/api/v1{path}", headers=world.api_headers("root"), json={}) as r:
                body = await r.json()
            assert r.status == 405, (method, path, body)
            assert body["error_message"] == READ_ONLY_MESSAGE and body["detail"] == {"is_readonly": True}, (method, path)
            checked.append((method, api_route.name))
    walked = {name for _, name in checked}
    assert {"upload_start", "upload", "manifest", "blob", "organizations", "robot", "tag", "repository", "superuser_users"} <= walked
    assert await written(world.conn) == before


async def test_pulls_sign_in_and_token_issue_keep_working_and_write_nothing(make_registry, world, service_key):
    ro = await read_only_twin(make_registry, world, service_key)
    await world.reg.runner.app[GATEWAY].audit.flush()  # the writable gateway's buffered usage logs land first
    before = await written(world.conn)
    for credentials in (basic("rita", PASSWORD), basic("acme+ci", world.robot_tokens["robot_with"])):
        async with ro.http.get(f"{ro.url}/v2/auth", params={"scope": "repository:acme/private:pull"},
                               headers={"Authorization": credentials}) as r:
            assert r.status == 200
            token = (await r.json())["token"]
        async with ro.http.get(ro.v2("acme/private/manifests/v1"), headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200 and r.headers["Docker-Content-Digest"] == world.private_digest
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post(f"{ro.url}/api/v1/signin", json={"username": "alice", "password": PASSWORD}) as r:
            assert r.status == 200
            csrf = (await r.json())["csrf_token"]
        async with browser.get(f"{ro.url}/api/v1/user/") as r:
            me = await r.json()
        assert me["username"] == "alice" and me["registry_state"] == "readonly"
        async with browser.get(f"{ro.url}/api/v1/repository/acme/private/tag/") as r:
            assert r.status == 200 and (await r.json())["tags"]
        async with browser.post(f"{ro.url}/api/v1/signout", headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
    async with ro.http.get(f"{ro.url}/config") as r:
        config = await r.json()
    assert config["registry_state"] == "readonly" and config["read_only_message"] == READ_ONLY_MESSAGE
    async with ro.http.get(f"{ro.url}/health/instance") as r:
        assert r.status == 200, await r.text()
    assert await written(world.conn) == before


async def test_read_only_start_refuses_without_a_usable_key(make_registry, service_key, db, tmp_path):
    with pytest.raises(ServiceKeyError, match="meridian keys generate"):
        await make_registry(REGISTRY_STATE="readonly", INSTANCE_SERVICE_KEY_LOCATION=str(tmp_path / "missing.pem"),
                            INSTANCE_SERVICE_KEY_KID_LOCATION=str(tmp_path / "missing.kid"))
    kid = Path(service_key["INSTANCE_SERVICE_KEY_KID_LOCATION"]).read_text().strip()
    await db.execute("UPDATE service_keys SET approved_at = NULL WHERE kid = $1", kid)
    with pytest.raises(ServiceKeyError, match=f"meridian keys approve {kid}"):
        await make_registry(REGISTRY_STATE="readonly", **service_key)
    await db.execute("UPDATE service_keys SET approved_at = now(), expires_at = $2 WHERE kid = $1", kid,
                     dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    with pytest.raises(ServiceKeyError, match=f"meridian keys extend {kid}"):
        await make_registry(REGISTRY_STATE="readonly", **service_key)
    await db.execute("DELETE FROM service_keys WHERE kid = $1", kid)
    with pytest.raises(ServiceKeyError, match="meridian keys add"):
        await make_registry(REGISTRY_STATE="readonly", **service_key)


async def test_a_repository_can_be_made_read_only(world):
    alice = await world.as_actor("alice", "repository:acme/private:pull,push,delete")
    async with world.reg.http.put(world.api("repository/acme/private/changestate"), json={"state": "READ_ONLY"},
                                  headers=world.api_headers("alice")) as r:
        assert r.status == 200
    async with alice.http.post(alice.v2("acme/private/blobs/uploads/")) as r:
        body = await r.json()
    assert r.status == 405 and body["errors"][0]["code"] == "DENIED" and "is read-only" in body["errors"][0]["message"]
    async with alice.http.delete(alice.v2("acme/private/manifests/v1")) as r:
        assert r.status == 405
    async with alice.http.get(alice.v2("acme/private/manifests/v1")) as r:
        assert r.status == 200
    async with world.reg.http.get(world.api("repository/acme/private"), headers=world.api_headers("alice")) as r:
        assert (await r.json())["state"] == "READ_ONLY"
    async with world.reg.http.put(world.api("repository/acme/private/changestate"), json={"state": "NORMAL"},
                                  headers=world.api_headers("alice")) as r:
        assert r.status == 200
    await push_image(alice, "acme/private", "after")


async def test_replication_pauses_in_read_only_mode(make_regions, tmp_path, db, servers):
    from services.replicator.app import Replicator
    from shared.config import parse_config

    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")},
                                 replicate={"eu": False})
    us, eu = regions["us"], regions["eu"]
    us.url = us.gateway_url
    digest = await push_blob(us, "acme/app", b"bytes that must wait for the end of read-only mode")
    paused = Replicator(parse_config({**eu.doc, "REGISTRY_STATE": "readonly"}))
    await paused.start()
    try:
        async def refused():
            info = await paused.bus.js.consumer_info(paused.bus.subjects.events_stream, paused.consumer)
            return info.num_redelivered > 0 or info.num_ack_pending > 0 or info.delivered.stream_seq > 0

        await eventually(refused, what="the read-only replicator to receive the event")
        assert await db.fetchval("SELECT count(*) FROM blob_placements p JOIN storage_locations l ON l.id = p.location_id "
                                 "WHERE l.name = 'eu'") == 0
        assert not (tmp_path / "eu" / "sha256").exists()
    finally:
        await paused.stop()
    working = Replicator(parse_config(eu.doc))
    await working.start()
    try:
        async def placed():
            return await db.fetchval("SELECT count(*) FROM blob_placements p JOIN storage_locations l ON l.id = p.location_id "
                                     "JOIN blobs b ON b.id = p.blob_id WHERE l.name = 'eu' AND b.digest = $1", digest)

        await eventually(placed, timeout=30, what="replication to resume after read-only mode")
    finally:
        await working.stop()
