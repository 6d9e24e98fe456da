"""Tag lifecycle through the API: history queries by name and date, restore inside the time-machine
window and not after it, permanent expiry, expiration (at push by label, one tag, many tags), tag
details, and labels with their validation."""
from __future__ import annotations

import datetime as dt
import time

import pytest_asyncio

from tests.helpers import eventually, push_image


@pytest_asyncio.fixture
async def world(make_world):
    built = await make_world()
    built.alice = await built.as_actor("alice", "repository:acme/app:pull,push")
    return built


async def api(world, method: str, path: str, actor: str = "alice", **kwargs):
    async with world.reg.http.request(method, world.api(path), headers=world.api_headers(actor), **kwargs) as r:
        body = await r.json() if r.status != 204 else None
        return r.status, body


async def now(world) -> dt.datetime:
    return await world.conn.fetchval("SELECT clock_timestamp()")


def stamp(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_history_by_name_and_date_returns_exactly_the_matching_rows(world):
    first, _ = await push_image(world.alice, "acme/app", "latest")
    t1 = await now(world)
    second, _ = await push_image(world.alice, "acme/app", "latest")  # moves latest: ends the first row
    await push_image(world.alice, "acme/app", "stable")
    t2 = await now(world)
    status, _ = await api(world, "DELETE", "repository/acme/app/tag/stable")
    assert status == 204
    t3 = await now(world)

    status, body = await api(world, "GET", "repository/acme/app/tag/", params={"specificTag": "latest"})
    assert status == 200
    assert [(t["manifest_digest"], t["is_live"]) for t in body["tags"]] == [(second, True), (first, False)]
    assert body["tags"][1]["end_ts"] is not None and body["tags"][1]["end_ts"] <= body["tags"][0]["start_ts"] + 1
    # Rows alive at some moment of [start, end): before t1 only the first latest existed.
    status, body = await api(world, "GET", "repository/acme/app/tag/",
                             params={"starttime": stamp(t1 - dt.timedelta(seconds=30)), "endtime": stamp(t1)})
    assert [(t["name"], t["manifest_digest"]) for t in body["tags"]] == [("latest", first)]
    status, body = await api(world, "GET", "repository/acme/app/tag/", params={"starttime": stamp(t2), "endtime": stamp(t3)})
    assert sorted((t["name"], t["is_live"]) for t in body["tags"]) == [("latest", True), ("stable", False)]
    status, body = await api(world, "GET", "repository/acme/app/tag/", params={"filter_tag_name": "like:stab"})
    assert [t["name"] for t in body["tags"]] == ["stable"]
    status, body = await api(world, "GET", "repository/acme/app/tag/", params={"onlyActiveTags": "true"})
    assert [t["name"] for t in body["tags"]] == ["latest"]
    status, body = await api(world, "GET", "repository/acme/app/tag/", params={"limit": 1, "page": 2})
    assert len(body["tags"]) == 1 and body["has_additional"] is True and body["page"] == 2
    status, body = await api(world, "GET", "repository/acme/app/tag/", params={"starttime": stamp(t3), "endtime": stamp(t1)})
    assert status == 400


async def test_restore_inside_the_window_and_refused_after_it(world):
    old, _ = await push_image(world.alice, "acme/app", "v1")
    new, _ = await push_image(world.alice, "acme/app", "v1")
    status, _ = await api(world, "POST", "repository/acme/app/tag/v1/restore", json={"manifest_digest": old})
    assert status == 200
    async with world.alice.http.get(world.alice.v2("acme/app/manifests/v1")) as r:
        assert r.headers["Docker-Content-Digest"] == old
    status, body = await api(world, "GET", "repository/acme/app/tag/", params={"specificTag": "v1"})
    assert body["tags"][0]["reversion"] is True
    # Age the history beyond the organisation's window (1 day): restore is refused and nothing changes.
    await world.conn.execute("UPDATE namespaces SET tag_expiration_s = 86400 WHERE name = 'acme'")
    await world.conn.execute("UPDATE tags SET lifetime_start = lifetime_start - interval '3 days', "
                             "lifetime_end = lifetime_end - interval '3 days' WHERE lifetime_end IS NOT NULL")
    rows = await world.conn.fetchval("SELECT count(*) FROM tags")
    status, body = await api(world, "POST", "repository/acme/app/tag/v1/restore", json={"manifest_digest": new})
    assert status == 400 and "time-machine window (86400 s)" in body["error_message"]
    assert await world.conn.fetchval("SELECT count(*) FROM tags") == rows
    # Inside the window again once the organisation widens it.
    status, _ = await api(world, "PUT", "organization/acme", json={"tag_expiration_s": 4 * 7 * 86400})
    assert status == 200
    status, _ = await api(world, "POST", "repository/acme/app/tag/v1/restore", json={"manifest_digest": new})
    assert status == 200
    # Permanently expired history cannot be restored.
    status, body = await api(world, "POST", "repository/acme/app/tag/v1/expire", json={"manifest_digest": old})
    assert status == 200 and body["expired_rows"] >= 1
    status, body = await api(world, "POST", "repository/acme/app/tag/v1/restore", json={"manifest_digest": old})
    assert status == 400


async def test_expiration_at_push_by_label_and_expired_tags_vanish_from_pulls(world):
    before = time.time()
    digest, _ = await push_image(world.alice, "acme/app", "nightly", labels={"quay.expires-after": "2d", "maintainer": "ops"})
    row = await world.conn.fetchrow("SELECT expires_at FROM tags WHERE name = 'nightly'")
    assert abs(row["expires_at"].timestamp() - (before + 2 * 86400)) < 60
    status, body = await api(world, "GET", "repository/acme/app/tag/nightly")
    assert {(label["key"], label["value"], label["source_type"]) for label in body["labels"]} == {
        ("quay.expires-after", "2d", "manifest"), ("maintainer", "ops", "manifest")}
    assert body["pull_commands"]["podman"] == f"podman pull {world.reg.host}/acme/app:nightly"
    assert body["pull_commands"]["docker_by_digest"] == f"docker pull {world.reg.host}/acme/app@{digest}"
    assert body["size"] > 0 and body["manifest_digest"] == digest
    # The moment the expiry passes, the tag is gone from pulls and listings (gc has not run).
    await world.conn.execute("UPDATE tags SET expires_at = clock_timestamp() + interval '1 second' WHERE name = 'nightly'")
    async with world.alice.http.get(world.alice.v2("acme/app/manifests/nightly")) as r:
        assert r.status == 200

    async def gone():
        async with world.alice.http.get(world.alice.v2("acme/app/manifests/nightly")) as r:
            return r.status == 404

    await eventually(gone, timeout=5, what="the tag to expire")
    async with world.alice.http.get(world.alice.v2("acme/app/tags/list")) as r:
        assert "nightly" not in (await r.json())["tags"]
    # Pushing the tag again starts a fresh row; the expired one ends at its expiry.
    await push_image(world.alice, "acme/app", "nightly")
    rows = await world.conn.fetch("SELECT expires_at, lifetime_end FROM tags WHERE name = 'nightly' ORDER BY id")
    assert rows[0]["lifetime_end"] == rows[0]["expires_at"] and rows[1]["lifetime_end"] is None


async def test_single_and_bulk_expiration(world):
    for tag in ("a", "b", "c"):
        await push_image(world.alice, "acme/app", tag)
    soon = int(time.time()) + 3600
    status, _ = await api(world, "PUT", "repository/acme/app/tag/a", json={"expiration": soon})
    assert status == 201
    assert int((await world.conn.fetchval("SELECT expires_at FROM tags WHERE name = 'a' AND lifetime_end IS NULL")).timestamp()) == soon
    status, body = await api(world, "PUT", "repository/acme/app/tag/a", json={"expiration": int(time.time()) - 10})
    assert status == 400 and "must be in the future" in body["error_message"]
    status, _ = await api(world, "PUT", "repository/acme/app/tag/a", json={"expiration": None})
    assert status == 201
    assert await world.conn.fetchval("SELECT expires_at FROM tags WHERE name = 'a' AND lifetime_end IS NULL") is None
    # Bulk: all or nothing.
    status, body = await api(world, "PUT", "repository/acme/app/tags/expiration", json={"tags": ["a", "b", "zz"], "expiration": soon})
    assert status == 400 and "zz" in body["error_message"]
    assert await world.conn.fetchval("SELECT count(*) FROM tags WHERE expires_at IS NOT NULL") == 0
    status, body = await api(world, "PUT", "repository/acme/app/tags/expiration", json={"tags": ["a", "b", "c"], "expiration": soon})
    assert status == 200
    assert await world.conn.fetchval("SELECT count(*) FROM tags WHERE expires_at IS NOT NULL AND lifetime_end IS NULL") == 3
    status, body = await api(world, "PUT", "repository/acme/app/tags/expiration", json={"tags": ["a", "b", "c"], "expiration": None})
    assert await world.conn.fetchval("SELECT count(*) FROM tags WHERE expires_at IS NOT NULL") == 0
    kinds = await world.conn.fetch("SELECT metadata->>'tag' AS tag FROM audit_logs WHERE kind = 'change_tag_expiration'")
    assert len(kinds) == 2 + 3 + 3
    status, body = await api(world, "PUT", "repository/acme/app/tag/-bad", json={"expiration": None})
    assert status == 400 and body["error_message"].startswith("Invalid tag: must match [A-Za-z0-9_.-]")


async def test_labels_add_list_delete_and_validation(world):
    digest, _ = await push_image(world.alice, "acme/app", "v1")
    base = f"repository/acme/app/manifest/{digest}/labels"
    status, label = await api(world, "POST", base, json={"label": "team=platform"})
    assert status == 201 and (label["key"], label["value"], label["source_type"]) == ("team", "platform", "api")
    status, _ = await api(world, "POST", base, json={"key": "config", "value": "{\"a\": 1}", "media_type": "application/json"})
    assert status == 201
    count = await world.conn.fetchval("SELECT count(*) FROM labels")
    for body, message in (({"label": "no-separator"}, "Invalid label format, must be key value separated by ="),
                          ({"label": "=value"}, "Invalid label format, must be key value separated by ="),
                          ({"key": "bad key", "value": "x"}, "Invalid label key"),
                          ({"key": "com.docker.thing", "value": "x"}, "Label has a reserved prefix"),
                          ({"key": "k", "value": "v", "media_type": "image/png"}, "media_type")):
        status, answer = await api(world, "POST", base, json=body)
        assert status == 400 and message in answer["error_message"], (body, answer)
    assert await world.conn.fetchval("SELECT count(*) FROM labels") == count
    status, body = await api(world, "GET", base, params={"filter": "te"})
    assert [found["key"] for found in body["labels"]] == ["team"]
    status, one = await api(world, "GET", f"{base}/{label['id']}")
    assert one == label
    status, _ = await api(world, "DELETE", f"{base}/{label['id']}")
    assert status == 204
    status, _ = await api(world, "GET", f"{base}/{label['id']}")
    assert status == 404
    status, _ = await api(world, "POST", base, actor="rita", json={"label": "x=y"})
    assert status == 404  # rita cannot read acme/app: it does not exist for her


async def test_moving_a_tag_through_the_api(world):
    old, _ = await push_image(world.alice, "acme/app", "v1")
    new, _ = await push_image(world.alice, "acme/app", "v2")
    status, _ = await api(world, "PUT", "repository/acme/app/tag/v1", json={"manifest_digest": new})
    assert status == 201
    async with world.alice.http.get(world.alice.v2("acme/app/manifests/v1")) as r:
        assert r.headers["Docker-Content-Digest"] == new
    status, _ = await api(world, "PUT", "repository/acme/app/tag/v3", json={"manifest_digest": "sha256:" + "0" * 64})
    assert status == 404
    kinds = [r["kind"] for r in await world.conn.fetch("SELECT kind FROM audit_logs WHERE kind LIKE '%_tag' ORDER BY id")]
    assert kinds == ["move_tag"]

