"""Notifications in Quay's API shape (`endpoints/api/repositorynotification.py`): per repository
(`/repository/<repo>/notification/`), and — beyond Quay, which has them only for quota events — per
organisation for every repository in it (`/organization/<org>/notifications`). List, create, get,
delete, reset (POST on the notification: enabled again), test (a sample event through the notifier),
and the delivery history.

Repository administrators manage a repository's; organisation administrators the organisation's.
URLs are checked against SSRF here (a clear 400) and again at every delivery (shared/callbacks.py).
Each notification has its own HMAC-SHA256 secret (X-Meridian-Signature-256), shown to its admins.
"""
from __future__ import annotations

import json
import secrets
import uuid as uuids

from aiohttp import web

from shared import notifications as kinds
from shared.callbacks import url_problem
from shared.errors import ApiError
from shared.messages import NotificationRequested
from shared.model import notifications
from shared.registry import actor_for

from ..v2.base import gateway
from .base import ApiRoute, Op, iso, json_body, log_action, ok, organization_for, repository_for, request_principal, text_field

HISTORY_LIMIT = 100
CREATE_SCHEMA = {
    "type": "object", "required": ["event", "method", "config"],
    "properties": {
        "event": {"type": "string", "enum": list(kinds.EVENTS)},
        "method": {"type": "string", "enum": list(kinds.METHODS)},
        "config": {"type": "object", "description": "webhook: {url, template?, format?: quay|cloudevents, headers?}; "
                                                    "slack: {url}; email: {email}"},
        "eventConfig": {"type": "object", "description": "repo_push/repo_tag_deleted: {tags?: glob(s)}; "
                                                         "repo_image_expiry: {days, tags?}"},
        "title": {"type": "string"},
    },
}


def view(row: dict) -> dict:
    """Quay's notification view, with the state Quay does not show (why it is disabled) and the key
    receivers verify the signature with."""
    return {"uuid": str(row["uuid"]), "title": row["title"], "event": row["event"], "method": row["method"],
            "config": row["config"], "event_config": row["event_config"], "number_of_failures": row["number_of_failures"],
            "enabled": row["disabled_at"] is None, "disabled_at": iso(row["disabled_at"]),
            "disabled_reason": row["disabled_reason"], "created": iso(row["created_at"]),
            "repository": row["repository"], "namespace": row["namespace"],
            "signature_header": kinds.SIGNATURE_HEADER, "secret": row["secret"]}


def _uuid(value: str) -> uuids.UUID:
    try:
        return uuids.UUID(value)
    except ValueError:
        raise ApiError(404, f"notification {value!r} not found", error_type="not_found") from None


class _Scope:
    """Whose notifications: a repository's, or an organisation's own."""

    def __init__(self, namespace_id: int, namespace: str, repository_id: int | None, repository: str | None) -> None:
        self.namespace_id, self.namespace = namespace_id, namespace
        self.repository_id, self.repository = repository_id, repository

    @property
    def kind(self) -> str:
        return "repository" if self.repository_id is not None else "namespace"

    def log_fields(self) -> dict:
        fields: dict = {"namespace_id": self.namespace_id, "namespace": self.namespace}
        if self.repository_id is not None:
            fields.update(repository_id=self.repository_id, repository=self.repository)
        return fields


async def _repository_scope(request: web.Request, repository: str) -> _Scope:
    row, _ = await repository_for(request, repository, "admin")
    return _Scope(row["namespace_id"], repository.split("/", 1)[0], row["id"], repository)


async def _organization_scope(request: web.Request, orgname: str) -> _Scope:
    row, _ = await organization_for(request, orgname, need="admin")
    return _Scope(row["id"], orgname, None, None)


async def _one(request: web.Request, scope: _Scope, notification_uuid: str) -> dict:
    found = await notifications.get(gateway(request).pool, _uuid(notification_uuid), namespace_id=scope.namespace_id,
                                    repository_id=scope.repository_id)
    if found is None:
        raise ApiError(404, f"notification {notification_uuid} not found", error_type="not_found")
    return found


async def _list(request: web.Request, scope: _Scope) -> web.Response:
    pool = gateway(request).pool
    rows = (await notifications.of_repository(pool, scope.repository_id) if scope.repository_id is not None
            else await notifications.of_namespace(pool, scope.namespace_id))
    return ok({"notifications": [view(r) for r in rows]})


async def _create(request: web.Request, scope: _Scope) -> web.Response:
    gw = gateway(request)
    body = await json_body(request)
    if "\\u0000" in json.dumps(body):
        raise ApiError(400, "the notification may not contain NUL characters")
    event = body.get("event")
    if not isinstance(event, str) or event not in kinds.EVENTS:
        raise ApiError(400, f"field 'event' must be one of {', '.join(kinds.EVENTS)}; got {event!r}")
    if scope.kind not in kinds.EVENTS[event].scopes:
        raise ApiError(400, f"event {event!r} cannot be notified for a {scope.kind}")
    method = body.get("method")
    if not isinstance(method, str):
        raise ApiError(400, f"field 'method' must be one of {', '.join(kinds.METHODS)}")
    try:
        config = kinds.check_method_config(method, body.get("config") or {}, gw.config.mail_server)
        event_config = kinds.check_event_config(event, body.get("eventConfig", body.get("event_config")) or {})
    except kinds.NotificationProblem as exc:
        raise ApiError(400, str(exc)) from None
    if "url" in config:
        problem = await url_problem(config["url"], gw.config.meridian_callback_allowed_hosts, field="config.url")
        if problem:
            raise ApiError(400, problem)
    title = text_field(body, "title", max_length=255) or ""
    principal = request_principal(request)
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            made = await notifications.create(
                conn, namespace_id=scope.namespace_id, repository_id=scope.repository_id, event=event, method=method,
                title=title, config=config, event_config=event_config, secret=secrets.token_hex(32),
                created_by=principal.id if principal else None)
            await log_action(conn, request, "add_repo_notification", **scope.log_fields(), notification_id=str(made),
                             event=event, method=method)
    await kinds.ensure_notifier_consumer(gw.bus)  # from now on, events wait for a notifier
    found = await notifications.get(gw.pool, made, namespace_id=scope.namespace_id, repository_id=scope.repository_id)
    assert found is not None
    return ok(view(found), 201)


async def _delete(request: web.Request, scope: _Scope, notification_uuid: str) -> web.Response:
    gw = gateway(request)
    found = await _one(request, scope, notification_uuid)
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            await notifications.delete(conn, found["id"])
            await log_action(conn, request, "delete_repo_notification", **scope.log_fields(),
                             notification_id=notification_uuid, event=found["event"], method=found["method"])
    return ok(status=204)


async def _reset(request: web.Request, scope: _Scope, notification_uuid: str) -> web.Response:
    gw = gateway(request)
    found = await _one(request, scope, notification_uuid)
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            await notifications.reset(conn, found["id"])
            await log_action(conn, request, "reset_repo_notification", **scope.log_fields(),
                             notification_id=notification_uuid, event=found["event"], method=found["method"])
    return ok(status=204)


async def _test(request: web.Request, scope: _Scope, notification_uuid: str) -> web.Response:
    """Quay's test: a sample of the notification's event, delivered by the notifier (even while the
    notification is disabled, so a fix can be tried before reset); its result is in the history."""
    gw = gateway(request)
    found = await _one(request, scope, notification_uuid)
    data = kinds.sample_data(gw.config, found["event"], repository=scope.repository, namespace=scope.namespace)
    await kinds.ensure_notifier_consumer(gw.bus)
    async with gw.registry.change(actor_for(request_principal(request))) as change:
        await change.emit(change.subjects.notification_requested, NotificationRequested(
            notification=str(found["uuid"]), event=found["event"], event_data=data, region=change.region, at=change.at,
            test=True))
    return ok({})


async def _history(request: web.Request, scope: _Scope, notification_uuid: str) -> web.Response:
    gw = gateway(request)
    found = await _one(request, scope, notification_uuid)
    rows = await notifications.history(gw.pool, found["id"], HISTORY_LIMIT)
    return ok({"notification": view(found), "deliveries": [
        {"at": iso(r["at"]), "event": r["event"], "event_id": r["event_id"], "attempt": r["attempt"], "ok": r["ok"],
         "status_code": r["status_code"], "duration_ms": r["duration_ms"], "error": r["error"], "test": r["test"]}
        for r in rows]})


# Repository routes


async def repo_list(request: web.Request, repository: str) -> web.Response:
    return await _list(request, await _repository_scope(request, repository))


async def repo_create(request: web.Request, repository: str) -> web.Response:
    return await _create(request, await _repository_scope(request, repository))


async def repo_get(request: web.Request, repository: str, uuid: str) -> web.Response:
    return ok(view(await _one(request, await _repository_scope(request, repository), uuid)))


async def repo_delete(request: web.Request, repository: str, uuid: str) -> web.Response:
    return await _delete(request, await _repository_scope(request, repository), uuid)


async def repo_reset(request: web.Request, repository: str, uuid: str) -> web.Response:
    return await _reset(request, await _repository_scope(request, repository), uuid)


async def repo_test(request: web.Request, repository: str, uuid: str) -> web.Response:
    return await _test(request, await _repository_scope(request, repository), uuid)


async def repo_history(request: web.Request, repository: str, uuid: str) -> web.Response:
    return await _history(request, await _repository_scope(request, repository), uuid)


# Organisation routes


async def org_list(request: web.Request, orgname: str) -> web.Response:
    return await _list(request, await _organization_scope(request, orgname))


async def org_create(request: web.Request, orgname: str) -> web.Response:
    return await _create(request, await _organization_scope(request, orgname))


async def org_get(request: web.Request, orgname: str, uuid: str) -> web.Response:
    return ok(view(await _one(request, await _organization_scope(request, orgname), uuid)))


async def org_delete(request: web.Request, orgname: str, uuid: str) -> web.Response:
    return await _delete(request, await _organization_scope(request, orgname), uuid)


async def org_reset(request: web.Request, orgname: str, uuid: str) -> web.Response:
    return await _reset(request, await _organization_scope(request, orgname), uuid)


async def org_test(request: web.Request, orgname: str, uuid: str) -> web.Response:
    return await _test(request, await _organization_scope(request, orgname), uuid)


async def org_history(request: web.Request, orgname: str, uuid: str) -> web.Response:
    return await _history(request, await _organization_scope(request, orgname), uuid)


ROUTES = [
    ApiRoute("repository_notification_test", "/repository/{repository}/notification/{uuid}/test", {
        "POST": Op(repo_test, "Send a sample event to the notification (the result shows in its deliveries)"),
    }),
    ApiRoute("repository_notification_deliveries", "/repository/{repository}/notification/{uuid}/deliveries", {
        "GET": Op(repo_history, "The notification's recent deliveries: time, event, attempt, status, duration, error"),
    }),
    ApiRoute("repository_notification", "/repository/{repository}/notification/{uuid}", {
        "GET": Op(repo_get, "One notification"),
        "DELETE": Op(repo_delete, "Delete the notification", status=204),
        "POST": Op(repo_reset, "Reset the notification: enabled again, its failure count cleared", status=204),
    }),
    ApiRoute("repository_notifications", "/repository/{repository}/notification/", {
        "GET": Op(repo_list, "The repository's notifications"),
        "POST": Op(repo_create, "Create a notification", status=201, body=CREATE_SCHEMA),
    }),
    ApiRoute("organization_notification_test", "/organization/{orgname}/notifications/{uuid}/test", {
        "POST": Op(org_test, "Send a sample event to the organization's notification"),
    }),
    ApiRoute("organization_notification_deliveries", "/organization/{orgname}/notifications/{uuid}/deliveries", {
        "GET": Op(org_history, "The organization notification's recent deliveries"),
    }),
    ApiRoute("organization_notification", "/organization/{orgname}/notifications/{uuid}", {
        "GET": Op(org_get, "One organization notification"),
        "DELETE": Op(org_delete, "Delete it", status=204),
        "POST": Op(org_reset, "Reset it: enabled again, its failure count cleared", status=204),
    }),
    ApiRoute("organization_notifications", "/organization/{orgname}/notifications", {
        "GET": Op(org_list, "Notifications for every repository of the organization (and its quota events)"),
        "POST": Op(org_create, "Create one", status=201, body=CREATE_SCHEMA),
    }),
]
