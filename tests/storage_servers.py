"""Storage servers the driver suite needs beyond the shared SeaweedFS: Azurite (the Azure Storage
emulator, npm package pinned in tests/azurite/package-lock.json) and a SeaweedFS with accounts and
STS (AssumeRole) for STSS3Storage."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from shared.embedded import EmbeddedProcess, _wait, free_port, port_open, start_seaweedfs

AZURITE_DIR = Path(__file__).parent / "azurite"
# Azurite's well-known development account (public, documented by Microsoft for the emulator).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

STS_ADMIN_KEY = "sts-admin-key"
STS_ADMIN_SECRET = "sts-admin-secret-for-tests"
STS_ROLE_ARN = "arn:aws:iam::role/MeridianStorage"


def ensure_azurite() -> Path:
    """The azurite-blob binary, installed with `npm ci` from the lock file when it is missing or stale."""
    binary = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    installed = AZURITE_DIR / "node_modules" / ".package-lock.json"
    lock = AZURITE_DIR / "package-lock.json"
    if not binary.exists() or not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed for Azurite (the Azure Storage emulator): apt-get install nodejs npm")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AZURITE_DIR, check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
    return binary


def start_azurite(folder: Path) -> EmbeddedProcess:
    binary = ensure_azurite()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with open(folder / "azurite.log", "ab") as log:
        process = subprocess.Popen(
            [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(folder),
             # The Python SDK may speak a newer API version than this Azurite knows; the calls the driver
             # makes exist in both.
             "--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    _wait(lambda: port_open("127.0.0.1", port), 60, "azurite", process)
    return EmbeddedProcess(process, f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}", folder)


def start_sts_seaweedfs(folder: Path) -> EmbeddedProcess:
    """A SeaweedFS whose S3 API checks credentials (one account) and whose STS lets that account
    assume STS_ROLE_ARN, a role allowed every S3 action."""
    folder.mkdir(parents=True, exist_ok=True)
    accounts = folder / "s3.json"
    accounts.write_text(json.dumps({"identities": [{
        "name": "admin", "credentials": [{"accessKey": STS_ADMIN_KEY, "secretKey": STS_ADMIN_SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    iam = folder / "iam.json"
    iam.write_text(json.dumps({
        "sts": {"tokenDuration": "1h", "maxSessionLength": "12h", "issuer": "meridian-tests",
                "signingKey": "bWVyaWRpYW4tdGVzdHMtc3RzLXNpZ25pbmcta2V5LTMy"},
        "providers": [],
        "policy": {"defaultEffect": "Deny"},
        "roles": [{"roleName": "MeridianStorage", "roleArn": STS_ROLE_ARN,
                   "trustPolicy": {"Version": "2012-10-17", "Statement": [
                       {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["sts:AssumeRole"]}]},
                   "attachedPolicies": ["S3All"]}],
        "policies": [{"name": "S3All", "document": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}]}}],
    }))
    return start_seaweedfs(folder / "data", extra_args=(f"-s3.config={accounts}", f"-s3.iam.config={iam}"))
