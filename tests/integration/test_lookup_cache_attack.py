"""Attacks on the pull-lookup cache (shared/registry/lookups.py, docs/decisions.md "Pull lookups kept
under a lease"): two or three gateways on one database, each with its own cache."""
from __future__ import annotations

import asyncio
import json

import nats

from tests.helpers import OCI_MANIFEST, eventually, push_image
from tests.integration.test_lookup_cache import NAME, lookups_of, served, warm


async def test_a_tag_changed_event_is_never_followed_by_a_stale_pull_from_another_gateway(make_registry, servers, bus_prefix):
    """The tag.changed event is published right after commit, while the PUT still waits out the lease.
    A consumer of that event (a webhook, a deploy hook on NATS) that pulls the tag at once must get the
    new manifest; another gateway may still answer the old one from its cache until its next check."""
    writer, reader = await make_registry(), await make_registry()
    digest, _ = await push_image(writer, NAME, "latest")
    nc = await nats.connect(servers.nats_url)
    events: asyncio.Queue = asyncio.Queue()

    async def on_event(msg):
        events.put_nowait(json.loads(msg.data))

    sub = await nc.subscribe(f"{bus_prefix}.events.tag.changed", cb=on_event)
    stale = []
    try:
        for _ in range(8):
            await warm(reader, "latest", digest)
            while not events.empty():
                events.get_nowait()
            new, _ = await push_image(writer, NAME, None)  # blobs and manifest, by digest: nothing moves
            body = await (await writer.http.get(writer.v2(f"{NAME}/manifests/{new}"), headers={"Accept": OCI_MANIFEST})).read()
            put = asyncio.ensure_future(writer.http.put(writer.v2(f"{NAME}/manifests/latest"), data=body,
                                                        headers={"Content-Type": OCI_MANIFEST}))
            while True:
                event = await asyncio.wait_for(events.get(), 10)
                if event.get("tag") == "latest" and event.get("digest") == new:
                    break
            got = await served(reader, "latest")
            if got != (200, new):
                stale.append((got, new))
            async with await put as r:
                assert r.status == 201
            digest = new
    finally:
        await sub.unsubscribe()
        await nc.close()
    assert not stale, f"{len(stale)}/8 pulls right after the tag.changed event got the old manifest: {stale}"


async def test_while_a_change_waits_out_the_lease_a_cached_gateway_may_lag_but_never_once_it_answered(make_registry):
    """Not promised (docs/decisions.md): monotonic reads across gateways *while* the change waits. A
    client that saw the moved tag through a gateway that asks the database may get the old manifest
    through a caching one until the PUT answers (this attack found it happening 7-8 times in 8); once
    the PUT has answered, never."""
    writer, reader = await make_registry(), await make_registry()
    direct = await make_registry(MERIDIAN_LOOKUP_CACHE_SEC=0)  # asks the database every time
    digest, _ = await push_image(writer, NAME, "latest")
    for _ in range(8):
        await warm(reader, "latest", digest)
        new, _ = await push_image(writer, NAME, None)
        body = await (await writer.http.get(writer.v2(f"{NAME}/manifests/{new}"), headers={"Accept": OCI_MANIFEST})).read()
        put = asyncio.ensure_future(writer.http.put(writer.v2(f"{NAME}/manifests/latest"), data=body,
                                                    headers={"Content-Type": OCI_MANIFEST}))
        while await served(direct, "latest") != (200, new):  # the client sees the new tag ...
            await asyncio.sleep(0.001)
        assert (await served(reader, "latest"))[1] in (digest, new)  # ... the caching gateway: either, for now
        async with await put as r:
            assert r.status == 201
        assert await served(reader, "latest") == (200, new)  # the PUT answered: the new one everywhere
        digest = new


async def test_gateways_with_different_leases_serve_stale_after_the_change_answered(make_registry):
    """A reader whose lease is longer than the writer's (a region's config.yaml, a rolling change of the
    value) must not serve the moved tag's old manifest after the PUT answered: the writer waits the
    longest lease registered in lookup_leases, not its own."""
    writer = await make_registry(MERIDIAN_LOOKUP_CACHE_SEC=0.1)
    reader = await make_registry(MERIDIAN_LOOKUP_CACHE_SEC=2)
    digest, _ = await push_image(writer, NAME, "latest")
    await warm(reader, "latest", digest)
    started = asyncio.get_running_loop().time()
    digest, _ = await push_image(writer, NAME, "latest")
    assert await served(reader, "latest") == (200, digest), "the old manifest after the PUT answered"
    assert asyncio.get_running_loop().time() - started >= 2  # the writer waited the reader's lease
    off = await make_registry(MERIDIAN_LOOKUP_CACHE_SEC=0)  # keeps nothing, but still waits for the others
    digest, _ = await push_image(off, NAME, "latest")
    assert await served(reader, "latest") == (200, digest)


async def test_many_concurrent_pushes_of_one_tag_and_of_many_repositories_all_succeed_and_end_fresh(make_registry, db):
    """The commit-time epoch row is taken by every tag-changing commit: no deadlock, no 5xx, and the
    reader serves what the database holds once they all answered."""
    writer, reader = await make_registry(), await make_registry()
    first, _ = await push_image(writer, NAME, "latest")
    await warm(reader, "latest", first)
    epoch = await db.fetchval("SELECT epoch FROM lookup_epoch")
    results = await asyncio.gather(
        *(push_image(writer, NAME, "latest") for _ in range(10)),
        *(push_image(writer, f"acme/r{i}", "latest") for i in range(10)),
        return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures
    assert await db.fetchval("SELECT epoch FROM lookup_epoch") >= epoch + 20
    final = await db.fetchval(
        "SELECT m.digest FROM tags t JOIN manifests m ON m.id = t.manifest_id JOIN repositories r ON r.id = t.repository_id "
        "WHERE r.full_name = $1 AND t.name = 'latest' AND t.lifetime_end IS NULL", NAME)
    assert await served(reader, "latest") == (200, final)


async def test_a_deleted_and_recreated_repository_never_serves_the_old_repositorys_manifests(make_registry):
    writer, reader = await make_registry(), await make_registry()
    old, _ = await push_image(writer, NAME, "latest")
    await warm(reader, "latest", old)
    await warm(reader, old, old)
    async with writer.http.delete(f"{writer.url}/api/v1/repository/{NAME}") as r:
        assert r.status == 204, await r.text()
    new, _ = await push_image(writer, NAME, "latest")
    assert await served(reader, "latest") == (200, new)
    assert (await served(reader, old))[0] == 404
    assert lookups_of(reader).enabled


async def test_an_epoch_that_comes_back_to_a_value_a_gateway_saw_does_not_empty_its_cache(make_registry, db):
    """A database whose history diverged from what a gateway saw (a failover that lost the last commits,
    a point-in-time restore) can bring the counter back to the value the gateway holds while tags
    differ; the stamp, new at every move, still differs. Simulated: the counter put back one, then a
    tag moved."""
    writer, reader = await make_registry(), await make_registry()
    old, _ = await push_image(writer, NAME, "latest")
    new, _ = await push_image(writer, NAME, None)
    await warm(reader, "latest", old)
    async with db.transaction():
        await db.execute("UPDATE lookup_epoch SET epoch = epoch - 1")  # the restored history's counter ...
        await db.execute(  # ... and one change in it: the trigger brings the counter back where it was
            "UPDATE tags SET manifest_id = (SELECT id FROM manifests WHERE digest = $1) "
            "WHERE name = 'latest' AND lifetime_end IS NULL", new)
    lease = reader.config.meridian_lookup_cache_sec
    await asyncio.sleep(lease * 3)  # several checks; a change behind the gateways' back is seen within one lease
    assert await served(reader, "latest") == (200, new)


async def test_the_relay_never_publishes_a_change_before_its_lease_wait_ends(servers, bus_prefix, database):
    """A change that moved a lookup publishes its events one lease after commit. The relay (any
    process's) republishes rows older than its grace period: counted from insert, a transaction longer
    than that grace period had its events relayed at once, before the wait, and a consumer pulling on
    the event could get the old manifest from a caching gateway."""
    import asyncpg

    from shared.bus import Bus
    from shared.messages import TagChanged
    from shared.outbox import OutboxRelay
    from shared.registry import Registry, lookups

    bus = Bus(servers.nats_url, bus_prefix)
    await bus.connect()
    pool = await asyncpg.create_pool(database, min_size=1, max_size=3)
    lease, relay_after, slow_transaction = 1.5, 0.5, 0.8
    try:
        # A gateway somewhere keeps lookups for 1.5 s; the changing process itself publishes nothing
        # (relay=None), so only the relay can put the row on the bus.
        await pool.execute("INSERT INTO lookup_leases (instance, lease_s, seen_at) VALUES (gen_random_uuid(), $1, now())", lease)
        registry = Registry(pool, bus.subjects, "us", relay=None, lookup_lease_s=0.1)
        relay = OutboxRelay(pool, bus, relay_after=relay_after)
        lookups.watch()
        async with registry.change() as change:
            lookups.changed()
            await change.emit(bus.subjects.tag_changed, TagChanged(repository="acme/app", tag="latest", digest=None,
                                                                  region="us", changed_at=0.0), msg_id="held-by-lease")
            await asyncio.sleep(slow_transaction)  # longer than the relay's grace period
        committed = asyncio.get_running_loop().time()

        async def waiting() -> bool:
            return await pool.fetchval("SELECT count(*) FROM outbox WHERE msg_id = 'held-by-lease'") == 1

        while asyncio.get_running_loop().time() < committed + relay_after + lease - 0.2:
            await relay.relay_once()
            assert await waiting(), "the relay published a change's event before its lease wait ended"
            await asyncio.sleep(0.05)

        # The hold ends MAX_LEASE_S + 60 s after commit; a relay whose clock runs that far ahead
        # stands in for waiting it out, and shows the row is relayed then.
        later = OutboxRelay(pool, bus, relay_after=relay_after - lookups.MAX_LEASE_S - 60)

        async def relayed() -> bool:
            await later.relay_once()
            return not await waiting()

        await eventually(relayed, timeout=10, what="the event relayed once the grace period and the lease have passed")
    finally:
        await pool.close()
        await bus.close()
