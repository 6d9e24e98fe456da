"""The first hour with `meridian up`, as a real process: what it prints (JSON logs off a terminal,
readable ones on it, an access line per request with no secret, one line at shutdown and nothing
else), region names with --regions, a data folder that cannot silently switch between one region
and several, CLI commands that reach up's embedded database, and oras with its defaults."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from shared.embedded import free_port, port_open
from tests.e2e.clients import attempt
from tests.helpers import OCI_MANIFEST, eventually, push_image, sha256

pytestmark = pytest.mark.e2e
MERIDIAN = [sys.executable, "-m", "services.cli"]
BANNER = ("Meridian registry listening on", "  open access:", "  try:", "region ", "  a push to one region")


class Up:
    """`meridian up` with its output in a file (stderr is no terminal) and its own TMPDIR."""

    def __init__(self, root: Path, *args: str, data: Path | None = None, port: int | None = None) -> None:
        """root: the data_root fixture's folder (see tests/e2e/conftest.py)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = data or root / "data"
        self.tmpdir = root / "tmp"
        self.tmpdir.mkdir(exist_ok=True)
        self.log_path = root / f"up-{self.port}.log"
        self.env = {**os.environ, "TMPDIR": str(self.tmpdir)}
        self.env.pop("XDG_RUNTIME_DIR", None)
        self.process = subprocess.Popen([*MERIDIAN, "up", "--data", str(self.data), "--port", str(self.port), *args],
                                        stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT, env=self.env)  # noqa: SIM115

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    async def ready(self, http: aiohttp.ClientSession, url: str | None = None) -> None:
        async def answering():
            if self.process.poll() is not None:
                raise AssertionError(self.output)
            try:
                async with http.get(f"{url or self.url}/v2/") as r:
                    return r.status in (200, 401)  # 401: a config without open access
            except aiohttp.ClientError:
                return False

        await eventually(answering, timeout=90, what="meridian up to answer")

    async def stop(self) -> str:
        """Ctrl-C; what it printed from then on."""
        before = len(self.output)
        self.process.send_signal(signal.SIGINT)
        await asyncio.to_thread(self.process.wait, 60)
        assert self.process.returncode == 0, self.output
        return self.output[before:]

    def kill(self) -> None:
        """After a failure: Ctrl-C first, so `up` stops the NATS and PostgreSQL it started."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def log_events(output: str) -> list[dict]:
    events = []
    for line in output.splitlines():
        if line.startswith(BANNER) or line == "Meridian stopped.":
            continue
        events.append(json.loads(line))  # anything else must be one JSON event
    return events


async def test_json_logs_access_lines_and_a_clean_shutdown(data_root):
    up = Up(data_root)
    try:
        async with aiohttp.ClientSession() as http:
            await up.ready(http)
            await push_image(_Client(http, up.url), "acme/app", "v1")
            async with http.get(f"{up.url}/v2/acme/app/tags/list", params={"n": "5", "access_token": "s3cr3t-t0ken"},
                                headers={"X-Request-ID": "first-hour-1"}) as r:
                assert r.status == 200
            async with http.get(f"{up.url}/v2/acme/missing/manifests/v1", headers={"X-Request-ID": "first-hour-2"}) as r:
                assert r.status == 404

            async def logged():
                return [e for e in log_events(up.output) if e.get("event") == "request"
                        and e.get("request_id", "").startswith("first-hour-")]

            lines = await eventually(lambda: _at_least(logged, 2), what="access-log lines")
        first, refused = sorted(lines, key=lambda e: e["request_id"])
        assert first["method"] == "GET" and first["status"] == 200 and first["bytes"] > 0
        assert first["path"] == "/v2/acme/app/tags/list?n=5&access_token=***"
        assert isinstance(first["duration_ms"], float) and first["region"] == "default"
        assert refused["status"] == 404 and refused["path"] == "/v2/acme/missing/manifests/v1"
        pushes = [e for e in log_events(up.output) if e.get("event") == "request" and e["method"] == "PUT"]
        assert pushes and all(e["status"] == 201 for e in pushes)
        assert "s3cr3t-t0ken" not in up.output
        assert _says_open_access(up.output), up.output
        tail = await up.stop()
        assert tail == "Meridian stopped.\n", tail
        assert "Warning" not in up.output and "warning" not in up.output, up.output
        assert list(up.tmpdir.iterdir()) == []  # no runtime-0 or other leftovers in the temporary folder
        assert not port_open("127.0.0.1", up.port)
    finally:
        up.kill()


def _says_open_access(output: str) -> bool:
    """Whether `up` warned at start that anyone may push and pull."""
    return any(line.startswith("  open access: anyone may push and pull") for line in output.splitlines())


async def _at_least(source, count: int):
    found = await source()
    return found if len(found) >= count else None


class _Client:
    """What tests.helpers.push_image needs of a registry."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url

    def v2(self, path: str) -> str:
        return f"{self.url}/v2/{path}"


async def test_readable_logs_on_a_terminal(data_root):
    port = free_port()
    controller, terminal = pty.openpty()
    env = {**os.environ, "TMPDIR": str(data_root)}
    process = subprocess.Popen([*MERIDIAN, "up", "--data", str(data_root / "data"), "--port", str(port)],
                               stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + 90
        while b"gateway ready" not in seen and time.monotonic() < deadline:
            chunk = await asyncio.to_thread(os.read, controller, 4096)
            if not chunk:
                break
            seen += chunk
        text = seen.decode(errors="replace")
        line = next(line for line in text.splitlines() if "gateway ready" in line)
        assert not line.lstrip().startswith("{") and "[info" in line and "write_location=local" in line, text
        assert not any(line.lstrip().startswith("{") for line in text.splitlines()), text
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.to_thread(process.wait, 60)
        os.close(controller)
    assert process.returncode == 0


async def test_regions_are_named_in_logs_and_data_folders_keep_their_layout(data_root, port_pair):
    port = port_pair
    data = data_root / "regions"
    up = Up(data_root, "--regions", "us,eu", data=data, port=port)
    try:
        async with aiohttp.ClientSession() as http:
            await up.ready(http, f"http://127.0.0.1:{port + 1}")
            blob = b"pushed in us"
            async with http.post(f"{up.url}/v2/acme/app/blobs/uploads/", params={"digest": sha256(blob)}, data=blob) as r:
                assert r.status == 201

            async def replicated():
                events = log_events(up.output)
                return [e for e in events if e.get("event") == "blob replicated"]

            await eventually(replicated, timeout=60, what="replication to eu")
        events = log_events(up.output)
        regions = {e["region"] for e in events}
        assert {"us", "eu"} <= regions and "all" not in regions
        assert {e["region"] for e in events if e.get("event") == "gateway ready"} == {"us", "eu"}
        push = next(e for e in events if e.get("event") == "request" and e["method"] == "POST")
        assert push["region"] == "us"
        assert next(e for e in events if e.get("event") == "blob replicated")["region"] == "eu"
        assert _says_open_access(up.output), up.output  # without --config, several regions are open too
        assert (await up.stop()) == "Meridian stopped.\n"
    finally:
        up.kill()
    # The same folder as one region: refused, saying what to do; nothing is started.
    code, out = await attempt(*MERIDIAN, "up", "--data", str(data), "--port", str(free_port()))
    assert code == 2 and "--regions eu,us" in out and "another folder" not in out and "own folder" in out, out
    code, out = await attempt(*MERIDIAN, "up", "--data", str(data), "--regions", "us", "--port", str(free_port()))
    assert code == 2 and "eu" in out and "--regions us,eu" in out, out


async def test_one_region_folder_is_not_reused_for_regions(data_root):
    up = Up(data_root)
    try:
        async with aiohttp.ClientSession() as http:
            await up.ready(http)
            await push_image(_Client(http, up.url), "acme/app", "v1")
        await up.stop()
    finally:
        up.kill()
    code, out = await attempt(*MERIDIAN, "up", "--data", str(up.data), "--regions", "us,eu", "--port", str(free_port()))
    assert code == 2 and "one-region registry" in out and f"--data {up.data}-regions" in out, out
    assert not (up.data / "storage-us").exists()


async def test_cli_commands_reach_the_embedded_database_of_up(tmp_path, data_root):
    config = tmp_path / "config.yaml"
    config.write_text("SUPER_USERS: [admin]\n")
    data = data_root / "data"
    cli = lambda *args: [*MERIDIAN, *args, "--config", str(config), "--data", str(data)]  # noqa: E731
    up = Up(data_root, "--config", str(config), data=data)
    try:
        async with aiohttp.ClientSession() as http:
            await up.ready(http)
            process = await asyncio.create_subprocess_exec(*cli("user", "create", "admin", "--password-stdin"),
                                                           stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                           stderr=asyncio.subprocess.PIPE)
            created, note = await process.communicate(b"first-hour-password\n")
            assert process.returncode == 0, note.decode()
            assert created.decode().strip() == "created user admin (a superuser: listed in SUPER_USERS)"
            assert "embedded database" in note.decode()
            # The user is in the database `up` serves: it signs in through /v2/auth.
            basic = {"Authorization": "Basic " + base64.b64encode(b"admin:first-hour-password").decode()}
            async with http.get(f"{up.url}/v2/auth", params={"service": f"localhost:{up.port}",
                                                              "scope": "repository:admin/app:pull,push"}, headers=basic) as r:
                assert r.status == 200 and (await r.json())["token"]
            code, out = await attempt(*cli("user", "token", "admin"))
            assert code == 0 and len(out.strip().splitlines()[-1]) > 20, out
            code, out = await attempt(*cli("migrate"))
            assert code == 0 and "the database is up to date" in out, out
            code, out = await attempt(*cli("keys", "list"))
            assert code == 0, out
            code, out = await attempt(*MERIDIAN, "gc", "run", "--dry-run", "--config", str(config), "--data", str(data))
            assert code == 0, out
            report = json.loads(out[out.index("{"):out.rindex("}") + 1])
            assert "blob_list" in report
        assert (await up.stop()) == "Meridian stopped.\n"
    finally:
        up.kill()
    # With `up` stopped, the command starts the folder's database for itself and stops it after.
    code, out = await attempt(*cli("user", "token", "admin"))
    assert code == 0, out
    assert subprocess.run(["pgrep", "-f", f"-D {data / 'postgres'}"], capture_output=True).stdout == b""


async def test_oras_defaults_artifact_type_and_referrers_on_meridian_up(tmp_path, data_root):
    import oras.client
    import oras.oci

    up = Up(data_root)
    host = f"127.0.0.1:{up.port}"
    notes = tmp_path / "notes.txt"
    notes.write_text("hello from oras\n")
    sbom = tmp_path / "sbom.json"
    sbom.write_text('{"packages": ["meridian"]}')
    try:
        async with aiohttp.ClientSession() as http:
            await up.ready(http)

            def push_with_defaults():
                client = oras.client.OrasClient(hostname=host, insecure=True)
                os.chdir(tmp_path)  # oras wants pushed files under the working directory
                client.push(files=["notes.txt"], target=f"{host}/acme/notes:v1")
                return client.pull(target=f"{host}/acme/notes:v1", outdir=str(tmp_path / "pulled"))

            cwd = os.getcwd()
            try:
                pulled = await asyncio.to_thread(push_with_defaults)
            finally:
                os.chdir(cwd)
            assert [Path(p).read_text() for p in pulled] == ["hello from oras\n"]
            async with http.get(f"{up.url}/v2/acme/notes/manifests/v1", headers={"Accept": OCI_MANIFEST}) as r:
                manifest = await r.json()
            assert manifest["config"]["mediaType"] == "application/vnd.unknown.config.v1+json"

            subject_digest, subject_body = await push_image(_Client(http, up.url), "acme/app", "v1")
            artifact_type = "application/vnd.example.sbom.v1+json"

            def push_artifact(with_subject: bool, kind: str) -> str:
                client = oras.client.OrasClient(hostname=host, insecure=True)
                container = client.get_container(f"{host}/acme/app:{kind.rsplit('.', 1)[-1].replace('+', '-')}")
                layer = oras.oci.NewLayer(str(sbom), media_type="application/spdx+json")
                layer["annotations"] = {"org.opencontainers.image.title": "sbom.json"}
                empty = tmp_path / "empty.json"
                empty.write_text("{}")
                config = oras.oci.NewLayer(str(empty), media_type="application/vnd.oci.empty.v1+json")
                for path, descriptor in ((sbom, layer), (empty, config)):
                    client._check_200_response(client.upload_blob(str(path), container, descriptor))
                manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
                            "config": config, "layers": [layer]}
                if with_subject:
                    manifest["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject_digest,
                                           "size": len(subject_body)}
                response = client.upload_manifest(manifest, container)
                client._check_200_response(response)
                return response.headers["Docker-Content-Digest"]

            alone = await asyncio.to_thread(push_artifact, False, artifact_type)
            sbom_digest = await asyncio.to_thread(push_artifact, True, artifact_type)
            other = await asyncio.to_thread(push_artifact, True, "application/vnd.example.signature.v1+json")
            async with http.get(f"{up.url}/v2/acme/app/referrers/{subject_digest}", params={"artifactType": artifact_type}) as r:
                assert r.status == 200 and r.headers["OCI-Filters-Applied"] == "artifactType"
                found = (await r.json())["manifests"]
            assert [(m["digest"], m["artifactType"]) for m in found] == [(sbom_digest, artifact_type)]
            async with http.get(f"{up.url}/v2/acme/app/referrers/{subject_digest}") as r:
                assert {m["digest"] for m in (await r.json())["manifests"]} == {sbom_digest, other}
            assert alone not in {sbom_digest, other}
        await up.stop()
    finally:
        up.kill()
