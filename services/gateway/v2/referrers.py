"""`GET /v2/<name>/referrers/<digest>` with `?artifactType=` and `OCI-Filters-Applied`."""
from __future__ import annotations

import json

from aiohttp import web

from shared.errors import RegistryError
from shared.registry import manifests

from ..auth import Action
from .base import authorize, digest_param, gateway
from .manifest_rules import OCI_INDEX


async def list_referrers(request: web.Request, name: str, digest: str) -> web.Response:
    await authorize(request, name, Action.PULL)
    subject = digest_param(digest)
    gw = gateway(request)
    if not gw.config.feature_referrers_api:
        raise RegistryError("UNSUPPORTED", "the referrers API is disabled (FEATURE_REFERRERS_API)", status=404)
    # No repository-exists check: a caller allowed to read gets 200 and an empty index, because
    # clients read a 404 here as "referrers API unsupported" and fall back to the tag schema.
    artifact_type = request.query.get("artifactType") or None
    descriptors = await manifests.referrers(gw.pool, name, subject, artifact_type)
    headers = {"Content-Type": OCI_INDEX}
    if artifact_type:
        headers["OCI-Filters-Applied"] = "artifactType"
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})
    return web.Response(body=body.encode(), headers=headers)
