"""schemathesis over every /api/v1 operation of the OpenAPI document, at every auth level the cast of
tests/identity_world.py gives (anonymous, a plain user, an organisation owner, a superuser): bounded,
seeded examples (deterministic), and not one 5xx (issue 11). test_openapi.py checks the document and
the responses' conformance as a superuser; this one asks only "no server error", everywhere."""
from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

# Who, and what they must not run: calls that would end the credential in use (sign-out, revoking
# one's own token) or, for those allowed to, delete the fixtures the later calls need. Deletes as the
# superuser run on their own, with generated identifiers in place of the real ones (so they reach the
# handlers' checks and delete nothing the other runs need).
KEEP_CREDENTIAL = ["--exclude-path", "/signout", "--exclude-path", "/user/tokens/{tokenid}"]
KEEP_FIXTURES = ["--exclude-method-regex", "DELETE"]
# label: (actor, options, phases, real identifiers?)
# The coverage phase (boundary and wrong-typed values of every parameter and body field, ~30 calls per
# operation) runs as the superuser, who reaches every handler; every level gets seeded random
# (positive and negative) examples. MERIDIAN_FUZZ_EXAMPLES raises the bound for a longer local run.
LEVELS: dict[str, tuple[str, list[str], str, bool]] = {
    "anonymous": ("anonymous", [], "examples,fuzzing", True),
    "plain user": ("tom", KEEP_CREDENTIAL, "examples,fuzzing", True),
    "organisation owner": ("alice", KEEP_CREDENTIAL + KEEP_FIXTURES, "examples,fuzzing", True),
    "superuser": ("root", KEEP_CREDENTIAL + KEEP_FIXTURES, "examples,coverage,fuzzing", True),
    "superuser deletes": ("root", KEEP_CREDENTIAL + ["--include-method", "DELETE"], "examples,coverage,fuzzing", False),
}
MAX_EXAMPLES = int(os.environ.get("MERIDIAN_FUZZ_EXAMPLES", "4"))


def _config(world) -> str:
    """Real identifiers, so generated calls reach the handlers' logic rather than stopping at 404."""
    return ("[parameters]\n"
            '"path.orgname" = "acme"\n"path.namespace" = "acme"\n"path.repository" = "acme/private"\n'
            '"path.teamname" = "owners"\n"path.robot_shortname" = "ci"\n"path.username" = "rita"\n'
            '"path.membername" = "tom"\n"path.tag" = "v1"\n'
            f'"path.digest" = "{world.private_digest}"\n')


async def _run(world, label: str, directory: Path) -> tuple[int, str]:
    actor, options, phases, real = LEVELS[label]
    directory.mkdir()
    (directory / "schemathesis.toml").write_text(_config(world) if real else "")
    auth = [] if actor == "anonymous" else ["-H", f"Authorization: Bearer {world.api_tokens[actor]}"]
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(directory / "schemathesis.toml"), "run",
        world.api("discovery"), "--url", world.api(""), *auth, *options,
        "--checks", "not_a_server_error", "--phases", phases, "--max-examples", str(MAX_EXAMPLES),
        "--seed", "11", "--generation-database", "none", "--workers", "1", "--request-timeout", "20", "--no-color",
        cwd=directory, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=170)
    return process.returncode or 0, output.decode(errors="replace")


@pytest.mark.timeout(200)
async def test_no_api_operation_answers_5xx_at_any_auth_level(world, tmp_path):
    results = await asyncio.gather(*[_run(world, label, tmp_path / label.replace(" ", "-")) for label in LEVELS])
    failed = []
    for actor, (code, text) in zip(LEVELS, results, strict=True):
        print(f"--- {actor}\n{text[-1500:]}")
        if code != 0 or not re.search(r"\b[1-9]\d* passed\b", text):
            start = text.find("FAILURES")  # schemathesis's own section: each failing call with a curl to reproduce it
            end = text.find("WARNINGS", start) if start >= 0 else -1
            failed.append(f"--- {actor} (exit {code})\n{text[start:end][:8000] if start >= 0 else text[-5000:]}")
    assert not failed, "\n".join(failed)
