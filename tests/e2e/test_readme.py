"""The README from top to bottom, as a new user would follow it: every ```sh block runs as written,
in order, in an empty folder (only the port, the paths of ./meridian and .venv, and the two password
prompts are adapted). A block that starts the registry runs in the background until the next one
stops it with Ctrl-C. No command may fail or print anything that looks like an error or a warning."""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import eventually

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
SCARY = re.compile(r"traceback|exception|error|warn|fail|denied|unauthorized", re.IGNORECASE)
PASSWORD = "readme-password-1"


def readme_blocks() -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", (REPO / "README.md").read_text(), re.MULTILINE | re.DOTALL)


def adapt(block: str, port: int) -> str:
    block = block.replace("./meridian", str(REPO / "meridian")).replace(".venv/bin/python", str(REPO / ".venv/bin/python"))
    block = block.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("127.0.0.1:8081", f"127.0.0.1:{port + 1}")
    block = re.sub(r"^(\S+/meridian user create .*)$", rf"printf '{PASSWORD}\\n' | \1 --password-stdin", block, flags=re.M)
    block = re.sub(r"^podman login (.*) -u admin (\S+)$", rf"printf '{PASSWORD}\\n' | podman login \1 -u admin --password-stdin \2",
                   block, flags=re.M)
    return block


class Server:
    def __init__(self, command: str, cwd: Path, env: dict, port: int, log: Path) -> None:
        self.log, self.port = log, port
        self.process = subprocess.Popen(["bash", "-c", f"exec {command} --port {port}"], cwd=cwd, env=env,
                                        stdout=log.open("wb"), stderr=subprocess.STDOUT)  # noqa: SIM115

    async def ready(self, http: aiohttp.ClientSession, ports: list[int]) -> None:
        async def answering():
            assert self.process.poll() is None, self.log.read_text()
            for port in ports:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/v2/") as r:
                        if r.status not in (200, 401):
                            return False
                except aiohttp.ClientError:
                    return False
            return True

        await eventually(answering, timeout=180, what=f"{self.log.name} to answer")

    async def stop(self) -> None:
        before = len(self.log.read_text())
        self.process.send_signal(signal.SIGINT)
        await asyncio.to_thread(self.process.wait, 60)
        output = self.log.read_text()
        assert self.process.returncode == 0, output
        assert output[before:] == "Meridian stopped.\n", output[before:]
        for line in output.splitlines():  # the banner, JSON events at info level, the last line
            if line.startswith("{"):
                assert json.loads(line)["level"] == "info", line
            else:
                assert not SCARY.search(line), line

    def kill(self) -> None:
        """After a failure: Ctrl-C first, so `up` stops the NATS and PostgreSQL it started."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def test_readme_top_to_bottom(tmp_path, short_runroot, data_root, port_pair):
    blocks = readme_blocks()
    assert len(blocks) >= 6 and any("buildah from scratch" in b for b in blocks) and any("oras" in b for b in blocks)
    port = port_pair
    work = data_root / "work"  # its .meridian/postgres must stay reachable for the pgserver user
    work.mkdir()
    (tmp_path / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{tmp_path / "containers"}"\nrunroot = "{short_runroot}"\n')
    (tmp_path / "auth.json").write_text('{"auths": {}}')  # podman and skopeo keep logins here, not in /run
    env = {**os.environ, "HOME": str(tmp_path / "home"), "CONTAINERS_STORAGE_CONF": str(tmp_path / "storage.conf"),
           "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}
    env.pop("XDG_RUNTIME_DIR", None)
    server: Server | None = None
    try:
        async with aiohttp.ClientSession() as http:
            for index, block in enumerate(blocks):
                script = adapt(block, port)
                if script.startswith(str(REPO / "meridian") + " up"):
                    if server is not None:
                        await server.stop()
                    server = Server(script.strip(), work, env, port, tmp_path / f"up-{index}.log")
                    await server.ready(http, [port, port + 1] if "--regions us,eu" in script else [port])
                    continue
                result = await asyncio.to_thread(subprocess.run, ["bash", "-e", "-o", "pipefail", "-c", script], cwd=work,
                                                 env=env, capture_output=True, text=True, timeout=300)
                output = result.stdout + result.stderr
                assert result.returncode == 0, f"README block {index} failed:\n{block}\n{output}"
                assert not SCARY.search(output), f"README block {index} printed:\n{output}"
                if "_catalog" in block:
                    assert '"acme/hello"' in result.stdout
            assert server is not None
            await server.stop()
            server = None
    finally:
        if server is not None:
            server.kill()
    assert (work / "copy" / "index.json").is_file() and (work / "from-eu" / "index.json").is_file()
    assert (work / "pulled" / "notes.txt").read_text() == "some notes\n"
