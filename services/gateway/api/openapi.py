"""The OpenAPI 3.0 document of /api/v1, generated from the route table so the two cannot drift."""
from __future__ import annotations

import re

ERROR = {"type": "object", "required": ["status", "error_message", "error_type"],
         "properties": {"status": {"type": "integer"}, "error_message": {"type": "string"}, "title": {"type": "string"},
                        "error_type": {"type": "string"}, "detail": {}}}
ERROR_STATUSES = {
    "400": "Bad input; nothing was changed",
    "401": "Sign in (session cookie) or send a Bearer API token",
    "403": "Signed in, but not allowed",
    "404": "Not found, or not visible to you",
    "405": "Not allowed now (read-only mode)",
    "409": "Already exists",
}


def _parameters(route, op) -> list[dict]:
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"},
               **({"description": "namespace/repository (slashes allowed)"} if name == "repository" else {})}
              for name in re.findall(r"\{(\w+)\}", route.template)]
    params += [{"name": name, "in": "query", "required": False, "schema": schema} for name, schema in op.query.items()]
    return params


def document(routes, config) -> dict:
    paths: dict[str, dict] = {}
    for route in routes:
        item = paths.setdefault(route.template, {})
        for method, op in route.ops.items():
            success = {"description": "Done"} if op.status == 204 else {
                "description": "Done", "content": {"application/json": {"schema": op.response or {"type": "object"}}}}
            operation = {
                "operationId": f"{route.name}_{method.lower()}",
                "summary": op.summary,
                "parameters": _parameters(route, op),
                "responses": {str(op.status): success,
                              **{code: {"description": text, "content": {"application/json": {"schema": ERROR}}}
                                 for code, text in ERROR_STATUSES.items()}},
            }
            if op.status == 201:
                operation["responses"]["200"] = {"description": "Updated", "content": {"application/json": {"schema": {"type": "object"}}}}
            if op.auth == "none":
                operation["security"] = []
            if op.body is not None:
                operation["requestBody"] = {"required": bool(op.body.get("required")),
                                            "content": {"application/json": {"schema": op.body}}}
            item[method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{config.registry_title} API", "version": "1",
                 "description": "Organisations, repositories, teams, robots, permissions and usage logs. Errors are JSON "
                                "{status, error_message, error_type, detail}."},
        "servers": [{"url": "/api/v1"}],
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "A personal API token (POST /user/tokens)"},
            "session": {"type": "apiKey", "in": "cookie", "name": "meridian_session",
                        "description": "From POST /signin; writes also need the X-CSRF-Token header"}}},
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
    }
