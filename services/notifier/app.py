"""The notifier: turns domain events into webhook, Slack and e-mail notifications.

It holds one durable JetStream consumer, `notifier`, on `<prefix>.events.*.*` (manifest, tag, quota
and notification events; the busy blob.<verb>.<location> subjects have one token more and never reach
it), shared by every notifier of every region: run one anywhere, or several for availability.

For each event it finds the enabled notifications that want it (the repository's own and its
organisation's, filtered by tag globs), and delivers to each: up to MERIDIAN_NOTIFICATION_ATTEMPTS
attempts with a doubling back-off from MERIDIAN_NOTIFICATION_RETRY_SEC, each bounded by
NOTIFICATION_SEND_TIMEOUT, every attempt recorded in the notification's delivery history. An event
that fails every attempt counts one failure; MERIDIAN_NOTIFICATION_MAX_FAILURES events in a row
disable the notification, with the reason shown (Quay: 3, silently). A success clears the count.

In read-only mode it writes nothing: events wait (NAKed) until the registry is writable again.

At least once, with an id: the event's message id travels as X-Meridian-Event-Id (and `event_id` in
the body) so receivers can drop a repeat; a redelivered event skips the notifications it already
reached. The message is acked only when every notification had its attempts; if the notifier dies
meanwhile JetStream redelivers it (ack wait, kept alive while it works).

Every MERIDIAN_NOTIFICATION_EXPIRY_INTERVAL_SEC one notifier (a KV lock) looks for tags that expire
within a repo_image_expiry notification's days and queues one announcement per notification and
repository (notification.requested), each tag once.
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import nats
import structlog
from aiohttp import web

from shared import notifications as kinds
from shared.bus import Bus
from shared.callbacks import guarded_session, url_problem
from shared.config import Config
from shared.db import close_pool, create_pool
from shared.failures import dependency_down
from shared.heartbeats import Heartbeat
from shared.locks import KVLocks
from shared.logging import REQUEST_ID_HEADER, get_logger
from shared.mail import send_mail
from shared.messages import SYSTEM, ManifestPushed, NotificationRequested, QuotaCrossed, TagDeleted
from shared.metrics import BUS_CONSUME_ERRORS, BUS_CONSUMED, NOTIFICATION_DELIVERIES, NOTIFIER_BACKLOG, observe_pool, render
from shared.model import notifications
from shared.outbox import OutboxRelay
from shared.registry import Registry

log = get_logger("notifier")
USER_AGENT = "Meridian-Notifier/1"


class Attempt(msgspec.Struct):
    ok: bool
    status_code: int | None = None
    error: str | None = None
    final: bool = False  # no point retrying (the URL is refused, the method cannot work here)


class Notifier:
    def __init__(self, config: Config, *, config_dir: Path | None = None) -> None:
        self.config = config
        self.bus = Bus(config.nats_url, config.meridian_bus_prefix, name=f"notifier-{config.meridian_region}")
        self.heartbeat = Heartbeat(self.bus, "notifier", config.meridian_region, config.meridian_heartbeat_interval_sec)
        self._pool: asyncpg.Pool | None = None
        self._registry: Registry | None = None
        self.relay: OutboxRelay | None = None
        self._locks: KVLocks | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []
        self._active = 0
        self._room = asyncio.Event()
        self._room.set()
        self._stopping = asyncio.Event()
        self.expiry_scans = 0  # scans this notifier completed (tests wait on it)

    # What start() opens

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "start() first"
        return self._pool

    @property
    def registry(self) -> Registry:
        assert self._registry is not None, "start() first"
        return self._registry

    @property
    def locks(self) -> KVLocks:
        assert self._locks is not None, "start() first"
        return self._locks

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None, "start() first"
        return self._http

    @property
    def js(self) -> Any:
        return self.bus.js

    # Life cycle

    async def start(self) -> None:
        self._pool = await create_pool(self.config.db_uri, 2 + self.config.meridian_notifier_concurrency)
        await self.bus.connect()
        self.relay = OutboxRelay(self._pool, self.bus, relay_after=self.config.meridian_outbox_relay_after_sec)
        self._registry = Registry(self._pool, self.bus.subjects, self.config.meridian_region, self.relay)
        self._locks = KVLocks(self.js, self.bus.subjects.locks_bucket, self.config.meridian_gc_lock_ttl_sec)
        await self._locks.open()
        self._http = guarded_session(self.config.meridian_callback_allowed_hosts, self.config.notification_send_timeout,
                                    headers={"User-Agent": USER_AGENT})
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self._run()), loop.create_task(self._expiry_forever()),
                       loop.create_task(self._watch_backlog())]
        await self.heartbeat.start()
        log.info("notifier ready", consumer=self.bus.subjects.notifier_consumer)

    async def stop(self) -> None:
        """Stop fetching; deliveries under way are abandoned unacknowledged, so JetStream redelivers
        their events (and notifications already reached are skipped then)."""
        self._stopping.set()
        await self.heartbeat.stop()
        tasks = self._loops + list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if self._http is not None:
            await self._http.close()
        if self.relay is not None:
            await self.relay.stop()
        await self.bus.close()
        if self._pool is not None:
            await close_pool(self._pool)

    # Consuming

    async def _subscribe(self):
        subjects = self.bus.subjects
        try:
            await self.js.add_consumer(subjects.events_stream, kinds.notifier_consumer_config(subjects, kinds.NOTIFIER_ACK_WAIT_S))
        except nats.js.errors.BadRequestError as exc:  # exists with another config: use it as it is
            log.warning("consumer exists with another config; using it as it is", error=str(exc))
        return await self.js.pull_subscribe_bind(durable=subjects.notifier_consumer, stream=subjects.events_stream)

    async def _run(self) -> None:
        structlog.contextvars.bind_contextvars(service="notifier")
        subscription = None
        limit = self.config.meridian_notifier_concurrency
        while not self._stopping.is_set():
            try:
                if subscription is None:
                    subscription = await self._subscribe()
                await self._room.wait()
                messages = await subscription.fetch(max(limit - self._active, 1), timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notifier fetch failed", error=f"{type(exc).__name__}: {exc}")
                subscription = None
                await asyncio.sleep(1)
                continue
            for message in messages:
                self._active += 1
                if self._active >= limit:
                    self._room.clear()
                task = asyncio.get_running_loop().create_task(self._handle(message))
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._active -= 1
        self._room.set()

    async def _watch_backlog(self) -> None:
        while True:
            try:
                info = await self.js.consumer_info(self.bus.subjects.events_stream, self.bus.subjects.notifier_consumer)
                NOTIFIER_BACKLOG.set(info.num_pending + info.num_ack_pending)
            except asyncio.CancelledError:
                raise
            except Exception:
                pass
            await asyncio.sleep(5)

    async def _keep_alive(self, message) -> None:
        while True:
            await asyncio.sleep(kinds.NOTIFIER_ACK_WAIT_S / 3)
            await message.in_progress()

    async def _handle(self, message) -> None:
        headers = message.headers or {}
        structlog.contextvars.bind_contextvars(service="notifier", request_id=headers.get(REQUEST_ID_HEADER))
        BUS_CONSUMED.labels(self.bus.subjects.notifier_consumer).inc()
        event_id = headers.get("Nats-Msg-Id") or f"seq-{message.metadata.sequence.stream}"
        if self.config.registry_state == "readonly":
            await message.nak(delay=10)  # nothing is written in read-only mode (history, counts): events wait
            return
        alive = asyncio.get_running_loop().create_task(self._keep_alive(message))
        try:
            await self.route(message.subject, message.data, event_id)
            await message.ack()
        except asyncio.CancelledError:
            raise
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("unreadable event", subject=message.subject, error=str(exc))
            await message.term()
        except Exception as exc:  # the database is away, most likely: the event waits
            BUS_CONSUME_ERRORS.labels(self.bus.subjects.notifier_consumer).inc()
            log.warning("event not handled; redelivered later", subject=message.subject,
                        error=f"{type(exc).__name__}: {exc}", dependency=dependency_down(exc))
            await message.nak(delay=5)
        finally:
            alive.cancel()

    async def route(self, subject: str, data: bytes, event_id: str) -> None:
        """Find who wants this event and deliver to each (concurrently)."""
        kind = ".".join(subject.rsplit(".", 2)[-2:])
        subjects = self.bus.subjects
        config = self.config
        if subject == subjects.manifest_pushed:
            pushed = msgspec.json.decode(data, type=ManifestPushed)
            if not pushed.tags:
                return  # by digest: a child of an index, a referrer; the push that tags it notifies
            await self._fan_out("repo_push", kinds.push_data(config, pushed), event_id, namespace=pushed.namespace or
                                pushed.repository.split("/", 1)[0], repository=pushed.repository)
        elif subject == subjects.tag_deleted:
            deleted = msgspec.json.decode(data, type=TagDeleted)
            await self._fan_out("repo_tag_deleted", kinds.tag_deleted_data(config, deleted), event_id,
                                namespace=deleted.repository.split("/", 1)[0], repository=deleted.repository)
        elif subject in (subjects.quota_warning, subjects.quota_rejected):
            crossed = msgspec.json.decode(data, type=QuotaCrossed)
            event = "quota_warning" if crossed.kind == "warning" else "quota_error"
            await self._fan_out(event, kinds.quota_data(config, crossed), event_id, namespace=crossed.namespace,
                                repository=crossed.repository)
        elif subject == subjects.notification_requested:
            requested = msgspec.json.decode(data, type=NotificationRequested)
            target = await notifications.by_uuid(self.pool, requested.notification)
            if target is None or (target["disabled_at"] is not None and not requested.test):
                return  # deleted meanwhile, or disabled since the announcement was queued
            await self.deliver(target, requested.event, requested.event_data, event_id, test=requested.test)
        else:
            log.debug("event not notified", kind=kind)

    async def _fan_out(self, event: str, data: dict, event_id: str, *, namespace: str, repository: str | None) -> None:
        targets = [t for t in await notifications.matching(self.pool, event, namespace=namespace, repository=repository)
                   if kinds.matches(event, t["event_config"], data)]
        if targets:
            await asyncio.gather(*(self.deliver(t, event, data, event_id) for t in targets))

    # Delivering

    async def deliver(self, target: dict, event: str, data: dict, event_id: str, *, test: bool = False) -> bool:
        """Every attempt recorded; the failure count follows the outcome (tests change nothing)."""
        if not test and await notifications.delivered(self.pool, target["id"], event_id):
            return True
        attempts = 1 if test else self.config.meridian_notification_attempts
        last = Attempt(ok=False, error="not attempted")
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            last = await self.send(target, event, data, event_id, attempt)
            duration = int((time.perf_counter() - started) * 1000)
            NOTIFICATION_DELIVERIES.labels(target["method"], "ok" if last.ok else "failed").inc()
            await notifications.record_attempt(
                self.pool, target["id"], event_id=event_id, event=event, attempt=attempt, ok=last.ok,
                status_code=last.status_code, duration_ms=duration, error=last.error, test=test,
                keep=self.config.meridian_notification_history)
            if last.ok:
                if not test:
                    await notifications.succeeded(self.pool, target["id"])
                log.info("notification delivered", notification=str(target["uuid"]), kind=event, event_id=event_id,
                         attempt=attempt, test=test)
                return True
            log.warning("notification attempt failed", notification=str(target["uuid"]), kind=event, event_id=event_id,
                        attempt=attempt, error=last.error, status=last.status_code)
            if last.final or attempt == attempts:
                break
            await asyncio.sleep(self.config.meridian_notification_retry_sec * 2 ** (attempt - 1))
        if not test and await notifications.failed(self.pool, target["id"], last.error or "failed",
                                                   self.config.meridian_notification_max_failures):
            log.warning("notification disabled", notification=str(target["uuid"]), error=last.error)
        return False

    async def send(self, target: dict, event: str, data: dict, event_id: str, attempt: int) -> Attempt:
        method, config = target["method"], target["config"]
        try:
            if method == "email":
                text = kinds.summary(event, data)
                await send_mail(self.config, config["email"], f"{self.config.registry_title_short}: {text}",
                                f"{text}\n\n{json.dumps({**data, 'event_id': event_id}, indent=2)}\n")
                return Attempt(ok=True)
            if method == "slack":
                body, content_type = kinds.slack_body(event, data, self.config.registry_title_short), "application/json"
            elif method == "webhook":
                scope = target["repository"] or target["namespace"]
                base = f"{self.config.preferred_url_scheme}://{self.config.server_hostname}"
                source = f"{base}/repository/{scope}" if target["repository"] else f"{base}/organization/{scope}"
                body, content_type = kinds.webhook_body(config, event, event_id, data, source=source,
                                                        subject=data.get("repository") or data.get("namespace") or scope)
            else:
                return Attempt(ok=False, error=f"method {method!r} cannot be delivered", final=True)
            return await self._post(target, config, event, event_id, attempt, body, content_type)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return Attempt(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])

    async def _post(self, target: dict, config: dict, event: str, event_id: str, attempt: int, body: bytes,
                    content_type: str) -> Attempt:
        url = config["url"]
        problem = await url_problem(url, self.config.meridian_callback_allowed_hosts, field="config.url")
        if problem:
            return Attempt(ok=False, error=problem, final=True)
        headers = {**(config.get("headers") or {}), "Content-Type": content_type, "X-Meridian-Event": event,
                   kinds.EVENT_ID_HEADER: event_id, "X-Meridian-Notification": str(target["uuid"]),
                   "X-Meridian-Delivery-Attempt": str(attempt), kinds.SIGNATURE_HEADER: kinds.signature(target["secret"], body)}
        try:
            async with self.http.post(url, data=body, headers=headers, allow_redirects=False) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return Attempt(ok=True, status_code=response.status)
                return Attempt(ok=False, status_code=response.status, error=f"answered {response.status} {response.reason or ''}".strip())
        except TimeoutError:
            return Attempt(ok=False, error=f"no answer within {self.config.notification_send_timeout:g} s")
        except OSError as exc:  # refused, unreachable, or the resolver refused every address
            return Attempt(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])

    # Tags about to expire

    async def _expiry_forever(self) -> None:
        while True:
            try:
                await self.expiry_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("expiry scan failed; the next one retries", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.config.meridian_notification_expiry_interval_sec)

    async def expiry_once(self) -> int:
        """Queue repo_image_expiry announcements for tags expiring within each notification's days;
        returns how many were queued."""
        if self.config.registry_state == "readonly":
            return 0
        lock = await self.locks.acquire("notifier-expiry")
        if lock is None:
            return 0  # another notifier is at it
        try:
            groups: dict[tuple[int, str], dict] = {}
            for row in await notifications.expiring_tags(self.pool):
                group = groups.setdefault((row["notification_id"], row["repository"]), {
                    "uuid": str(row["uuid"]), "event_config": kinds_config(row["event_config"]), "tags": []})
                group["tags"].append((row["tag_id"], row["name"]))
            queued = 0
            for (notification_id, repository), group in groups.items():
                async with self.registry.change(SYSTEM) as change:
                    claimed = set(await notifications.mark_expiry_sent(change.conn, notification_id,
                                                                       [tag_id for tag_id, _ in group["tags"]]))
                    days = group["event_config"].get("days", 1)
                    names = sorted({name for tag_id, name in group["tags"] if tag_id in claimed})
                    data = kinds.expiry_data(self.config, repository, names, days)
                    if names and kinds.matches("repo_image_expiry", group["event_config"], data):
                        globs = kinds.tag_globs(group["event_config"])
                        if globs:
                            data["tags"] = [n for n in names if kinds.matches("repo_image_expiry", group["event_config"],
                                                                            {"tags": [n]})]
                        await change.emit(change.subjects.notification_requested, NotificationRequested(
                            notification=group["uuid"], event="repo_image_expiry", event_data=data,
                            region=change.region, at=change.at))
                        queued += 1
                lock.check()
            self.expiry_scans += 1
            return queued
        finally:
            await lock.release()


def kinds_config(value) -> dict:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


SERVICE = web.AppKey("notifier", Notifier)


async def metrics(request: web.Request) -> web.Response:
    observe_pool("notifier", request.app[SERVICE]._pool)
    body, content_type = render()
    return web.Response(body=body, headers={"Content-Type": content_type})


def create_app(notifier: Notifier) -> web.Application:
    """/metrics, with the notifier started and stopped with the app."""
    app = web.Application()
    app[SERVICE] = notifier

    async def lifecycle(app):
        await notifier.start()
        yield
        await notifier.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/metrics", metrics)
    return app
