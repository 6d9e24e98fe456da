"""blob.written and manifest events: outbox in the same transaction, published after commit,
relayed when NATS was down, deduplicated by Nats-Msg-Id."""
from __future__ import annotations

import json
import os

import nats

from shared.embedded import start_nats
from tests.helpers import eventually, push_blob, push_image


async def stream_messages(url: str, prefix: str, subject_tail: str) -> list:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(f"{prefix}.events.{subject_tail}", stream=f"{prefix.upper()}_EVENTS")
        messages = []
        while True:
            try:
                batch = await sub.fetch(100, timeout=0.5)
            except (TimeoutError, nats.errors.TimeoutError):  # nats-py raises either
                break
            for message in batch:
                messages.append(message)
                await message.ack()
        await sub.unsubscribe()
        return messages
    finally:
        await nc.close()


async def test_blob_written_event_after_commit(registry, servers, bus_prefix, db):
    data = os.urandom(1000)
    digest = await push_blob(registry, "acme/app", data)

    async def published():
        return await stream_messages(servers.nats_url, bus_prefix, "blob.written.>")

    messages = await eventually(published, what="blob.written on JetStream")
    assert len(messages) == 1
    message = messages[0]
    assert message.subject == f"{bus_prefix}.events.blob.written.local"
    assert message.headers["Nats-Msg-Id"] == f"blob:{digest}:local"
    event = json.loads(message.data)
    assert event["digest"] == digest and event["size"] == 1000 and event["location"] == "local"
    assert event["repository"] == "acme/app" and event["namespace"] == "acme"

    async def outbox_empty():
        return await db.fetchval("SELECT count(*) FROM outbox") == 0

    await eventually(outbox_empty, what="outbox drained")
    # The same bytes pushed again (another repository) are already placed: no second event.
    await push_blob(registry, "acme/other", data)
    await eventually(outbox_empty, what="outbox drained")
    # (each read replays the stream from its start)
    assert len(await stream_messages(servers.nats_url, bus_prefix, "blob.written.>")) == 1


async def test_manifest_and_tag_events(registry, servers, bus_prefix):
    digest, _ = await push_image(registry, "acme/app", "v1")

    async def pushed():
        return await stream_messages(servers.nats_url, bus_prefix, "manifest.pushed")

    messages = await eventually(pushed, what="manifest.pushed")
    assert json.loads(messages[0].data)["digest"] == digest
    tags = await stream_messages(servers.nats_url, bus_prefix, "tag.changed")
    assert [json.loads(m.data)["tag"] for m in tags] == ["v1"]


async def test_push_while_nats_is_down_is_relayed_later(make_registry, tmp_path, bus_prefix, db):
    own_nats = start_nats(tmp_path / "nats")
    port = int(own_nats.url.rsplit(":", 1)[1])
    try:
        reg = await make_registry(NATS_URL=own_nats.url)
        await push_blob(reg, "acme/app", b"while nats is up")
        own_nats.stop()
        digest = await push_blob(reg, "acme/app", b"while nats is down")  # the push itself succeeds
        assert await db.fetchval("SELECT count(*) FROM outbox WHERE msg_id = $1", f"blob:{digest}:local") == 1

        own_nats = start_nats(tmp_path / "nats", port=port)

        async def relayed():
            messages = await stream_messages(own_nats.url, bus_prefix, "blob.written.>")
            return [m for m in messages if json.loads(m.data)["digest"] == digest]

        found = await eventually(relayed, timeout=30, what="the outbox relay to publish after NATS returned")
        assert len(found) == 1

        async def drained():
            return await db.fetchval("SELECT count(*) FROM outbox") == 0

        await eventually(drained, timeout=30, what="outbox drained")
    finally:
        own_nats.stop()


async def test_relay_republish_is_deduplicated(registry, servers, bus_prefix, database):
    """A row published after commit and again by the relay is stored once (Nats-Msg-Id)."""
    import asyncpg

    from shared.bus import Bus
    from shared.messages import TagChanged
    from shared.outbox import OutboxRelay, add

    bus = Bus(servers.nats_url, bus_prefix)
    await bus.connect()
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    try:
        relay = OutboxRelay(pool, bus, relay_after=0)
        event = TagChanged(repository="acme/app", tag="x", digest=None, region="r", changed_at=0.0)
        async with pool.acquire() as conn:
            entry = await add(conn, bus.subjects.tag_changed, event, msg_id="fixed-id")
        assert entry is not None
        await bus.publish(entry.subject, entry.payload, entry.msg_id)  # published once after commit...
        assert await relay.relay_once() == 1  # ...and once more by the relay before the row was deleted
        messages = await stream_messages(servers.nats_url, bus_prefix, "tag.changed")
        assert len([m for m in messages if m.headers["Nats-Msg-Id"] == "fixed-id"]) == 1
    finally:
        await pool.close()
        await bus.close()


async def test_push_event_carries_what_a_webhook_needs(world, servers, bus_prefix):
    """manifest.pushed names the repository, the tags, the digest, the media type, the whole image's
    size, the region and the pusher (a user, a robot); tag.changed says created or moved and from what."""
    walt = await world.as_actor("walt", "repository:acme/private:pull,push")
    first, _ = await push_image(walt, "acme/private", "v2", layer_bytes=[b"a" * 3000, b"b" * 5000])
    robot = await world.as_actor("robot_with", "repository:acme/private:pull,push")
    moved, moved_body = await push_image(robot, "acme/private", "v2")

    async def pushed():
        messages = await stream_messages(servers.nats_url, bus_prefix, "manifest.pushed")
        events = [json.loads(m.data) for m in messages]
        return [e for e in events if e["digest"] in (first, moved)] if len(events) >= 5 else None

    events = {e["digest"]: e for e in await eventually(pushed, what="manifest.pushed of both pushes")}
    by_walt, by_robot = events[first], events[moved]
    assert by_walt["pusher"] == {"kind": "user", "name": "walt", "id": world.ids["walt"]}
    assert by_robot["pusher"] == {"kind": "robot", "name": "acme+ci", "id": world.ids["robot_with"]}
    assert (by_walt["repository"], by_walt["namespace"], by_walt["tags"]) == ("acme/private", "acme", ["v2"])
    assert by_walt["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert by_walt["region"] == world.reg.config.meridian_region and by_walt["pushed_at"] > 0
    # The manifest's own bytes, the config and both layers.
    config_size = json.loads(await _manifest_body(world, first))["config"]["size"]
    assert by_walt["size"] == len(await _manifest_body(world, first)) + config_size + 3000 + 5000
    assert by_robot["size"] > len(moved_body)

    changes = [json.loads(m.data) for m in await stream_messages(servers.nats_url, bus_prefix, "tag.changed")]
    v2 = [c for c in changes if c["repository"] == "acme/private" and c["tag"] == "v2"]
    assert [(c["kind"], c["previous"], c["digest"], c["actor"]["name"]) for c in v2] == [
        ("created", None, first, "walt"), ("moved", first, moved, "acme+ci")]


async def _manifest_body(world, digest: str) -> bytes:
    root = await world.as_actor("root", "repository:acme/private:pull")
    async with root.http.get(root.v2(f"acme/private/manifests/{digest}"),
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}) as r:
        assert r.status == 200
        return await r.read()


async def test_deletes_and_repository_changes_are_events(registry, servers, bus_prefix):
    digest, _ = await push_image(registry, "acme/app", "v1")
    await push_image(registry, "acme/app", "v2")
    async with registry.http.delete(registry.v2("acme/app/manifests/v2")) as r:
        assert r.status == 202
    async with registry.http.delete(registry.v2(f"acme/app/manifests/{digest}")) as r:
        assert r.status == 202

    async def deleted():
        messages = await stream_messages(servers.nats_url, bus_prefix, "tag.deleted")
        return [json.loads(m.data) for m in messages] if len(messages) >= 2 else None

    tags = await eventually(deleted, what="tag.deleted of both tags")
    assert sorted((t["tag"], t["reason"]) for t in tags) == [("v1", "manifest_deleted"), ("v2", "deleted")]
    manifests = [json.loads(m.data) for m in await stream_messages(servers.nats_url, bus_prefix, "manifest.deleted")]
    assert [(m["digest"], m["tags"]) for m in manifests] == [(digest, ["v1"])]
    created = [json.loads(m.data) for m in await stream_messages(servers.nats_url, bus_prefix, "repository.created")]
    assert [c["repository"] for c in created] == ["acme/app"]
