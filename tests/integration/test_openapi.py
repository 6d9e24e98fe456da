"""The OpenAPI document is valid, names every /api/v1 route and nothing else, and the running API
keeps to it under schemathesis (real HTTP against a real registry)."""
from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from services.gateway.api.routes import API_ROUTES


async def test_document_matches_the_route_table(world):
    async with world.reg.http.get(world.api("discovery")) as r:
        assert r.status == 200
        doc = await r.json()
    from openapi_spec_validator import validate

    validate(doc)
    documented = {(path, method.upper()) for path, item in doc["paths"].items() for method in item}
    assert documented == {(route.template, method) for route in API_ROUTES for method in route.ops}
    for path, item in doc["paths"].items():
        for operation in item.values():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), path
    # Every documented path answers (not 404 "no API endpoint") with its own example values.
    for route in API_ROUTES:
        path = re.sub(r"\{repository\}", "acme/private", route.template)
        path = re.sub(r"\{(orgname|namespace)\}", "acme", path)
        path = re.sub(r"\{\w+\}", "x", path)
        for method in route.ops:
            async with world.reg.http.request(method, world.api(path), headers=world.api_headers("root")) as r:
                body = await r.read()
            assert b"no API endpoint" not in body, (method, path)


async def test_api_keeps_to_its_document_under_schemathesis(world, tmp_path):
    # Real identifiers, so generated calls reach the handlers' logic rather than stopping at 404.
    (tmp_path / "schemathesis.toml").write_text(
        "[parameters]\n"
        '"path.orgname" = "acme"\n"path.namespace" = "acme"\n"path.repository" = "acme/private"\n'
        '"path.teamname" = "owners"\n"path.robot_shortname" = "ci"\n"path.username" = "rita"\n'
        '"path.membername" = "tom"\n'
        f'"path.digest" = "{world.private_digest}"\n'
    )
    executable = Path(sys.executable).with_name("schemathesis")
    process = await asyncio.create_subprocess_exec(
        str(executable), "--config-file", str(tmp_path / "schemathesis.toml"), "run", world.api("discovery"), "--url", world.api(""),
        "-H", f"Authorization: Bearer {world.api_tokens['root']}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--phases", "examples,coverage,fuzzing", "--max-examples", "8", "--seed", "1", "--no-color",
        "--generation-database", "none", "--workers", "1", "--request-timeout", "20",
        # These would revoke the credential in use or delete the fixtures; the permission matrix covers them.
        "--exclude-path", "/signout", "--exclude-path", "/user/tokens/{tokenid}", "--exclude-method-regex", "DELETE",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=200)
    text = output.decode(errors="replace")
    print(text[-2500:])
    assert process.returncode == 0, text[-6000:]
    assert re.search(r"\b[1-9]\d* passed\b", text) or "passed" in text, text[-3000:]
