"""Notifications: which events and methods exist, what each event's payload holds (Quay's
`event_data`, with what Quay leaves out: digest, media type, size, pusher, region, time, event id),
the payload formats (Quay's, a `${jsonpath}` template, CloudEvents 1.0, Slack) and the signature.

Used by the API (validation, test samples) and by services/notifier (delivery). The events come
from the bus (shared/contract.py: manifest.pushed, tag.deleted, quota.*, notification.requested).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

import jsonpath
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.config import Config
from shared.logging import get_logger
from shared.model.quotas import human_size

log = get_logger("notifications")


@dataclass(frozen=True)
class EventKind:
    title: str
    scopes: tuple[str, ...]  # "repository", "namespace" (every repository of an organisation)
    fires: bool = True  # False: accepted and kept for later (mirroring, scanning, builds)


EVENTS: dict[str, EventKind] = {
    "repo_push": EventKind("Push to Repository", ("repository", "namespace")),
    "repo_tag_deleted": EventKind("Tag deleted or expired", ("repository", "namespace")),
    "repo_image_expiry": EventKind("Image expiry trigger", ("repository", "namespace")),
    "quota_warning": EventKind("Quota warning", ("repository", "namespace")),
    "quota_error": EventKind("Quota exceeded", ("repository", "namespace")),
    "vulnerability_found": EventKind("Package Vulnerability Found", ("repository", "namespace"), fires=False),
    "repo_mirror_sync_started": EventKind("Repository mirror started", ("repository", "namespace"), fires=False),
    "repo_mirror_sync_success": EventKind("Repository mirror successful", ("repository", "namespace"), fires=False),
    "repo_mirror_sync_failed": EventKind("Repository mirror unsuccessful", ("repository", "namespace"), fires=False),
    "build_queued": EventKind("Dockerfile Build Queued", ("repository", "namespace"), fires=False),
    "build_start": EventKind("Dockerfile Build Started", ("repository", "namespace"), fires=False),
    "build_success": EventKind("Dockerfile Build Successfully Completed", ("repository", "namespace"), fires=False),
    "build_failure": EventKind("Dockerfile Build Failed", ("repository", "namespace"), fires=False),
    "build_cancelled": EventKind("Dockerfile Build Cancelled", ("repository", "namespace"), fires=False),
}
METHODS = {"webhook": "Webhook POST", "slack": "Slack", "email": "E-mail"}
GONE_METHODS = {
    "flowdock": "Flowdock was shut down in 2023; use a Webhook POST or Slack notification",
    "hipchat": "HipChat was shut down in 2019; use a Webhook POST or Slack notification",
    "quay_notification": "in-app notifications are not available in Meridian; use e-mail, Slack or a Webhook POST",
}
FORMATS = ("quay", "cloudevents")
SIGNATURE_HEADER = "X-Meridian-Signature-256"
EVENT_ID_HEADER = "X-Meridian-Event-Id"
# Headers a notification may not set: Meridian's own, and what HTTP itself decides.
RESERVED_HEADERS = {"host", "content-length", "content-type", "transfer-encoding", "connection", "te", "upgrade",
                    "proxy-authorization", "keep-alive", "trailer"}
HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
TEMPLATE_EXPRESSION = re.compile(r"\$\{([^}]*)\}")


class NotificationProblem(ValueError):
    """A notification that cannot be made as asked (a clear 400)."""


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# Checking what the API is given


def tag_globs(event_config: dict) -> list[str]:
    value = event_config.get("tags")
    if value is None or value == "":
        return []
    return [value] if isinstance(value, str) else list(value)


def check_event_config(event: str, event_config: Any) -> dict:
    if not isinstance(event_config, dict):
        raise NotificationProblem("eventConfig must be an object")
    checked: dict[str, Any] = {}
    if event in ("repo_push", "repo_tag_deleted", "repo_image_expiry") and "tags" in event_config:
        globs = event_config["tags"]
        if isinstance(globs, str):
            globs = [globs] if globs else []
        if not isinstance(globs, list) or not all(isinstance(g, str) and 0 < len(g) <= 128 for g in globs) or len(globs) > 50:
            raise NotificationProblem("eventConfig.tags must be a tag glob (e.g. \"v*\") or a list of up to 50 of them")
        checked["tags"] = globs
    if event == "repo_image_expiry":
        days = event_config.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365:
            raise NotificationProblem("eventConfig.days must be a whole number of days from 1 to 365 (tags expiring within it)")
        checked["days"] = days
    if event == "vulnerability_found" and "level" in event_config:
        checked["level"] = event_config["level"]
    return checked


def check_method_config(method: str, config: Any, mail_server: str | None) -> dict:
    """The method's config, normalised; URLs are checked against SSRF separately (they resolve)."""
    if method in GONE_METHODS:
        raise NotificationProblem(f"method {method!r} is not available: {GONE_METHODS[method]}")
    if method not in METHODS:
        raise NotificationProblem(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if not isinstance(config, dict):
        raise NotificationProblem("config must be an object")
    if method == "email":
        address = config.get("email")
        if not isinstance(address, str) or len(address) > 320 or "@" not in address or any(c in address for c in "\r\n <>,;"):
            raise NotificationProblem("config.email must be one e-mail address")
        if not mail_server:
            raise NotificationProblem("this registry has no MAIL_SERVER configured; use a Webhook POST or Slack")
        return {"email": address}
    url = config.get("url")
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise NotificationProblem("config.url must be the http(s) URL to call")
    if method == "slack":
        return {"url": url}
    return _check_webhook(config, url)


def _check_webhook(config: dict, url: str) -> dict:
    checked: dict[str, Any] = {"url": url}
    template = config.get("template")
    if template not in (None, ""):
        if isinstance(template, str):
            try:
                template = json.loads(template)
            except ValueError as exc:
                raise NotificationProblem(f"config.template must be a JSON document: {exc}") from None
        if len(json.dumps(template)) > 16384:
            raise NotificationProblem("config.template is longer than 16384 characters")
        checked["template"] = template
    payload_format = config.get("format", "quay")
    if payload_format not in FORMATS:
        raise NotificationProblem(f"config.format must be one of {', '.join(FORMATS)}; got {payload_format!r}")
    if payload_format != "quay":
        checked["format"] = payload_format
    headers = config.get("headers") or {}
    if not isinstance(headers, dict) or len(headers) > 20:
        raise NotificationProblem("config.headers must be an object of up to 20 header names and values")
    for name, value in headers.items():
        if not HEADER_NAME_RE.match(name) or name.lower() in RESERVED_HEADERS or name.lower().startswith("x-meridian-"):
            raise NotificationProblem(f"config.headers: {name!r} cannot be set (reserved or not a header name)")
        if not isinstance(value, str) or len(value) > 4096 or any(c in value for c in "\r\n\0"):
            raise NotificationProblem(f"config.headers: the value of {name!r} must be one line of text")
    if headers:
        checked["headers"] = headers
    return checked


# ---------------------------------------------------------------------------------------------
# Event data (Quay's shape, with Meridian's additions)


def repository_data(config: Config, repository: str, subpage: str = "") -> dict[str, Any]:
    namespace, name = repository.split("/", 1)
    base = f"{config.preferred_url_scheme}://{config.server_hostname}"
    return {"repository": repository, "namespace": namespace, "name": name,
            "docker_url": f"{config.server_hostname}/{repository}", "homepage": f"{base}/repository/{repository}{subpage}"}


def push_data(config: Config, event) -> dict[str, Any]:
    """repo_push from a ManifestPushed."""
    return {**repository_data(config, event.repository, "?tab=tags"), "updated_tags": list(event.tags),
            "digest": event.digest, "media_type": event.media_type, "artifact_type": event.artifact_type,
            "size": event.size, "pusher": {"kind": event.pusher.kind, "name": event.pusher.name},
            "region": event.region, "pushed_at": _iso(event.pushed_at)}


def tag_deleted_data(config: Config, event) -> dict[str, Any]:
    """repo_tag_deleted from a TagDeleted."""
    return {**repository_data(config, event.repository, "?tab=history"), "tag": event.tag, "digest": event.digest,
            "reason": event.reason, "actor": {"kind": event.actor.kind, "name": event.actor.name}, "region": event.region,
            "deleted_at": _iso(event.deleted_at)}


def quota_data(config: Config, event) -> dict[str, Any]:
    """quota_warning / quota_error from a QuotaCrossed (Quay's fields)."""
    base = f"{config.preferred_url_scheme}://{config.server_hostname}"
    percent = round(100 * event.usage_bytes / event.limit_bytes, 1) if event.limit_bytes else None
    data = {"namespace": event.namespace, "homepage": f"{base}/organization/{event.namespace}",
            "threshold_percent": event.threshold_percent, "usage_bytes": event.usage_bytes, "limit_bytes": event.limit_bytes,
            "usage_percent": percent, "usage_bytes_formatted": human_size(event.usage_bytes),
            "limit_bytes_formatted": human_size(event.limit_bytes), "region": event.region, "at": _iso(event.at)}
    if event.repository:
        data["repository"] = event.repository
    if event.kind == "error":
        data["adding_bytes"] = event.adding_bytes
    return data


def expiry_data(config: Config, repository: str, tags: list[str], days: int) -> dict[str, Any]:
    return {**repository_data(config, repository, "?tab=tags"), "tags": tags,
            "expiring_in": f"{days} day" + ("" if days == 1 else "s")}


def sample_data(config: Config, event: str, *, repository: str | None, namespace: str) -> dict[str, Any]:
    """What "test" sends: a made-up event of the notification's kind."""
    repository = repository or f"{namespace}/example"
    now = dt.datetime.now(dt.UTC).timestamp()
    if event == "repo_push":
        return {**repository_data(config, repository, "?tab=tags"), "updated_tags": ["latest"],
                "digest": "sha256:" + "0" * 64, "media_type": "application/vnd.oci.image.manifest.v1+json",
                "artifact_type": None, "size": 1024, "pusher": {"kind": "user", "name": "example"},
                "region": config.meridian_region, "pushed_at": _iso(now)}
    if event == "repo_tag_deleted":
        return {**repository_data(config, repository, "?tab=history"), "tag": "latest", "digest": "sha256:" + "0" * 64,
                "reason": "deleted", "actor": {"kind": "user", "name": "example"}, "region": config.meridian_region,
                "deleted_at": _iso(now)}
    if event == "repo_image_expiry":
        return expiry_data(config, repository, ["latest", "prod"], 1)
    if event in ("quota_warning", "quota_error"):
        base = f"{config.preferred_url_scheme}://{config.server_hostname}"
        return {"namespace": namespace, "homepage": f"{base}/organization/{namespace}", "threshold_percent": 80,
                "usage_bytes": 858993459, "limit_bytes": 1073741824, "usage_percent": 80.0,
                "usage_bytes_formatted": "819.2 MiB", "limit_bytes_formatted": "1.0 GiB", "region": config.meridian_region,
                "at": _iso(now)}
    return {**repository_data(config, repository), "message": f"a sample {EVENTS[event].title} event"}


def summary(event: str, data: dict[str, Any]) -> str:
    """One line for Slack, e-mail subjects and the UI."""
    where = data.get("repository") or data.get("namespace", "")
    if event == "repo_push":
        tags = ", ".join(data.get("updated_tags") or []) or "no tag"
        pusher = (data.get("pusher") or {}).get("name") or "anonymous"
        return f"Repository {where} has been pushed with tags {tags} ({str(data.get('digest'))[:19]}) by {pusher}"
    if event == "repo_tag_deleted":
        reason = {"expired": "expired", "manifest_deleted": "was removed with its manifest"}.get(data.get("reason", ""), "was deleted")
        return f"Tag {data.get('tag')} of repository {where} {reason}"
    if event == "repo_image_expiry":
        return f"Tags {', '.join(data.get('tags') or [])} of repository {where} expire within {data.get('expiring_in')}"
    if event == "quota_warning":
        return (f"Namespace {data.get('namespace')} uses {data.get('usage_bytes_formatted')} of its "
                f"{data.get('limit_bytes_formatted')} quota ({data.get('threshold_percent')} % warning)")
    if event == "quota_error":
        return (f"A push into namespace {data.get('namespace')} was refused: its quota of "
                f"{data.get('limit_bytes_formatted')} is reached")
    return f"{EVENTS[event].title if event in EVENTS else event} in {where}"


def matches(event: str, event_config: dict, data: dict[str, Any]) -> bool:
    """The notification's filter: tag globs for pushes, deletions and expiry."""
    globs = tag_globs(event_config)
    if not globs:
        return True
    if event == "repo_push":
        names = data.get("updated_tags") or []
    elif event == "repo_tag_deleted":
        names = [data.get("tag", "")]
    elif event == "repo_image_expiry":
        names = data.get("tags") or []
    else:
        return True
    return any(fnmatch.fnmatchcase(name, glob) for name in names for glob in globs)


# ---------------------------------------------------------------------------------------------
# Bodies and the signature


def apply_template(template: Any, data: dict[str, Any]) -> Any:
    """Quay's template: every `${path}` inside a string is replaced by the JSONPath's value(s) in the
    event data (several joined with commas; nothing found gives "(none)")."""
    if isinstance(template, dict):
        return {key: apply_template(value, data) for key, value in template.items()}
    if isinstance(template, list):
        return [apply_template(value, data) for value in template]
    if not isinstance(template, str):
        return template

    def one(found: re.Match) -> str:
        expression = found.group(1).strip()
        if not expression.startswith("$"):
            expression = "$." + expression
        try:
            values = jsonpath.findall(expression, data)
        except Exception:  # noqa: BLE001 - a bad expression reads as nothing, as in Quay
            values = []
        flat: list[Any] = []
        for value in values:
            flat.extend(value if isinstance(value, list) else [value])
        flat = [value for value in flat if value is not None]
        if not flat:
            return "(none)"
        return ",".join(v if isinstance(v, str) else json.dumps(v) for v in flat)

    return TEMPLATE_EXPRESSION.sub(one, template)


def webhook_body(config: dict, event: str, event_id: str, data: dict[str, Any], *, source: str,
                 subject: str) -> tuple[bytes, str]:
    """(body, content type) of a Webhook POST."""
    if config.get("template") is not None:
        return json.dumps(apply_template(config["template"], data)).encode(), "application/json"
    if config.get("format") == "cloudevents":
        cloud = {"specversion": "1.0", "id": event_id, "source": source, "type": f"io.meridian.{event}",
                 "subject": subject, "time": data.get("pushed_at") or data.get("deleted_at") or data.get("at")
                 or _iso(dt.datetime.now(dt.UTC).timestamp()),
                 "datacontenttype": "application/json", "data": data}
        return json.dumps(cloud).encode(), "application/cloudevents+json"
    return json.dumps({**data, "event_id": event_id}).encode(), "application/json"


def slack_body(event: str, data: dict[str, Any], registry_title: str) -> bytes:
    """Slack's incoming-webhook format, as Quay sends it."""
    text = summary(event, data)
    link = data.get("homepage")
    color = {"quota_error": "danger", "quota_warning": "warning", "repo_tag_deleted": "warning"}.get(event, "good")
    detail = f"<{link}|{text}>" if link else text
    return json.dumps({"text": text, "username": registry_title, "attachments": [
        {"fallback": text, "text": detail, "color": color, "mrkdwn_in": ["text"]}]}).encode()


def signature(secret: str, body: bytes) -> str:
    """The value of X-Meridian-Signature-256: receivers compute the same over the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------
# The notifier's durable consumer


def notifier_consumer_config(subjects, ack_wait: float) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=subjects.notifier_consumer,
        # Made when the first notification is made (or the first notifier starts): from then on,
        # not the stream's whole week of history.
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=-1,
        max_ack_pending=1000,
        filter_subject=subjects.notifier_filter,
    )


NOTIFIER_ACK_WAIT_S = 60.0


async def ensure_notifier_consumer(bus) -> bool:
    """Create the notifier's consumer if it is missing, so events wait for a notifier not started yet.
    False when the bus cannot be asked now (the notifier makes it when it starts)."""
    try:
        try:
            await bus.js.consumer_info(bus.subjects.events_stream, bus.subjects.notifier_consumer)
        except nats.js.errors.NotFoundError:
            with contextlib.suppress(nats.js.errors.BadRequestError):  # made meanwhile by someone else
                await bus.js.add_consumer(bus.subjects.events_stream, notifier_consumer_config(bus.subjects, NOTIFIER_ACK_WAIT_S))
        return True
    except Exception as exc:  # noqa: BLE001 - the bus is away: nothing the caller did depends on it
        log.warning("notifier consumer not ensured; the bus is away", error=f"{type(exc).__name__}: {exc}")
        return False
