"""Pull lookups kept under a lease (shared/registry/lookups.py): two gateways on one database, each
with its own cache. Whatever one of them changes is never served from before the change by the other
once the changing request has answered."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from services.gateway.state import GATEWAY
from shared.registry import lookups
from shared.registry.lookups import Lookups
from shared.registry.manifests import get_by_tag
from tests.helpers import OCI_MANIFEST, eventually, push_image

NAME = "acme/app"


def lookups_of(reg) -> Lookups:
    kept = reg.runner.app[GATEWAY].lookups
    assert kept is not None and kept.enabled
    return kept


async def served(reg, reference: str, name: str = NAME) -> tuple[int, str | None]:
    async with reg.http.get(reg.v2(f"{name}/manifests/{reference}"), headers={"Accept": OCI_MANIFEST}) as r:
        await r.read()
        return r.status, r.headers.get("Docker-Content-Digest")


async def warm(reg, reference: str, expected: str, name: str = NAME) -> None:
    """Until the reader answers `reference` from its cache (a check has run and the answer is kept)."""
    kept = lookups_of(reg)

    async def from_cache():
        before = kept.hits
        assert await served(reg, reference, name) == (200, expected)
        return kept.hits > before

    await eventually(from_cache, timeout=5, interval=0.02, what=f"{reference} served from the reader's cache")


async def test_a_moved_tag_is_never_served_stale_by_another_gateway_after_its_put_returns(make_registry):
    writer, reader = await make_registry(), await make_registry()
    digest, _ = await push_image(writer, NAME, "latest")
    for _ in range(8):
        await warm(reader, "latest", digest)
        digest, _ = await push_image(writer, NAME, "latest")  # returns once the PUT has answered
        assert await served(reader, "latest") == (200, digest)


async def test_deleted_tags_digests_and_repositories_are_gone_everywhere_once_the_delete_answers(make_registry):
    writer, reader = await make_registry(), await make_registry()
    digest, _ = await push_image(writer, NAME, "v1")
    await warm(reader, "v1", digest)
    await warm(reader, digest, digest)
    async with writer.http.delete(writer.v2(f"{NAME}/manifests/{digest}")) as r:
        assert r.status == 202
    assert (await served(reader, "v1"))[0] == 404
    assert (await served(reader, digest))[0] == 404

    digest, _ = await push_image(writer, "acme/gone", "v1")
    await warm(reader, "v1", digest, name="acme/gone")
    async with writer.http.delete(f"{writer.url}/api/v1/repository/acme/gone") as r:
        assert r.status == 204, await r.text()
    assert (await served(reader, "v1", name="acme/gone"))[0] == 404


async def test_a_change_made_behind_the_gateways_back_is_seen_within_one_lease(make_registry, db):
    """An operator's SQL does not wait out the lease, but the epoch trigger still empties every cache
    at the next check."""
    reader = await make_registry()
    digest, _ = await push_image(reader, NAME, "latest")
    await warm(reader, "latest", digest)
    epoch = await db.fetchval("SELECT epoch FROM lookup_epoch")
    await db.execute("UPDATE tags SET lifetime_end = clock_timestamp() WHERE name = 'latest' AND lifetime_end IS NULL")
    assert await db.fetchval("SELECT epoch FROM lookup_epoch") == epoch + 1
    lease = reader.config.meridian_lookup_cache_sec

    async def gone():
        return (await served(reader, "latest"))[0] == 404

    await eventually(gone, timeout=lease * 3, interval=0.01, what="the ended tag to stop being served")


async def test_a_tag_that_expires_is_never_kept(make_registry):
    reader = await make_registry()
    digest, _ = await push_image(reader, NAME, "nightly", labels={"quay.expires-after": "1h"})
    kept = lookups_of(reader)
    await warm(reader, digest, digest)  # the cache is running and keeps digests
    before = kept.hits
    for _ in range(5):
        assert await served(reader, "nightly") == (200, digest)
        await asyncio.sleep(kept.lease_s / 2)
    assert kept.hits == before


async def test_the_epoch_moves_once_per_committed_transaction(db):
    epoch = await db.fetchval("SELECT epoch FROM lookup_epoch")
    namespace = await db.fetchval("INSERT INTO namespaces (name) VALUES ('epochs') RETURNING id")
    repo = await db.fetchval("INSERT INTO repositories (namespace_id, name, full_name) VALUES ($1, 'r', 'epochs/r') RETURNING id",
                             namespace)
    manifest = await db.fetchval("INSERT INTO manifests (repository_id, digest, media_type, size, body) "
                                 "VALUES ($1, 'sha256:' || repeat('a', 64), 'x', 1, 'x') RETURNING id", repo)
    assert await db.fetchval("SELECT epoch FROM lookup_epoch") == epoch  # nothing a lookup answered changed
    async with db.transaction():
        for tag in ("a", "b", "c"):
            await db.execute("INSERT INTO tags (repository_id, name, manifest_id) VALUES ($1, $2, $3)", repo, tag, manifest)
        await db.execute("UPDATE tags SET expires_at = now() + interval '1 day' WHERE repository_id = $1", repo)
    assert await db.fetchval("SELECT epoch FROM lookup_epoch") == epoch + 1
    try:
        async with db.transaction():
            await db.execute("DELETE FROM tags WHERE repository_id = $1", repo)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert await db.fetchval("SELECT epoch FROM lookup_epoch") == epoch + 1
    await db.execute("DELETE FROM repositories WHERE id = $1", repo)
    assert await db.fetchval("SELECT epoch FROM lookup_epoch") == epoch + 2


async def test_answers_read_before_a_check_that_emptied_the_cache_are_not_kept_and_the_lease_runs_out(
        make_registry, db):
    reg = await make_registry(MERIDIAN_LOOKUP_CACHE_SEC=0)  # no cache of its own; this test drives one by hand
    digest, _ = await push_image(reg, NAME, "latest")
    pool = reg.runner.app[GATEWAY].pool
    kept: Lookups = Lookups(pool, lease_s=0.3)
    assert await get_by_tag(pool, NAME, "latest", kept) is not None and kept.get((NAME, "latest")) is None  # no check yet
    await kept.check()
    found = await get_by_tag(pool, NAME, "latest", kept)
    assert found is not None and kept.get((NAME, "latest")) == found

    ticket = kept.ticket()  # a read starts ...
    await db.execute("UPDATE tags SET expires_at = NULL WHERE name = 'latest'")  # ... a change commits ...
    await kept.check()  # ... a check empties the cache ...
    assert kept.get((NAME, "latest")) is None
    kept.keep((NAME, "latest"), found, ticket)  # ... and the read that began before it lands: not kept
    assert kept.get((NAME, "latest")) is None

    await get_by_tag(pool, NAME, "latest", kept)
    assert kept.get((NAME, "latest")) == found
    await asyncio.sleep(0.3)  # no check for a whole lease: the cache is not used
    assert kept.get((NAME, "latest")) is None
    await kept.check()
    assert kept.get((NAME, "latest")) == found


async def test_a_slow_lease_renewal_does_not_end_the_lease(make_registry, db):
    """Renewing this process's row is a write, and its commit can wait seconds on a busy disk; the
    epoch checks go on meanwhile and keep the lease (before, the check awaited the renewal, the lease
    ran out, and every lookup went to the database)."""
    from shared.registry.lookups import REGISTRATION_RENEW_S

    reg = await make_registry(MERIDIAN_LOOKUP_CACHE_SEC=0)  # no cache of its own; this test drives one by hand
    await push_image(reg, NAME, "latest")
    pool = reg.runner.app[GATEWAY].pool
    kept: Lookups = Lookups(pool, lease_s=1.0)  # a lease a loaded machine's round trips fit in many times
    await kept.check()  # registered
    found = await get_by_tag(pool, NAME, "latest", kept)
    assert found is not None and kept.get((NAME, "latest")) == found
    blocker = await pool.acquire()
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE lookup_leases IN ACCESS EXCLUSIVE MODE")  # the renewal waits here
            kept._registered = time.monotonic() - REGISTRATION_RENEW_S  # a renewal is due
            kept.start()
            ends = time.monotonic() + 3.0  # three leases
            while time.monotonic() < ends:
                assert kept.get((NAME, "latest")) == found
                await asyncio.sleep(0.05)
            assert kept._renewal is not None and not kept._renewal.done()  # still waiting for the lock
        await eventually(lambda: asyncio.sleep(0, kept._renewal is not None and kept._renewal.done()),
                         what="the renewal to end once the lock is gone")
        assert time.monotonic() - kept._registered < 5
    finally:
        await pool.release(blocker)
        await kept.stop()


async def _locked(pool, table: str):
    """A connection holding `table` locked against every reader until the returned release is awaited
    (once or more)."""
    conn = await pool.acquire()
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    released = False

    async def release() -> None:
        nonlocal released
        if released:
            return
        released = True
        try:
            await transaction.rollback()
        finally:
            await pool.release(conn)

    return release


async def _until_lapsed(kept: Lookups) -> None:
    await eventually(lambda: asyncio.sleep(0, time.monotonic() >= kept._usable_until), timeout=5, interval=0.01,
                     what="the lease to run out")


async def test_a_lookup_during_a_lapse_waits_for_the_check_under_way_not_for_the_database(make_registry, monkeypatch):
    """When a check's round trip outlasts the lease (cores busy), the lease lapses while that check is
    under way. A lookup then waits for that check, which renews the lease for it, instead of asking
    the database: under load, every request asking at once made the database slower still, and the
    next checks later (manifest GETs of 10–400 ms in bursts in the benchmark)."""
    monkeypatch.setattr(lookups, "LAPSE_WAIT_MAX_S", 5.0)  # the whole lease: room for a loaded machine
    reg = await make_registry(MERIDIAN_LOOKUP_CACHE_SEC=0)  # no cache of its own; this test drives one by hand
    await push_image(reg, NAME, "latest")
    pool = reg.runner.app[GATEWAY].pool
    kept: Lookups = Lookups(pool, lease_s=1.0)
    await kept.check()
    found = await get_by_tag(pool, NAME, "latest", kept)
    assert found is not None and kept.get((NAME, "latest")) == found
    release_epoch = await _locked(pool, "lookup_epoch")  # checks wait here ...
    release_tags = await _locked(pool, "tags")  # ... and so would a lookup sent to the database
    try:
        await asyncio.sleep(max(0.0, kept._usable_until - 0.2 - time.monotonic()))
        check = kept._start_check()  # begins less than a lease before the lookup below
        await _until_lapsed(kept)
        lookup = asyncio.ensure_future(get_by_tag(pool, NAME, "latest", kept))
        await asyncio.sleep(0.05)
        assert not lookup.done()  # waiting for the check
        await release_epoch()
        await asyncio.wait_for(check, 5)
        assert await asyncio.wait_for(lookup, 5) == found  # answered while `tags` is still locked: from the cache
    finally:
        await release_epoch()
        await release_tags()
        await kept.stop()


async def test_a_lookup_waits_no_longer_than_the_cap_for_a_stuck_check(make_registry):
    """A check stuck on its connection must not hold the requests of a long lease: after
    LAPSE_WAIT_MAX_S the lookup asks the database itself."""
    from shared.registry.lookups import LAPSE_WAIT_MAX_S

    reg = await make_registry(MERIDIAN_LOOKUP_CACHE_SEC=0)
    await push_image(reg, NAME, "latest")
    pool = reg.runner.app[GATEWAY].pool
    kept: Lookups = Lookups(pool, lease_s=5.0)
    await kept.check()
    found = await get_by_tag(pool, NAME, "latest", kept)
    release_epoch = await _locked(pool, "lookup_epoch")
    try:
        kept._usable_until = time.monotonic()  # the lease ran out ...
        check = kept._start_check()  # ... while a check that could renew it is stuck
        started = time.monotonic()
        assert await asyncio.wait_for(get_by_tag(pool, NAME, "latest", kept), 10) == found  # from the database
        waited = time.monotonic() - started
        assert LAPSE_WAIT_MAX_S <= waited < 4.0 and not check.done()
    finally:
        await release_epoch()
        await kept.stop()


async def test_checks_start_on_time_while_earlier_ones_wait(make_registry):
    """A check starts every lease / CHECKS_PER_LEASE even while earlier ones have not answered (up to
    MAX_CHECKS_IN_FLIGHT): a slow round trip no longer delays the next check by its whole length."""
    from shared.registry.lookups import MAX_CHECKS_IN_FLIGHT

    reg = await make_registry(MERIDIAN_LOOKUP_CACHE_SEC=0)
    pool = reg.runner.app[GATEWAY].pool
    kept: Lookups = Lookups(pool, lease_s=0.4)
    await kept.check()  # registered
    release = await _locked(pool, "lookup_epoch")
    try:
        kept.start()
        assert MAX_CHECKS_IN_FLIGHT >= 2
        await eventually(lambda: asyncio.sleep(0, len(kept._checks) == MAX_CHECKS_IN_FLIGHT), timeout=5, interval=0.01,
                         what=f"{MAX_CHECKS_IN_FLIGHT} checks under way at once")
        await asyncio.sleep(0.3)
        assert len(kept._checks) == MAX_CHECKS_IN_FLIGHT  # no more than that
        await release()
        await eventually(lambda: asyncio.sleep(0, kept.get(("x", "y")) is None and kept._usable_until > 0
                                               and len(kept._checks) < MAX_CHECKS_IN_FLIGHT),
                         timeout=5, interval=0.01, what="the checks to answer and renew the lease")
    finally:
        await release()
        await kept.stop()


async def test_a_check_that_answers_after_a_later_one_changes_nothing(make_registry, db):
    reg = await make_registry(MERIDIAN_LOOKUP_CACHE_SEC=0)
    await push_image(reg, NAME, "latest")
    pool = reg.runner.app[GATEWAY].pool
    kept: Lookups = Lookups(pool, lease_s=5.0)
    await kept.check()
    earlier_start = time.monotonic()
    await kept.check()  # the later check answers first
    found = await get_by_tag(pool, NAME, "latest", kept)
    usable_until = kept._usable_until
    await db.execute("UPDATE tags SET expires_at = NULL WHERE name = 'latest'")  # the epoch moves
    await kept._check(kept._check_applied - 1, earlier_start, kept._registered)  # the earlier check's answer lands
    assert kept.get((NAME, "latest")) == found and kept._usable_until == usable_until
    await kept.check()  # a newer check sees the move
    assert kept.get((NAME, "latest")) is None
    await kept.stop()


class HeldEpochs:
    """The gateway's pool, except that an epoch read waits on the next gate queued, either before
    PostgreSQL is asked (hold="read": a check slow on its connection, as on busy cores) or after it
    answered (hold="answer": an answer that comes late). Every query still goes to PostgreSQL."""

    def __init__(self, pool, hold: str = "read") -> None:
        self.pool = pool
        self.hold = hold
        self.gates: list[asyncio.Event] = []
        self.read = asyncio.Event()  # set once PostgreSQL has answered a held read

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> asyncpg.Record | None:
        gate = self.gates.pop(0) if "lookup_epoch" in query and self.gates else None
        if gate is not None and self.hold == "read":
            await gate.wait()
        row = await self.pool.fetchrow(query, *args, timeout=timeout)
        if gate is not None and self.hold == "answer":
            self.read.set()
            await gate.wait()
        return row

    def __getattr__(self, name):
        return getattr(self.pool, name)


async def hand_driven(make_registry, monkeypatch, lease_s: float, *tags: str, hold: str = "read"):
    """(the gateway's pool, it wrapped in HeldEpochs, a cache on the wrapper driven by hand, the
    digests of the tags pushed) on a gateway with no cache of its own. A lookup waits up to 5 s for a
    check under way: a wrong wait would last until then."""
    monkeypatch.setattr(lookups, "LAPSE_WAIT_MAX_S", 5.0)
    reg = await make_registry(MERIDIAN_LOOKUP_CACHE_SEC=0)
    digests = [(await push_image(reg, NAME, tag))[0] for tag in tags]
    raw = reg.runner.app[GATEWAY].pool
    pool = HeldEpochs(raw, hold)
    return raw, pool, Lookups(pool, lease_s=lease_s), digests


async def test_a_lookup_in_a_lapse_is_not_held_by_a_stuck_check_once_a_later_one_renewed(make_registry, monkeypatch):
    _, pool, kept, _ = await hand_driven(make_registry, monkeypatch, 2.0, "latest")
    await kept.check()
    found = await get_by_tag(pool, NAME, "latest", kept)
    stuck, slow = asyncio.Event(), asyncio.Event()
    try:
        await asyncio.sleep(max(0.0, kept._usable_until - 0.3 - time.monotonic()))
        pool.gates += [stuck, slow]
        kept._start_check()  # stuck on its connection
        await asyncio.sleep(0.05)
        later = kept._start_check()  # a little slow
        await _until_lapsed(kept)
        arrived = time.monotonic()
        lookup = asyncio.ensure_future(get_by_tag(pool, NAME, "latest", kept))
        await asyncio.sleep(0.02)
        slow.set()
        await later  # the lease is renewed
        assert time.monotonic() < kept._usable_until
        assert await asyncio.wait_for(lookup, 5) == found
        waited = time.monotonic() - arrived
        assert waited < 0.8, f"the lookup waited {waited:.3f} s for the stuck check after a later one renewed the lease"
    finally:
        stuck.set()
        slow.set()
        await kept.stop()


async def test_a_lookup_does_not_wait_for_a_check_whose_registration_is_too_old(make_registry, monkeypatch):
    raw, pool, kept, _ = await hand_driven(make_registry, monkeypatch, 2.0, "latest")
    await kept.check()
    found = await get_by_tag(pool, NAME, "latest", kept)
    release_leases = await _locked(raw, "lookup_leases")  # renewals hang (a disk busy with writeback)
    slow = asyncio.Event()
    try:
        kept._registered = time.monotonic() - lookups.REGISTRATION_VALID_S - 1  # the last renewal began too long ago
        await kept.check()  # starts a renewal (it hangs); cannot renew the lease
        assert time.monotonic() >= kept._usable_until
        pool.gates.append(slow)
        kept._start_check()  # slow, and it could not renew either
        arrived = time.monotonic()
        assert await asyncio.wait_for(get_by_tag(pool, NAME, "latest", kept), 5) == found  # from the database
        waited = time.monotonic() - arrived
        assert waited < 0.8, f"the lookup waited {waited:.3f} s for a check capped by the registration"
    finally:
        slow.set()
        await release_leases()
        await kept.stop()


async def test_a_lookup_of_a_key_not_kept_does_not_wait_for_a_check(make_registry, monkeypatch):
    _, pool, kept, _ = await hand_driven(make_registry, monkeypatch, 2.0, "latest", "other")
    await kept.check()
    assert await get_by_tag(pool, NAME, "latest", kept) is not None  # only "latest" is kept
    slow = asyncio.Event()
    try:
        await asyncio.sleep(max(0.0, kept._usable_until - 0.1 - time.monotonic()))
        pool.gates.append(slow)
        kept._start_check()  # slow
        await _until_lapsed(kept)
        arrived = time.monotonic()
        assert (NAME, "other") not in kept._entries
        assert await asyncio.wait_for(get_by_tag(pool, NAME, "other", kept), 5) is not None  # a miss whatever the check says
        waited = time.monotonic() - arrived
        assert waited < 0.8, f"a lookup of a key not kept waited {waited:.3f} s for the check"
    finally:
        slow.set()
        await kept.stop()


async def test_a_stopped_cache_registers_again_when_it_starts_again(make_registry, db):
    reg = await make_registry(MERIDIAN_LOOKUP_CACHE_SEC=0)
    pool = reg.runner.app[GATEWAY].pool
    kept: Lookups = Lookups(pool, lease_s=1.0)
    await kept.check()
    assert await db.fetchval("SELECT count(*) FROM lookup_leases WHERE instance = $1", kept._instance) == 1
    await kept.stop()
    assert await db.fetchval("SELECT count(*) FROM lookup_leases WHERE instance = $1", kept._instance) == 0
    await kept.check()  # used again: writers must see its lease first
    assert await db.fetchval("SELECT count(*) FROM lookup_leases WHERE instance = $1", kept._instance) == 1
    await kept.stop()


async def test_a_check_that_answers_too_late_to_renew_the_lease_still_vouches_for_the_lookups_waiting_on_it(
        make_registry, db, monkeypatch):
    """A check that began less than a lease before a lookup began after every change that had answered
    by then: if its answer shows the epoch unmoved, the waiting lookup is served from the cache even
    though the answer came too late to renew the lease (under load the answers come 0.1–0.6 s late,
    and the lookups sent to the database made it slower still). If the epoch moved, the lookup asks
    the database."""
    raw, pool, kept, _ = await hand_driven(make_registry, monkeypatch, 0.5, "latest")
    try:
        for epoch_moves in (False, True):
            await kept.check()
            found = await get_by_tag(pool, NAME, "latest", kept)
            assert kept.get((NAME, "latest")) == found
            late = asyncio.Event()
            await asyncio.sleep(max(0.0, kept._usable_until - 0.1 - time.monotonic()))
            pool.gates.append(late)
            check = kept._start_check()
            await _until_lapsed(kept)
            hits = kept.hits
            lookup = asyncio.ensure_future(get_by_tag(pool, NAME, "latest", kept))
            await asyncio.sleep(0.6)  # past the check's start + lease: its answer cannot renew the lease
            assert not lookup.done()
            if epoch_moves:
                await db.execute("UPDATE tags SET expires_at = NULL WHERE name = 'latest'")
                late.set()
                assert await asyncio.wait_for(lookup, 5) == found  # asked the database
                assert kept.hits == hits
            else:
                release_tags = await _locked(raw, "tags")  # a lookup sent to the database would wait here
                try:
                    late.set()
                    assert await asyncio.wait_for(lookup, 5) == found
                    assert kept.hits == hits + 1 and time.monotonic() >= kept._usable_until
                finally:
                    await release_tags()
            await check
    finally:
        await kept.stop()


async def test_a_check_begun_more_than_a_lease_before_a_lookup_does_not_vouch_for_it(make_registry, db, monkeypatch):
    """A check that read the epoch before a change committed, and answers only after that change has
    answered, knows nothing of it: a lookup that began after the change answered must not be served
    on its word."""
    _, pool, kept, (old, new) = await hand_driven(make_registry, monkeypatch, 0.5, "latest", "next", hold="answer")
    held = asyncio.Event()
    try:
        await kept.check()
        first = await get_by_tag(pool, NAME, "latest", kept)
        assert first is not None and first.digest == old
        pool.gates.append(held)
        kept._start_check()
        await asyncio.wait_for(pool.read.wait(), 5)  # it has read the epoch, before the change below
        await db.execute("UPDATE tags SET manifest_id = (SELECT id FROM manifests WHERE digest = $1) "
                         "WHERE name = 'latest' AND lifetime_end IS NULL", new)
        await asyncio.sleep(0.5)  # the change waits out the lease, then answers
        await _until_lapsed(kept)
        lookup = asyncio.ensure_future(get_by_tag(pool, NAME, "latest", kept))
        await asyncio.sleep(0.2)
        held.set()  # the old check's answer lands
        answer = await asyncio.wait_for(lookup, 5)
        assert answer is not None and answer.digest == new
    finally:
        held.set()
        await kept.stop()
