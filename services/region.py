"""One region's services in one process: gateway, blobstore and replicator. `meridian up` and the
two-region tests compose regions with this; each service still runs alone with `meridian <service>`."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from shared.config import Config, parse_config

from .blobstore.app import create_app as create_blobstore
from .gateway.app import create_app as create_gateway
from .replicator.app import Replicator


def region_docs(base: dict[str, Any], regions: list[str], blobstore_urls: dict[str, str], storage: dict[str, list]) -> dict[str, dict]:
    """Config documents for regions that share one config but each prefer their own location.

    Every region gets one location named after it; its preference lists its own location first.
    """
    docs = {}
    for region in regions:
        doc = copy.deepcopy(base)
        doc["DISTRIBUTED_STORAGE_CONFIG"] = storage
        doc["MERIDIAN_BLOBSTORE_URLS"] = blobstore_urls
        doc["MERIDIAN_REGION"] = region
        doc["DISTRIBUTED_STORAGE_PREFERENCE"] = [region] + [r for r in regions if r != region]
        doc.setdefault("FEATURE_STORAGE_REPLICATION", True)
        doc.setdefault("DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS", list(regions))
        docs[region] = doc
    return docs


@dataclass
class RegionServices:
    name: str
    config: Config
    gateway_url: str
    blobstore_url: str | None
    replicator: Replicator | None
    runners: list[web.AppRunner] = field(default_factory=list)

    async def stop(self) -> None:
        if self.replicator is not None:
            await self.replicator.stop()
            self.replicator = None
        for runner in reversed(self.runners):
            await runner.cleanup()
        self.runners.clear()


async def _serve(app: web.Application, listen: str, ssl_context=None) -> web.AppRunner:
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=10)
    await runner.setup()
    await web.TCPSite(runner, host or "0.0.0.0", int(port), backlog=1024, ssl_context=ssl_context).start()
    return runner


async def start_region(
    doc: dict[str, Any] | Config,
    *,
    gateway_listen: str,
    blobstore_listen: str | None = None,
    replicate: bool = True,
    config_dir: Path | None = None,
    server_ssl=None,
) -> RegionServices:
    config = doc if isinstance(doc, Config) else parse_config(doc)
    scheme = "https" if server_ssl is not None else "http"
    region = RegionServices(config.meridian_region, config, f"{scheme}://{gateway_listen}", None, None)
    try:
        if blobstore_listen:
            region.runners.append(await _serve(create_blobstore(config, config_dir=config_dir), blobstore_listen, server_ssl))
            region.blobstore_url = f"{scheme}://{blobstore_listen}"
        region.runners.append(await _serve(create_gateway(config, config_dir=config_dir), gateway_listen, server_ssl))
        if replicate and config.feature_storage_replication:
            region.replicator = Replicator(config, config_dir=config_dir)
            await region.replicator.start()
    except BaseException:
        await region.stop()
        raise
    return region
