"""Usage logs: every action recorded; date-range queries return exactly what is in range; performer
filter, pages and daily counts; exports delivered to a callback URL or by e-mail, and callbacks on
private addresses refused."""
from __future__ import annotations

import asyncio
import datetime as dt
import json

from aiohttp import web

from shared.embedded import free_port
from tests.helpers import eventually, push_image


def stamp(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def server_now(world) -> dt.datetime:
    return await world.conn.fetchval("SELECT clock_timestamp()")


async def logs(world, path: str, actor: str = "alice", **params) -> dict:
    async with world.reg.http.get(world.api(path), params=params, headers=world.api_headers(actor)) as r:
        body = await r.json()
        assert r.status == 200, body
        return body


async def test_registry_and_api_actions_are_logged_and_ranges_are_exact(world):
    headers = world.api_headers("alice")
    before = await server_now(world)
    alice = await world.as_actor("alice", "repository:acme/private:pull,push")
    digest, _ = await push_image(alice, "acme/private", "v2")
    async with alice.http.get(alice.v2("acme/private/manifests/v2")) as r:
        assert r.status == 200
    await eventually(lambda: world.conn.fetchval("SELECT count(*) = 2 FROM audit_logs WHERE kind IN ('push_repo', 'pull_repo') "
                                                 "AND datetime > $1", before), what="buffered registry logs to land")
    middle = await server_now(world)
    async with world.reg.http.post(world.api("repository/acme/private/changevisibility"), json={"visibility": "public"},
                                   headers=headers) as r:
        assert r.status == 200
    async with world.reg.http.put(world.api("repository/acme/private/permissions/user/tom"), json={"role": "read"},
                                  headers=headers) as r:
        assert r.status == 200
    after = await server_now(world)
    async with world.reg.http.put(world.api("organization/acme/robots/late"), json={}, headers=headers) as r:
        assert r.status == 201

    first = await logs(world, "repository/acme/private/logs", starttime=stamp(before), endtime=stamp(middle))
    assert sorted(e["kind"] for e in first["logs"]) == ["pull_repo", "push_repo"]
    push = next(e for e in first["logs"] if e["kind"] == "push_repo")
    assert push["performer"] == {"name": "alice"} and push["metadata"]["tags"] == ["v2"] and push["ip"] == "127.0.0.1"
    assert push["metadata"]["manifest_digest"] == digest
    second = await logs(world, "repository/acme/private/logs", starttime=stamp(middle), endtime=stamp(after))
    assert [e["kind"] for e in second["logs"]] == ["change_repo_permission", "change_repo_visibility"]  # newest first
    assert second["logs"][0]["metadata"] == {"username": "tom", "role": "read"}
    org = await logs(world, "organization/acme/logs", starttime=stamp(middle))
    assert [e["kind"] for e in org["logs"]] == ["create_robot", "change_repo_permission", "change_repo_visibility"]
    assert [e["kind"] for e in (await logs(world, "organization/acme/logs", starttime=stamp(middle), performer="root"))["logs"]] == []
    mine = await logs(world, "user/logs", starttime=stamp(before))
    assert {"push_repo", "pull_repo", "login_success", "create_robot"} <= {e["kind"] for e in mine["logs"]}
    counts = await logs(world, "organization/acme/aggregatelogs", starttime=stamp(before))
    assert {(c["kind"], c["count"]) for c in counts["aggregated"]} >= {("push_repo", 1), ("pull_repo", 1), ("create_robot", 1)}
    assert all(c["datetime"] == before.date().isoformat() for c in counts["aggregated"])
    async with world.reg.http.get(world.api("organization/acme/logs"), params={"starttime": stamp(after), "endtime": stamp(before)},
                                  headers=headers) as r:
        assert r.status == 400 and "before starttime" in (await r.json())["error_message"]
    async with world.reg.http.get(world.api("organization/acme/logs"), params={"starttime": "yesterday"}, headers=headers) as r:
        assert r.status == 400 and "MM/DD/YYYY" in (await r.json())["error_message"]
    day = await logs(world, "organization/acme/logs", starttime=before.strftime("%m/%d/%Y"), endtime=before.strftime("%m/%d/%Y"))
    assert len(day["logs"]) >= 5  # a whole UTC day, end date included


async def test_pages_cover_every_row_once(world):
    start = await server_now(world)
    await world.conn.execute(
        "INSERT INTO audit_logs (kind, namespace_id, namespace, performer, metadata, datetime) "
        "SELECT 'synthetic', $1, 'acme', 'alice', jsonb_build_object('n', n), $2::timestamptz + n * interval '1 ms' "
        "FROM generate_series(1, 250) AS n",
        world.ids["acme"], start,
    )
    seen, page = [], None
    while True:
        params = {"starttime": stamp(start), "endtime": stamp(start + dt.timedelta(seconds=1))}
        if page:
            params["next_page"] = page
        body = await logs(world, "organization/acme/logs", **params)
        seen += [e["metadata"]["n"] for e in body["logs"]]
        page = body.get("next_page")
        if not page:
            break
    assert seen == list(range(250, 0, -1))


async def _callback_server():
    received: list[dict] = []

    async def handle(request):
        received.append(await request.json())
        return web.Response(text="thanks")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/hook", received


async def test_export_is_delivered_to_the_callback_with_exactly_the_range(world):
    headers = world.api_headers("alice")
    start = await server_now(world)
    for index in range(3):
        async with world.reg.http.post(world.api("repository/acme/private/changevisibility"),
                                       json={"visibility": ("public", "private")[index % 2]}, headers=headers) as r:
            assert r.status == 200
    end = await server_now(world)
    async with world.reg.http.put(world.api("repository/acme/private"), json={"description": "after the range"}, headers=headers) as r:
        assert r.status == 200
    runner, url, received = await _callback_server()
    try:
        async with world.reg.http.post(world.api("repository/acme/private/exportlogs"),
                                       params={"starttime": stamp(start), "endtime": stamp(end)},
                                       json={"callback_url": url}, headers=headers) as r:
            assert r.status == 202
            export_id = (await r.json())["export_id"]
        await eventually(lambda: asyncio.sleep(0, received), what="the callback to be called")
    finally:
        await runner.cleanup()
    assert received[0]["export_id"] == export_id and received[0]["status"] == "done"
    async with world.reg.http.get(received[0]["url"], headers=headers) as r:
        assert r.status == 200
        exported = json.loads(await r.read())
    assert [e["kind"] for e in exported["logs"]] == ["change_repo_visibility"] * 3
    async with world.reg.http.get(received[0]["url"], headers=world.api_headers("walt")) as r:
        assert r.status == 404  # someone else's export


async def test_callbacks_to_private_or_loopback_addresses_are_refused(world):
    headers = world.api_headers("alice")  # the world allows 127.0.0.1 only
    for url, reason in (("http://10.1.2.3/hook", "10.1.2.3"), ("http://192.168.0.7:8080/x", "192.168.0.7"),
                        ("http://localhost/hook", "loopback"), ("http://[::1]/hook", "::1"),
                        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"), ("ftp://example.com/x", "http")):
        async with world.reg.http.post(world.api("organization/acme/exportlogs"), json={"callback_url": url},
                                       headers=headers) as r:
            body = await r.json()
        assert r.status == 400, (url, body)
        assert reason in body["error_message"], (url, body)
    assert await world.conn.fetchval("SELECT count(*) FROM log_exports") == 0


async def test_export_can_be_announced_by_email(make_world):
    from aiosmtpd.controller import Controller

    messages = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope):
            messages.append((envelope.rcpt_tos, envelope.content.decode()))
            return "250 OK"

    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        world = await make_world(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_TLS=False,
                                 MAIL_DEFAULT_SENDER="registry@example.com")
        async with world.reg.http.post(world.api("user/exportlogs"), json={"callback_email": "alice@example.com"},
                                       headers=world.api_headers("alice")) as r:
            assert r.status == 202
            export_id = (await r.json())["export_id"]
        await eventually(lambda: asyncio.sleep(0, messages), what="the e-mail to arrive")
    finally:
        controller.stop()
    import email

    recipients, raw = messages[0]
    assert recipients == ["alice@example.com"]
    payload = email.message_from_string(raw).get_payload(decode=True)
    assert isinstance(payload, bytes), payload
    content = payload.decode()
    assert export_id in content and f"/api/v1/exportlogs/{export_id}/file" in content


async def test_an_export_whose_gateway_died_is_resumed_by_another(world, make_registry):
    runner, url, received = await _callback_server()
    try:
        # As if a gateway accepted the export and died before running it, and another died mid-run.
        await world.conn.execute(
            "INSERT INTO log_exports (id, requested_by, scope_kind, scope_id, starttime, endtime, callback_url, status, claimed_at, "
            "created_at) "
            "VALUES (gen_random_uuid(), $1, 'organization', $2, now() - interval '1 day', now(), $3, 'queued', NULL, "
            "now() - interval '1 minute'), "
            "       (gen_random_uuid(), $1, 'organization', $2, now() - interval '1 day', now(), $3, 'running', now() - interval '1 hour', "
            "        now() - interval '1 hour')",
            world.ids["alice"], world.ids["acme"], url)
        await make_registry(**{k: v for k, v in world.reg.doc.items() if k != "SERVER_HOSTNAME"})  # a fresh gateway starts

        async def both_done():
            return await world.conn.fetchval("SELECT count(*) = 2 FROM log_exports WHERE status = 'done'") and len(received) == 2

        await eventually(both_done, what="the orphaned exports to be resumed")
        assert {r["status"] for r in received} == {"done"}
    finally:
        await runner.cleanup()


async def test_a_flush_returns_only_once_rows_already_in_flight_have_landed(database):
    """flush() is what tests and shutdown call to know the buffer is in the database: it must wait for the
    timer's flush that already took a batch, not return early on the emptied buffer."""
    import asyncpg

    from shared.model.audit import AuditBuffer, Entry

    pool = await asyncpg.create_pool(database, min_size=1, max_size=1)
    watcher = await asyncpg.connect(database)
    try:
        buffer = AuditBuffer(pool)
        for n in range(5):
            buffer.add(Entry(kind="pull_repo", metadata={"n": n}))
        in_flight = asyncio.get_running_loop().create_task(buffer.flush())  # as the timer's flush would
        await asyncio.sleep(0)  # it has taken the batch off the buffer and is writing it
        await buffer.flush()
        assert in_flight.done()
        assert await watcher.fetchval("SELECT count(*) FROM audit_logs WHERE kind = 'pull_repo'") == 5
    finally:
        await watcher.close()
        await pool.close()


async def test_a_stop_during_the_timers_flush_loses_no_row(database):
    """stop() cancels the flush timer; a batch the timer is writing at that moment must still land
    (before, the cancellation dropped it: neither written nor put back)."""
    import asyncpg

    from shared.model.audit import AuditBuffer, Entry

    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    blocker = await asyncpg.connect(database)
    watcher = await asyncpg.connect(database)
    try:
        buffer = AuditBuffer(pool, flush_every=0.01, max_rows=3)
        for n in range(7):
            buffer.add(Entry(kind="stop_test", metadata={"n": n}))
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("LOCK TABLE audit_logs IN ACCESS EXCLUSIVE MODE")  # the timer's write waits here

        async def timer_is_writing() -> bool:  # its statement waits for the table lock
            return await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") == 1

        buffer.start()
        await eventually(timer_is_writing, what="the timer's flush to be writing its batch")
        stopping = asyncio.get_running_loop().create_task(buffer.stop())
        await asyncio.sleep(0.2)
        assert not stopping.done()  # it waits for the batch in flight
        await lock.rollback()
        await asyncio.wait_for(stopping, 10)
        ns = await watcher.fetch("SELECT metadata->>'n' AS n FROM audit_logs WHERE kind = 'stop_test'")
        assert sorted(int(r["n"]) for r in ns) == list(range(7))
    finally:
        await blocker.close()
        await watcher.close()
        await pool.close()


async def test_flushes_back_off_while_the_database_is_away():
    """A database that refuses connections: the timer retries with growing waits, one line each and a
    traceback only for the first, not ten times a second; the rows stay in the buffer for when it is back."""
    import asyncpg
    from structlog.testing import capture_logs

    from shared.model.audit import AuditBuffer, Entry

    pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/none", min_size=0, max_size=1)
    try:
        buffer = AuditBuffer(pool, flush_every=0.05)
        buffer.add(Entry(kind="pull_repo"))
        with capture_logs() as lines:
            buffer.start()
            await asyncio.sleep(2)
            assert buffer._task is not None
            buffer._task.cancel()
        failures = [line for line in lines if "usage log flush failed" in line["event"]]
        # 0.05, 0.1, 0.2, 0.4, 0.8 s apart: 5 in 2 s; 40 without backing off
        assert 3 <= len(failures) <= 6, failures
        assert [line["retry_in_s"] for line in failures] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2][:len(failures)]
        assert failures[0]["log_level"] == "error" and failures[0].get("exc_info")
        assert all(line["log_level"] == "warning" and "ConnectionRefusedError" in line["error"] for line in failures[1:])
        assert len(buffer._rows) == 1
    finally:
        await pool.close()


async def test_while_the_database_is_away_the_newest_rows_are_held_up_to_the_bound():
    """Memory stays bounded while the database is away: past MAX_HELD_ROWS the oldest rows go, the
    newest stay, and each drop says so."""
    import asyncpg
    from structlog.testing import capture_logs

    from shared.model.audit import MAX_HELD_ROWS, AuditBuffer, Entry

    pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/none", min_size=0, max_size=1)
    try:
        buffer = AuditBuffer(pool)  # never started: nothing is written, everything is held
        with capture_logs() as lines:
            for n in range(MAX_HELD_ROWS + 5):
                buffer.add(Entry(kind="pull_repo", metadata={"n": n}))
        assert len(buffer._rows) == MAX_HELD_ROWS
        assert buffer._rows[0].metadata == {"n": 5} and buffer._rows[-1].metadata == {"n": MAX_HELD_ROWS + 4}
        dropped = [line for line in lines if line["event"] == "usage log rows dropped; database unreachable"]
        assert len(dropped) == 5 and all(line["dropped"] == 1 for line in dropped)
    finally:
        await pool.close()


async def test_user_logs_leave_out_repositories_the_caller_can_no_longer_read(world):
    """A user's own past actions on a repository they may no longer read (permission revoked) are as absent
    from their logs, counts and exports as those on a repository since deleted: nothing tells them the
    repository still exists. Entries naming no repository, and those on repositories still readable, stay."""
    start = await server_now(world)
    revoked, deleted = await world.fresh_repo(), await world.fresh_repo()
    for name in (revoked, deleted):
        await world.conn.execute("INSERT INTO repository_permissions (repository_id, user_id, role) "
                                 "SELECT id, $2, 'write' FROM repositories WHERE full_name = $1", name, world.ids["tom"])
    tom = await world.as_actor("tom", f"repository:{revoked}:pull,push", f"repository:{deleted}:pull,push",
                               "repository:acme/public:pull")
    await push_image(tom, revoked, "v1")
    await push_image(tom, deleted, "v1")
    async with tom.http.get(tom.v2("acme/public/manifests/v1")) as r:
        assert r.status == 200
    await eventually(lambda: world.conn.fetchval(
        "SELECT count(*) = 3 FROM audit_logs WHERE performer = 'tom' AND kind IN ('push_repo', 'pull_repo') AND datetime > $1",
        start), what="tom's registry logs to land")
    end = await server_now(world) + dt.timedelta(seconds=1)
    window = {"starttime": stamp(start), "endtime": stamp(end)}
    before = await logs(world, "user/logs", "tom", **window)
    assert {e["repository"] for e in before["logs"] if e["repository"]} == {revoked, deleted, "acme/public"}

    await world.conn.execute("DELETE FROM repository_permissions WHERE user_id = $1", world.ids["tom"])
    async with world.reg.http.delete(world.api(f"repository/{deleted}"), headers=world.api_headers("alice")) as r:
        assert r.status == 204

    after = await logs(world, "user/logs", "tom", **window)
    assert {e["repository"] for e in after["logs"] if e["repository"]} == {"acme/public"}
    assert not any(revoked in json.dumps(e) or deleted in json.dumps(e) for e in after["logs"])
    assert {"pull_repo", "login_success"} <= {e["kind"] for e in after["logs"]}  # the rest stays
    counts = await logs(world, "user/aggregatelogs", "tom", **window)
    assert {c["kind"]: c["count"] for c in counts["aggregated"]}.get("push_repo") is None
    assert {c["kind"]: c["count"] for c in counts["aggregated"]}["pull_repo"] == 1

    runner, url, received = await _callback_server()
    try:
        async with world.reg.http.post(world.api("user/exportlogs"), params=window, json={"callback_url": url},
                                       headers=world.api_headers("tom")) as r:
            assert r.status == 202
        await eventually(lambda: asyncio.sleep(0, received), what="the callback to be called")
    finally:
        await runner.cleanup()
    async with world.reg.http.get(received[0]["url"], headers=world.api_headers("tom")) as r:
        assert r.status == 200
        exported = json.loads(await r.read())
    listed = (await logs(world, "user/logs", "tom", **window))["logs"]  # now with the export's own entry
    assert any(e["kind"] == "export_logs" for e in listed)
    assert [json.dumps(e, sort_keys=True) for e in exported["logs"]] == [json.dumps(e, sort_keys=True) for e in listed]
    # The organisation's logs, read by its admin, still show both (scoped logs need admin, not the user filter).
    org = await logs(world, "organization/acme/logs", "alice", **window)
    assert {revoked, deleted} <= {e["repository"] for e in org["logs"]}
