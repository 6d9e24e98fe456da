"""Notifications end to end with real NATS, PostgreSQL, the notifier service, an HTTP receiver (an
aiohttp server in the test) and an SMTP server (aiosmtpd): pushes send signed webhooks carrying the
digest and the pusher; failing receivers are retried, then the notification disables itself and
says why; reset and test work; SSRF targets are refused when the notification is made and again at
delivery; tag deletions, quota crossings and tags about to expire are announced; Slack, e-mail,
CloudEvents and templates have their formats; notifiers share one consumer."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os

import pytest_asyncio
from aiohttp import web

from services.notifier.app import Notifier
from shared.config import parse_config
from shared.embedded import free_port
from tests.helpers import eventually, push_image

FAST = {"MERIDIAN_NOTIFICATION_RETRY_SEC": 0.1, "MERIDIAN_NOTIFICATION_EXPIRY_INTERVAL_SEC": 3600,
        "NOTIFICATION_SEND_TIMEOUT": 5}


class Receiver:
    """An HTTP server that records what it is sent and answers `status` (a list: one per request,
    the last repeated)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses = [200]
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append({"headers": dict(request.headers), "body": body, "path": request.path})
        status = self.statuses[min(len(self.requests), len(self.statuses)) - 1]
        return web.Response(status=status, text="ok" if status < 400 else "no")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def json(self, index: int = -1) -> dict:
        return json.loads(self.requests[index]["body"])

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        await eventually(lambda: asyncio.sleep(0, len(self.requests) >= count), timeout=timeout,
                         what=f"{count} request(s) at the receiver (got {len(self.requests)})")


@pytest_asyncio.fixture
async def receiver():
    found = Receiver()
    await found.start()
    yield found
    if found.runner is not None:
        await found.runner.cleanup()


@pytest_asyncio.fixture
async def make_notifier():
    started: list[Notifier] = []

    async def make(doc: dict, **overrides) -> Notifier:
        notifier = Notifier(parse_config({**doc, **FAST, **overrides}))
        await notifier.start()
        started.append(notifier)
        return notifier

    yield make
    for notifier in started:
        await notifier.stop()


async def create(http, url: str, body: dict, headers: dict | None = None) -> dict:
    async with http.post(url, json=body, headers=headers or {}) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def deliveries(http, url: str, headers: dict | None = None) -> dict:
    async with http.get(url, headers=headers or {}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def drained(notifier: Notifier) -> bool:
    """Every event so far handled (acked): what was not sent by now will not be.

    A push returns before its event leaves the outbox for the stream, so an idle consumer alone
    proves nothing: the outbox must be empty too."""
    async with notifier.pool.acquire() as conn:
        if await conn.fetchval("SELECT count(*) FROM outbox"):
            return False
    info = await notifier.js.consumer_info(notifier.bus.subjects.events_stream, notifier.bus.subjects.notifier_consumer)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_a_push_sends_a_signed_webhook_with_digest_and_pusher(make_world, make_notifier, receiver):
    world = await make_world()
    alice = world.api_headers("alice")
    repo_api = world.api("repository/acme/private/notification/")
    made = await create(world.reg.http, repo_api, {"event": "repo_push", "method": "webhook", "config": {"url": receiver.url},
                                                   "title": "CI"}, alice)
    assert made["event"] == "repo_push" and made["enabled"] and made["number_of_failures"] == 0
    assert len(made["secret"]) == 64 and made["signature_header"] == "X-Meridian-Signature-256"
    filtered = await create(world.reg.http, repo_api, {"event": "repo_push", "method": "webhook",
                                                       "config": {"url": receiver.url + "/releases"},
                                                       "eventConfig": {"tags": ["release-*"]}}, alice)
    await make_notifier(world.reg.doc)
    walt = await world.as_actor("walt", "repository:acme/private:pull,push")
    digest, manifest = await push_image(walt, "acme/private", "v2")
    await receiver.wait_for(1)
    request = receiver.requests[0]
    body = json.loads(request["body"])
    assert request["path"] == "/hook"
    assert body["repository"] == "acme/private" and body["namespace"] == "acme" and body["name"] == "private"
    assert body["updated_tags"] == ["v2"] and body["digest"] == digest
    assert body["pusher"] == {"kind": "user", "name": "walt"}
    assert body["docker_url"] == f"{world.reg.host}/acme/private"
    assert body["homepage"].startswith(f"http://{world.reg.host}/repository/acme/private")
    assert body["size"] > len(manifest) and body["region"] == "default" and body["media_type"].endswith("manifest.v1+json")
    headers = request["headers"]
    assert headers["X-Meridian-Event"] == "repo_push" and headers["X-Meridian-Event-Id"] == body["event_id"]
    expected = "sha256=" + hmac.new(made["secret"].encode(), request["body"], hashlib.sha256).hexdigest()
    assert headers["X-Meridian-Signature-256"] == expected
    assert headers["Content-Type"] == "application/json"
    # The history shows it; the release filter did not fire for v2, and does for release-1.
    history = await deliveries(world.reg.http, f"{repo_api}{made['uuid']}/deliveries", alice)
    assert [(d["event"], d["attempt"], d["ok"], d["status_code"], d["event_id"]) for d in history["deliveries"]] == \
        [("repo_push", 1, True, 200, body["event_id"])]
    await push_image(walt, "acme/private", "release-1")
    await receiver.wait_for(3)
    paths = sorted(r["path"] for r in receiver.requests)
    assert paths == ["/hook", "/hook", "/hook/releases"]
    assert [json.loads(r["body"])["updated_tags"] for r in receiver.requests if r["path"] == "/hook/releases"] == [["release-1"]]
    filtered_history = await deliveries(world.reg.http, f"{repo_api}{filtered['uuid']}/deliveries", alice)
    assert len(filtered_history["deliveries"]) == 1


async def test_a_failing_receiver_is_retried_then_the_notification_is_disabled_and_says_why(make_registry, make_notifier,
                                                                                            receiver):
    reg = await make_registry(MERIDIAN_CALLBACK_ALLOWED_HOSTS=["127.0.0.1"])
    await push_image(reg, "acme/app", "seed")
    api = f"{reg.url}/api/v1/repository/acme/app/notification/"
    made = await create(reg.http, api, {"event": "repo_push", "method": "webhook", "config": {"url": receiver.url}})
    notifier = await make_notifier(reg.doc, MERIDIAN_NOTIFICATION_ATTEMPTS=3, MERIDIAN_NOTIFICATION_MAX_FAILURES=2)
    # First a receiver that fails once: retried, delivered, no failure counted.
    receiver.statuses = [503, 200]
    await push_image(reg, "acme/app", "one")
    await receiver.wait_for(2)
    await eventually(lambda: drained(notifier), what="the event to be handled")
    history = (await deliveries(reg.http, f"{api}{made['uuid']}/deliveries"))["deliveries"]
    assert [(d["attempt"], d["ok"], d["status_code"]) for d in reversed(history)] == [(1, False, 503), (2, True, 200)]
    assert "answered 503" in history[1]["error"]
    # Then a receiver that always fails: every attempt per event, then disabled after two events.
    receiver.requests.clear()
    receiver.statuses = [500]
    await push_image(reg, "acme/app", "two")
    await receiver.wait_for(3)
    await eventually(lambda: drained(notifier), what="the second event to be handled")
    async with reg.http.get(f"{api}{made['uuid']}") as r:
        view = await r.json()
    assert view["number_of_failures"] == 1 and view["enabled"]
    await push_image(reg, "acme/app", "three")
    await receiver.wait_for(6)

    async def disabled():
        async with reg.http.get(f"{api}{made['uuid']}") as r:
            found = await r.json()
        return found if not found["enabled"] else None

    view = await eventually(disabled, what="the notification to disable itself")
    assert view["number_of_failures"] == 2
    assert "disabled after 2 events in a row could not be delivered" in view["disabled_reason"]
    assert "answered 500" in view["disabled_reason"]
    # Disabled: a further push sends nothing.
    await push_image(reg, "acme/app", "four")
    await eventually(lambda: drained(notifier), what="the fourth event to be handled")
    assert len(receiver.requests) == 6
    # Reset (Quay: POST on the notification) enables it again.
    receiver.statuses = [200]
    async with reg.http.post(f"{api}{made['uuid']}") as r:
        assert r.status == 204
    async with reg.http.get(f"{api}{made['uuid']}") as r:
        view = await r.json()
    assert view["enabled"] and view["number_of_failures"] == 0 and view["disabled_reason"] is None
    await push_image(reg, "acme/app", "five")
    await receiver.wait_for(7)
    assert receiver.json()["updated_tags"] == ["five"]


async def test_test_sends_a_sample_even_while_disabled_and_changes_nothing(make_registry, make_notifier, receiver, db):
    reg = await make_registry(MERIDIAN_CALLBACK_ALLOWED_HOSTS=["127.0.0.1"])
    await push_image(reg, "acme/app", "seed")
    api = f"{reg.url}/api/v1/repository/acme/app/notification/"
    made = await create(reg.http, api, {"event": "repo_push", "method": "webhook", "config": {"url": receiver.url}})
    await db.execute("UPDATE notifications SET number_of_failures = 3, disabled_at = now(), disabled_reason = 'broken'")
    await make_notifier(reg.doc)
    async with reg.http.post(f"{api}{made['uuid']}/test") as r:
        assert r.status == 200 and await r.json() == {}
    await receiver.wait_for(1)
    sample = receiver.json()
    assert sample["repository"] == "acme/app" and sample["updated_tags"] == ["latest"] and "digest" in sample
    history = (await deliveries(reg.http, f"{api}{made['uuid']}/deliveries"))["deliveries"]
    assert history[0]["test"] and history[0]["ok"]
    async with reg.http.get(f"{api}{made['uuid']}") as r:
        view = await r.json()
    assert not view["enabled"] and view["number_of_failures"] == 3  # a test is not an event
    async with reg.http.post(f"{api}00000000-0000-0000-0000-000000000000/test") as r:
        assert r.status == 404
    async with reg.http.post(f"{api}not-a-uuid/test") as r:
        assert r.status == 404


async def test_ssrf_targets_are_refused_when_made_and_at_delivery(make_registry, make_notifier, receiver, db):
    reg = await make_registry()  # no allow-list: loopback and private addresses are refused
    await push_image(reg, "acme/app", "seed")
    api = f"{reg.url}/api/v1/repository/acme/app/notification/"
    for url, reason in ((receiver.url, "127.0.0.1"), ("http://10.1.2.3/hook", "10.1.2.3"), ("http://localhost/x", "loopback"),
                        ("http://[::1]:8080/x", "::1"), ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
                        ("http://[::ffff:127.0.0.1]/x", "127.0.0.1"), ("http://100.64.0.1/x", "100.64.0.1"),
                        ("file:///etc/passwd", "http"), ("gopher://example.com/", "http")):
        async with reg.http.post(api, json={"event": "repo_push", "method": "webhook", "config": {"url": url}}) as r:
            body = await r.json()
        assert r.status == 400, (url, body)
        assert reason in body["error_message"], (url, body)
    async with reg.http.post(api, json={"event": "repo_push", "method": "slack", "config": {"url": "http://192.168.1.1/"}}) as r:
        assert r.status == 400
    assert await db.fetchval("SELECT count(*) FROM notifications") == 0
    # Allowed when made (a gateway with the allow-list), refused by a notifier without it: checked again at delivery.
    allowing = await make_registry(MERIDIAN_CALLBACK_ALLOWED_HOSTS=["127.0.0.1"])
    api = f"{allowing.url}/api/v1/repository/acme/app/notification/"
    made = await create(allowing.http, api, {"event": "repo_push", "method": "webhook", "config": {"url": receiver.url}})
    notifier = await make_notifier(allowing.doc, MERIDIAN_CALLBACK_ALLOWED_HOSTS=[])
    await push_image(allowing, "acme/app", "refused")

    async def recorded():
        return (await deliveries(allowing.http, f"{api}{made['uuid']}/deliveries"))["deliveries"]

    # The push event reaches the stream through the outbox after the push returns: wait for its
    # delivery record, then for the consumer to be idle, so a retry would have shown up.
    await eventually(recorded, what="the refused delivery to be recorded")
    await eventually(lambda: drained(notifier), what="the event to be handled")
    history = await recorded()
    assert len(history) == 1 and not history[0]["ok"] and "127.0.0.1" in history[0]["error"]  # no retry of a refused URL
    assert receiver.requests == []


async def test_bad_notifications_are_refused_with_the_reason(make_registry):
    reg = await make_registry(MERIDIAN_CALLBACK_ALLOWED_HOSTS=["127.0.0.1"])
    await push_image(reg, "acme/app", "seed")
    api = f"{reg.url}/api/v1/repository/acme/app/notification/"
    hook = {"url": "http://127.0.0.1:9/hook"}
    cases = [
        ({"event": "repo_pushed", "method": "webhook", "config": hook}, "field 'event' must be one of"),
        ({"event": "repo_push", "method": "flowdock", "config": {"flow_api_token": "x"}}, "Flowdock was shut down"),
        ({"event": "repo_push", "method": "hipchat", "config": {"room_id": "1"}}, "HipChat was shut down"),
        ({"event": "repo_push", "method": "sms", "config": hook}, "method must be one of webhook, slack, email"),
        ({"event": "repo_push", "method": "webhook", "config": {}}, "config.url"),
        ({"event": "repo_push", "method": "webhook", "config": {**hook, "template": "{not json"}}, "config.template must be"),
        ({"event": "repo_push", "method": "webhook", "config": {**hook, "headers": {"Host": "x"}}}, "cannot be set"),
        ({"event": "repo_push", "method": "webhook", "config": {**hook, "headers": {"X-A": "a\r\nB: b"}}}, "one line"),
        ({"event": "repo_push", "method": "webhook", "config": {**hook, "format": "xml"}}, "config.format"),
        ({"event": "repo_push", "method": "email", "config": {"email": "ops@example.com"}}, "no MAIL_SERVER"),
        ({"event": "repo_push", "method": "email", "config": {"email": "not an address"}}, "config.email"),
        ({"event": "repo_image_expiry", "method": "webhook", "config": hook}, "eventConfig.days"),
        ({"event": "repo_image_expiry", "method": "webhook", "config": hook, "eventConfig": {"days": 0}}, "eventConfig.days"),
        ({"event": "repo_push", "method": "webhook", "config": hook, "eventConfig": {"tags": [1]}}, "eventConfig.tags"),
        ({"event": "repo_push", "method": "webhook", "config": "http://x"}, "config must be an object"),
        ({"event": {"x": 1}, "method": "webhook", "config": hook}, "field 'event' must be one of"),
        ({"event": "repo_push", "method": "webhook", "config": hook, "title": "a\x00b"}, "NUL"),
        ({"event": "repo_push", "method": "webhook", "config": {"url": "http://127.0.0.1:99999/x"}}, "not a valid URL"),
        ({"event": "repo_push", "method": "webhook", "config": {"url": "http://no-such-host.invalid/x"}}, "does not resolve"),
    ]
    for body, reason in cases:
        async with reg.http.post(api, json=body) as r:
            answer = await r.json()
        assert r.status == 400 and reason in answer["error_message"], (body, answer)
    async with reg.http.get(api) as r:
        assert (await r.json())["notifications"] == []
    # Kept as types for later: accepted.
    await create(reg.http, api, {"event": "vulnerability_found", "method": "webhook", "config": hook,
                                 "eventConfig": {"level": 3}})


async def test_organization_notifications_cover_every_repository_and_tag_deletions_and_quotas(make_registry, make_notifier,
                                                                                            receiver):
    reg = await make_registry(MERIDIAN_CALLBACK_ALLOWED_HOSTS=["127.0.0.1"], FEATURE_QUOTA_MANAGEMENT=True)
    await push_image(reg, "acme/one", "seed")
    org_api = f"{reg.url}/api/v1/organization/acme/notifications"
    await create(reg.http, org_api, {"event": "repo_push", "method": "webhook",
                                     "config": {"url": receiver.url + "/push", "format": "cloudevents",
                                                "headers": {"Authorization": "Bearer receiver-token"}}})
    await create(reg.http, org_api, {"event": "repo_tag_deleted", "method": "webhook", "config": {
        "url": receiver.url + "/deleted", "template": json.dumps({"text": "${tag} left ${repository} (${reason})",
                                                                  "who": "${actor.name}", "nothing": "${missing}"})}})
    await create(reg.http, org_api, {"event": "quota_warning", "method": "slack", "config": {"url": receiver.url + "/slack"}})
    async with reg.http.get(org_api) as r:
        assert len((await r.json())["notifications"]) == 3
    notifier = await make_notifier(reg.doc)
    digest, _ = await push_image(reg, "acme/two", "v1")  # a repository made after the notification
    await receiver.wait_for(1)
    cloud = receiver.requests[0]
    assert cloud["headers"]["Content-Type"] == "application/cloudevents+json"
    assert cloud["headers"]["Authorization"] == "Bearer receiver-token"
    event = json.loads(cloud["body"])
    assert event["specversion"] == "1.0" and event["type"] == "io.meridian.repo_push" and event["subject"] == "acme/two"
    assert event["id"] == cloud["headers"]["X-Meridian-Event-Id"] and event["data"]["digest"] == digest
    assert event["source"].endswith("/organization/acme")
    async with reg.http.delete(f"{reg.url}/api/v1/repository/acme/two/tag/v1") as r:
        assert r.status == 204
    await receiver.wait_for(2)
    assert receiver.requests[1]["path"] == "/hook/deleted"
    assert receiver.json(1) == {"text": "v1 left acme/two (deleted)", "who": "(none)", "nothing": "(none)"}
    # A quota warning, in Slack's format.
    async with reg.http.post(f"{reg.url}/api/v1/organization/acme/quota", json={"limit_bytes": 8000}) as r:
        assert r.status == 201
    async with reg.http.get(f"{reg.url}/api/v1/organization/acme/quota") as r:
        quota_id = (await r.json())[0]["id"]
    async with reg.http.post(f"{reg.url}/api/v1/organization/acme/quota/{quota_id}/limit",
                             json={"type": "Warning", "threshold_percent": 50}) as r:
        assert r.status == 201
    await push_image(reg, "acme/one", "bigger", layer_bytes=[os.urandom(4000)])
    await eventually(lambda: asyncio.sleep(0, [r for r in receiver.requests if r["path"] == "/hook/slack"]),
                     what="the Slack message")
    slack = json.loads(next(r for r in receiver.requests if r["path"] == "/hook/slack")["body"])
    assert "Namespace acme uses" in slack["text"] and "50 % warning" in slack["text"]
    assert slack["attachments"][0]["color"] == "warning" and slack["attachments"][0]["mrkdwn_in"] == ["text"]
    await eventually(lambda: drained(notifier), what="every event to be handled")


async def test_the_expiry_event_fires_once_per_tag(make_registry, make_notifier, receiver):
    reg = await make_registry(MERIDIAN_CALLBACK_ALLOWED_HOSTS=["127.0.0.1"])
    await push_image(reg, "acme/app", "soon")
    await push_image(reg, "acme/app", "later")
    await push_image(reg, "acme/app", "never")
    api = f"{reg.url}/api/v1/repository/acme/app/notification/"
    await create(reg.http, api, {"event": "repo_image_expiry", "method": "webhook", "config": {"url": receiver.url},
                                 "eventConfig": {"days": 2}})
    import time
    for tag, seconds in (("soon", 3600), ("later", 10 * 86400)):
        async with reg.http.put(f"{reg.url}/api/v1/repository/acme/app/tag/{tag}",
                                json={"expiration": int(time.time()) + seconds}) as r:
            assert r.status == 201, await r.text()
    notifier = await make_notifier(reg.doc, MERIDIAN_NOTIFICATION_EXPIRY_INTERVAL_SEC=0.2)
    await receiver.wait_for(1)
    body = receiver.json()
    assert body["tags"] == ["soon"] and body["expiring_in"] == "2 days" and body["repository"] == "acme/app"
    assert receiver.requests[0]["headers"]["X-Meridian-Event"] == "repo_image_expiry"
    # Announced once: more scans find nothing new.
    scans = notifier.expiry_scans
    await eventually(lambda: asyncio.sleep(0, notifier.expiry_scans >= scans + 3), what="three more expiry scans")
    await eventually(lambda: drained(notifier), what="every announcement to be handled")
    assert len(receiver.requests) == 1


async def test_email_notifications_arrive(make_registry, make_notifier):
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
        mail = {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_USE_TLS": False, "MAIL_DEFAULT_SENDER": "registry@example.com"}
        reg = await make_registry(**mail)
        await push_image(reg, "acme/app", "seed")
        await create(reg.http, f"{reg.url}/api/v1/repository/acme/app/notification/",
                     {"event": "repo_push", "method": "email", "config": {"email": "ops@example.com"}})
        await make_notifier(reg.doc)
        digest, _ = await push_image(reg, "acme/app", "v9")
        await eventually(lambda: asyncio.sleep(0, messages), what="the e-mail")
    finally:
        controller.stop()
    import email

    recipients, raw = messages[0]
    message = email.message_from_string(raw)
    assert recipients == ["ops@example.com"] and message["From"] == "registry@example.com"
    assert "Repository acme/app has been pushed with tags v9" in message["Subject"]
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes) and digest in payload.decode()


async def test_notifiers_share_one_consumer_and_each_event_is_delivered_once(make_registry, make_notifier, receiver):
    reg = await make_registry(MERIDIAN_CALLBACK_ALLOWED_HOSTS=["127.0.0.1"])
    await push_image(reg, "acme/app", "seed")
    await create(reg.http, f"{reg.url}/api/v1/repository/acme/app/notification/",
                 {"event": "repo_push", "method": "webhook", "config": {"url": receiver.url}})
    first = await make_notifier(reg.doc)
    second = await make_notifier(reg.doc, MERIDIAN_REGION="elsewhere")
    tags = [f"t{index}" for index in range(8)]
    await asyncio.gather(*(push_image(reg, "acme/app", tag) for tag in tags))
    await receiver.wait_for(len(tags))
    await eventually(lambda: drained(first), what="every event to be handled")
    assert await drained(second)
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    assert sorted(b["updated_tags"][0] for b in bodies) == tags
    assert len({b["event_id"] for b in bodies}) == len(tags)


async def test_meridian_notifier_runs_alone_and_health_expects_it(make_registry, receiver, tmp_path):
    import signal
    import subprocess
    import sys

    import yaml

    reg = await make_registry(MERIDIAN_CALLBACK_ALLOWED_HOSTS=["127.0.0.1"], MERIDIAN_NOTIFIER_ENABLED=True,
                              MERIDIAN_HEARTBEAT_INTERVAL_SEC=1)

    async def notifier_up() -> bool | None:
        async with reg.http.get(f"{reg.url}/health/warning") as r:
            return (await r.json())["data"]["services"].get("service_default_notifier")

    assert await notifier_up() is False  # configured to run here, and not running
    await push_image(reg, "acme/app", "seed")
    await create(reg.http, f"{reg.url}/api/v1/repository/acme/app/notification/",
                 {"event": "repo_push", "method": "webhook", "config": {"url": receiver.url}})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**reg.doc, **FAST}))
    metrics_port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "notifier", "--config", str(config),
                                "--listen", f"127.0.0.1:{metrics_port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        await eventually(notifier_up, timeout=30, what="the notifier's heartbeat")
        await push_image(reg, "acme/app", "alone")
        await receiver.wait_for(1)
        assert receiver.json()["updated_tags"] == ["alone"]
        async with reg.http.get(f"http://127.0.0.1:{metrics_port}/metrics") as r:
            assert 'meridian_notification_deliveries_total{method="webhook",outcome="ok"} 1.0' in await r.text()
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
