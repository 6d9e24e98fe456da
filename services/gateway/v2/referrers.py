"""`GET /v2/<name>/referrers/<digest>` with `?artifactType=` and `OCI-Filters-Applied`."""
from __future__ import annotations

import json

from aiohttp import web

from shared.errors import RegistryError
from shared.model import manifests as manifest_model
from shared.model import repositories

from ..auth import Action
from .base import authorize, digest_param, gateway
from .manifest_rules import OCI_INDEX


async def list_referrers(request: web.Request, name: str, digest: str) -> web.Response:
    await authorize(request, name, Action.PULL)
    subject = digest_param(digest)
    gw = gateway(request)
    if not gw.config.feature_referrers_api:
        raise RegistryError("UNSUPPORTED", "the referrers API is disabled (FEATURE_REFERRERS_API)", status=404)
    if await repositories.get_id(gw.pool, name) is None:
        raise RegistryError("NAME_UNKNOWN", detail={"name": name})
    artifact_type = request.query.get("artifactType") or None
    descriptors = await manifest_model.referrers(gw.pool, name, subject, artifact_type)
    headers = {"Content-Type": OCI_INDEX}
    if artifact_type:
        headers["OCI-Filters-Applied"] = "artifactType"
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})
    return web.Response(body=body.encode(), headers=headers)
