"""No secret of a config is ever printed: bad configs full of known secrets go through every door an
operator meets (config validate, a service refusing to start, storage init, a running gateway whose
storage fails, its GET /config, exceptions in-process), and every output is searched for them."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aiohttp
import pytest
import yaml

from shared.config import ConfigError, check_config, parse_config
from shared.embedded import free_port, port_open
from tests.helpers import sha256

SECRETS = {
    "s3_secret": "S3-SECRET-4f9a1c0d",
    "s3_access": "AKIA-ACCESS-77b2e1",
    "db_password": "db-pass-9Xq2kk",
    "mail_password": "mail-pass-31kzpp",
    "nats_password": "nats-pass-5l1mq",
    "azure_key": "QXp1cmUta2V5LXRoYXQtaXMtc2VjcmV0LTQ0NDQ=",
    "sas": "sv=2024-01-01&sig=SAS-SIG-55aa77",
    "ldap": "ldap-pass-8812zz",
    "gcs_secret": "gcs-hmac-secret-1234",
    "url_password": "urlpass-6161qq",
    "akamai": "akamai-shared-0000x",
    "sts_secret": "sts-user-secret-abcd",
    "service_secret": "service-secret-" + "7" * 30,
    "database_secret": "0ce4f796-c295-415b-bf9d-b315114704b8",
}


def assert_clean(*outputs: str) -> None:
    for text in outputs:
        for name, secret in SECRETS.items():
            assert secret not in text, f"{name} leaked: ...{text[max(0, text.find(secret) - 80):text.find(secret) + 40]}..."


def bad_config() -> dict:
    s = SECRETS
    return {
        "SERVER_HOSTNAME": "registry.example.com",
        "DB_URI": f"mysql://quay:{s['db_password']}@db.example.com/quay",
        "NATS_URL": f"nat://meridian:{s['nats_password']}@nats.example.com:4222",
        "DB_POOL_SIZE": "lots",
        "MAIL_PASSWORD": [s["mail_password"]],
        "LDAP_ADMIN_PASSWD": s["ldap"],
        "DATABASE_SECRET_KEY": s["database_secret"],
        "MERIDIAN_SERVICE_SECRET": s["service_secret"],
        "MERIDIAN_LISTEN": "nonsense",
        "DISTRIBUTED_STORAGE_CONFIG": {
            "us": ["S3Storage", {"s3_bucket": "b", "s3_access_key": s["s3_access"], "s3_secret_key": s["s3_secret"],
                                 "colour": "red", "port": "https", "storage_path": "/r"}],
            "gcs": ["GoogleCloudStorage", {"access_key": s["s3_access"], "secret_key": s["gcs_secret"],
                                           "bucket_name": "g", "boto_timeout": "soon", "storage_path": "/g"}],
            "azure": ["AzureStorage", {"azure_account_name": "acct", "azure_account_key": s["azure_key"],
                                       "sas_token": s["sas"], "azure_container": "c", "storage_path": "/a",
                                       "endpoint": "https://acct.blob.example.com"}],
            "cdn": ["AkamaiS3Storage", {"akamai_domain": "cdn.example.com", "akamai_shared_secret": s["akamai"],
                                        "s3_region": "us-east-1", "storage_path": "/c",
                                        "endpoint_url": f"https://user:{s['url_password']}@s3.example.com"}],
            "sts": ["STSS3Storage", {"sts_role_arn": "arn:aws:iam::1:role/r", "sts_user_access_key": s["s3_access"],
                                     "sts_user_secret_key": s["sts_secret"], "s3_bucket": "s", "storage_path": "/s",
                                     "maximum_chunk_size_gb": [s["sts_secret"]]}],
            "wrong-shape": ["S3Storage", s["s3_secret"]],
        },
    }


def meridian(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_bad_config_errors_name_the_problems_but_no_secret(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(bad_config()))
    result = meridian("config", "validate", str(path))
    assert result.returncode == 2
    # It did report the problems (so the search below is not vacuous).
    for expected in ("DB_POOL_SIZE", "DB_URI", "NATS_URL", "MAIL_PASSWORD", "MERIDIAN_LISTEN", "us.colour", "us.port",
                     "gcs.boto_timeout", "azure.endpoint", "cdn: missing parameter(s) s3_bucket",
                     "sts.maximum_chunk_size_gb", "wrong-shape"):
        assert expected in result.stderr, expected
    assert "mysql://quay:***@db.example.com/quay" in result.stderr
    assert_clean(result.stdout, result.stderr)

    started = meridian("gateway", "--config", str(path))
    assert started.returncode == 2 and "DB_POOL_SIZE" in started.stderr
    assert_clean(started.stdout, started.stderr)

    with pytest.raises(ConfigError) as caught:
        parse_config(bad_config())
    assert len(caught.value.problems) >= 12
    assert_clean(str(caught.value), repr(caught.value.problems), repr(caught.value.args))
    _, problems = check_config(bad_config())
    assert_clean("\n".join(p.render("config.yaml") for p in problems))


def test_yaml_errors_show_no_secret(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"DISTRIBUTED_STORAGE_CONFIG:\n  us:\n    - S3Storage\n    - s3_secret_key: {SECRETS['s3_secret']}: oops\n")
    result = meridian("config", "validate", str(path))
    assert result.returncode == 2 and f"{path}:4: not valid YAML" in result.stderr
    assert "<unicode string>" not in result.stderr
    assert_clean(result.stdout, result.stderr)


def _dsn_with_password(dsn: str, password: str) -> str:
    scheme, rest = dsn.split("://", 1)
    userinfo, host = rest.split("@", 1) if "@" in rest else ("postgres", rest)
    return f"{scheme}://{userinfo.split(':')[0]}:{password}@{host}"


async def test_running_gateway_and_storage_init_print_no_secret(tmp_path, servers, database, bus_prefix, azurite):
    dead_port = free_port()  # nothing listens: every storage call fails
    s = SECRETS
    doc = {
        "SERVER_HOSTNAME": "registry.example.com",
        "DB_URI": _dsn_with_password(database, s["db_password"]),  # trust auth: any password is accepted
        "NATS_URL": servers.nats_url,
        "MERIDIAN_BUS_PREFIX": bus_prefix,
        "MERIDIAN_INSECURE_OPEN_ACCESS": True,
        "MAIL_SERVER": "mail.example.com", "MAIL_USERNAME": "meridian", "MAIL_PASSWORD": s["mail_password"],
        "DATABASE_SECRET_KEY": s["database_secret"],
        "LDAP_ADMIN_PASSWD": s["ldap"],
        "DISTRIBUTED_STORAGE_CONFIG": {
            "us": ["S3Storage", {"s3_bucket": "meridian-down", "s3_access_key": s["s3_access"],
                                 "s3_secret_key": s["s3_secret"], "storage_path": "/r",
                                 "endpoint_url": f"http://meridian:{s['url_password']}@127.0.0.1:{dead_port}"}],
            "az": ["AzureStorage", {"azure_account_name": "devstoreaccount1", "azure_account_key": s["azure_key"],
                                    "azure_container": "meridian-secrets", "storage_path": "/a", "endpoint_url": azurite}],
        },
        "MERIDIAN_SERVICE_SECRET": s["service_secret"],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))

    init = meridian("storage", "init", "--config", str(path))
    assert init.returncode == 1
    assert "us (S3Storage)" in init.stderr and "az (AzureStorage)" in init.stderr  # both failed, and said so
    assert_clean(init.stdout, init.stderr)

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "gateway", "--config", str(path),
                                "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None  # stderr=PIPE
    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port):
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "gateway did not start"
            await asyncio.sleep(0.1)
        data = os.urandom(1000)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/v2/acme/app/blobs/uploads/",
                                 params={"digest": sha256(data)}, data=data) as response:
                failed_push = (response.status, await response.text())
            async with http.get(f"http://127.0.0.1:{port}/config") as response:
                assert response.status == 200
                ui_config = await response.text()
        assert failed_push[0] >= 500  # the storage is down: the push failed, and was logged
        assert_clean(failed_push[1], ui_config)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
    assert "storage location not prepared" in stderr  # the failure reached the log...
    assert_clean(stdout, stderr)  # ...without a secret
