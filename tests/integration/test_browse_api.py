"""The web UI's read API: the session with its CSRF token, repositories and live tags filtered
(substring and regex), sorted and paged on the server with totals, regions, platforms of an index,
and referrers grouped by artifact type."""
from __future__ import annotations

import json

import pytest_asyncio

from services.gateway.credentials import SESSION_COOKIE
from tests.helpers import OCI_INDEX, OCI_MANIFEST, descriptor, push_image
from tests.identity_world import PASSWORD


@pytest_asyncio.fixture
async def world(make_world):
    built = await make_world()
    built.alice = await built.as_actor("alice", "repository:acme/app:pull,push")
    return built


async def api(world, path: str, actor: str = "alice", **kwargs):
    async with world.reg.http.get(world.api(path), headers=world.api_headers(actor), **kwargs) as r:
        return r.status, await r.json()


async def test_session_gives_the_csrf_token_of_the_cookie_and_nothing_to_anonymous(world):
    status, body = await api(world, "session", "anonymous")
    assert status == 200 and body["user"] is None and body["csrf_token"] is None
    async with world.reg.http.post(world.api("signin"), json={"username": "alice", "password": PASSWORD}) as r:
        assert r.status == 200
        csrf = (await r.json())["csrf_token"]
        cookie = r.cookies[SESSION_COOKIE].value
    async with world.reg.http.get(world.api("session"), headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}) as r:
        body = await r.json()
    assert body["csrf_token"] == csrf and body["user"]["username"] == "alice"
    assert {"name": "acme", "kind": "organization"} in body["user"]["creatable_namespaces"]
    status, body = await api(world, "session", "rita")  # a bearer token: no session, no CSRF token
    assert body["user"]["username"] == "rita" and body["csrf_token"] is None
    assert all(n["name"] != "acme" for n in body["user"]["creatable_namespaces"])


async def test_repositories_filter_sort_and_page_on_the_server(world):
    for name in ("build", "trigger", "tag"):
        await push_image(await world.as_actor("alice", f"repository:acme/{name}:pull,push"), f"acme/{name}", "v1")
    status, body = await api(world, "browse/repositories", params={"namespace": "acme", "limit": 2, "sort": "name"})
    assert status == 200 and body["total"] >= 5
    assert [r["name"] for r in body["repositories"]] == ["build", "private"] and body["has_additional"]
    status, body = await api(world, "browse/repositories", params={"filter": "^acme/(build|tag)$", "regex": "true"})
    assert [r["name"] for r in body["repositories"]] == ["build", "tag"] and body["total"] == 2
    assert all(r["size"] > 2048 and r["last_modified"] for r in body["repositories"])
    status, body = await api(world, "browse/repositories", params={"filter": "rig"})
    assert [r["name"] for r in body["repositories"]] == ["trigger"]
    status, body = await api(world, "browse/repositories", params={"sort": "last_modified", "order": "desc", "namespace": "acme"})
    assert body["repositories"][0]["name"] == "tag"
    status, body = await api(world, "browse/repositories", params={"filter": "(", "regex": "true"})
    assert status == 400 and "regular expression" in body["error_message"]
    status, body = await api(world, "browse/repositories", params={"sort": "color"})
    assert status == 400
    for params in ({"filter": "a\x00b"}, {"namespace": "ac\x00me"}, {"page": "0"}, {"limit": "101"}, {"regex": "maybe"}):
        status, body = await api(world, "browse/repositories", params=params)
        assert status == 400 and body["error_message"], params
    # Anonymous callers see public repositories only; private ones are not counted either.
    status, body = await api(world, "browse/repositories", "anonymous", params={"namespace": "acme"})
    assert {r["name"] for r in body["repositories"]} == {"public"} and body["total"] == 1


async def test_tags_page_with_regions_platforms_and_referrers(world):
    digests = {}
    for tag in ("v1.0", "v1.1", "v2.0", "latest"):
        digests[tag], _ = await push_image(world.alice, "acme/app", tag)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**descriptor(OCI_MANIFEST, b"x"), "digest": digests["v1.0"], "platform": {"os": "linux", "architecture": "amd64"}},
        {**descriptor(OCI_MANIFEST, b"x"), "digest": digests["v1.1"],
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    ]}
    body = json.dumps(index).encode()
    async with world.alice.http.put(world.alice.v2("acme/app/manifests/multi"), data=body, headers={"Content-Type": OCI_INDEX}) as r:
        assert r.status == 201, await r.text()
    signature, _ = await push_image(world.alice, "acme/app", None, extra={
        "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "subject": {"mediaType": OCI_MANIFEST, "digest": digests["v2.0"], "size": 1}})

    status, page = await api(world, "browse/repository/acme/app/tags", params={"limit": 2, "sort": "name"})
    assert status == 200 and page["total"] == 5 and [t["name"] for t in page["tags"]] == ["latest", "multi"]
    multi = page["tags"][1]
    assert multi["is_manifest_list"]
    assert [(p["architecture"], p["variant"]) for p in multi["platforms"]] == [("amd64", None), ("arm64", "v8")]
    assert page["tags"][0]["regions"] == ["local"] and page["tags"][0]["security"] == {"status": "not_scanned"}
    status, page = await api(world, "browse/repository/acme/app/tags", params={"filter": r"^v1\.", "regex": "true", "order": "desc"})
    assert [t["name"] for t in page["tags"]] == ["v1.1", "v1.0"] and page["total"] == 2
    status, page = await api(world, "browse/repository/acme/app/tags", params={"filter": "2.0"})
    assert [t["name"] for t in page["tags"]] == ["v2.0"]
    assert page["tags"][0]["referrers"] == {"application/vnd.dev.cosign.artifact.sig.v1+json": 1}
    status, page = await api(world, "browse/repository/acme/app/tags", params={"filter": "_"})  # literal, not a LIKE wildcard
    assert page["total"] == 0

    status, detail = await api(world, f"browse/repository/acme/app/manifest/{digests['v2.0']}")
    assert status == 200 and detail["tags"] == ["v2.0"] and len(detail["layers"]) == 1 and detail["regions"] == ["local"]
    assert detail["referrers"] == [{"artifact_type": "application/vnd.dev.cosign.artifact.sig.v1+json",
                                    "manifests": [{**detail["referrers"][0]["manifests"][0], "digest": signature}]}]
    status, detail = await api(world, f"browse/repository/acme/app/manifest/sha256:{'0' * 64}")
    assert status == 404
    # Who may not read the repository learns nothing, not even that it exists.
    status, missing = await api(world, "browse/repository/acme/private/tags", "olga")
    status2, absent = await api(world, "browse/repository/acme/nothing/tags", "olga")
    assert (status, missing["error_type"]) == (status2, absent["error_type"]) == (404, "not_found")


async def test_open_access_listings_show_what_lookups_show(registry):
    """The development registry (`meridian up`): anonymous callers hold every right, so every listing
    the UI and Quay clients use shows every repository and organisation, as the lookups do."""
    await push_image(registry, "acme/hello", "latest")
    await push_image(registry, "acme/notes", "v1")
    http, api = registry.http, f"{registry.url}/api/v1"
    async with http.get(f"{api}/repository/acme/hello") as r:
        assert r.status == 200 and (await r.json())["can_admin"]
    async with http.get(f"{api}/browse/repositories") as r:
        assert r.status == 200, await r.text()
        page = await r.json()
    assert [f"{x['namespace']}/{x['name']}" for x in page["repositories"]] == ["acme/hello", "acme/notes"]
    assert page["total"] == 2 and all(x["can_admin"] for x in page["repositories"])
    async with http.get(f"{api}/repository", params={"namespace": "acme"}) as r:
        assert r.status == 200
        assert [x["name"] for x in (await r.json())["repositories"]] == ["hello", "notes"]
    async with http.get(f"{api}/search", params={"q": "hello"}) as r:
        assert r.status == 200
        found = await r.json()
    assert [x["name"] for x in found["repositories"]] == ["acme/hello"]
    assert [t["repository"] for t in found["tags"]] == []  # no tag holds "hello"
    async with http.get(f"{api}/browse/organizations") as r:
        assert r.status == 200, await r.text()
        assert [o["name"] for o in (await r.json())["organizations"]] == ["acme"]
