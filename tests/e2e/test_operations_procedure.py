"""docs/operations.md's read-only procedure, run as written: its shell blocks run with a `meridian`
on PATH, its YAML blocks are merged into config.yaml followed by a gateway restart; no SQL."""
from __future__ import annotations

import asyncio
import os
import re
import stat
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from shared.embedded import free_port
from shared.errors import READ_ONLY_MESSAGE
from tests.conftest import local_spec
from tests.e2e.clients import attempt, ok
from tests.helpers import eventually
from tests.images import single_image

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def procedure_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("### The procedure, end to end", 1)[1].split("\n## ", 1)[0]
    return [(lang, re.sub(r"^ {3}", "", body, flags=re.M)) for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)]


class Gateway:
    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        process = self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "gateway", "--config", "config.yaml", "--listen", f"127.0.0.1:{self.port}",
            cwd=self.folder, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)

        async def up():
            if process.returncode is not None:
                assert process.stderr is not None
                raise AssertionError(f"gateway exited: {(await process.stderr.read()).decode()[-2000:]}")
            try:
                async with aiohttp.ClientSession() as http, http.get(f"{self.url}/v2/") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(up, timeout=30, what="the gateway to start")

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


async def test_read_only_procedure_as_written(database, bus_prefix, servers, tmp_path):
    blocks = procedure_blocks()
    assert [lang for lang, _ in blocks] == ["sh", "yaml", "yaml", "sh"], "the procedure's shape changed: update this test"
    folder = tmp_path / "deploy"
    folder.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "meridian"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m services.cli \"$@\"\n")
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    config = {"DB_URI": database, "NATS_URL": servers.nats_url, "MERIDIAN_BUS_PREFIX": bus_prefix,
              "MERIDIAN_INSECURE_OPEN_ACCESS": True, "DISTRIBUTED_STORAGE_CONFIG": {"local": local_spec(tmp_path / "storage")}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    gateway = Gateway(folder)
    config["SERVER_HOSTNAME"] = f"127.0.0.1:{gateway.port}"
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    single_image(tmp_path / "src")
    source = f"oci:{tmp_path / 'src'}:latest"

    async def run_shell(block: str) -> None:
        for line in filter(None, (raw.strip() for raw in block.splitlines())):
            process = await asyncio.create_subprocess_exec("bash", "-c", line, cwd=folder, env=env,
                                                           stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await asyncio.wait_for(process.communicate(), 60)
            assert process.returncode == 0, f"{line}: {out.decode()}"

    async def switch(block: str) -> None:
        config.update(yaml.safe_load(block))
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        await gateway.stop()
        await gateway.start()

    await gateway.start()
    try:
        await ok("skopeo", "copy", "--dest-tls-verify=false", source, f"docker://127.0.0.1:{gateway.port}/acme/app:before")
        await run_shell(blocks[0][1])
        await switch(blocks[1][1])
        async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/config") as r:
            assert (await r.json())["registry_state"] == "readonly"
        code, out = await attempt("skopeo", "copy", "--dest-tls-verify=false", source,
                                  f"docker://127.0.0.1:{gateway.port}/acme/app:during")
        assert code != 0 and READ_ONLY_MESSAGE in out, out
        await ok("skopeo", "copy", "--src-tls-verify=false", f"docker://127.0.0.1:{gateway.port}/acme/app:before",
                 f"oci:{tmp_path / 'pulled'}:latest")
        await switch(blocks[2][1])
        await ok("skopeo", "copy", "--dest-tls-verify=false", source, f"docker://127.0.0.1:{gateway.port}/acme/app:after")
        await run_shell(blocks[3][1])
    finally:
        await gateway.stop()
