"""Bad config fails at start with the key, the value and what was expected."""
from __future__ import annotations

import subprocess
import sys

import pytest

from shared.config import ConfigError, parse_config


def meridian(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "doc, key, value",
    [
        ({"DB_POOL_SIZE": "many"}, "DB_POOL_SIZE", "'many'"),
        ({"REGISTRY_STATE": "frozen"}, "REGISTRY_STATE", "'frozen'"),
        ({"SUPER_USERS": ["ok", 7]}, "SUPER_USERS[1]", "7"),
        ({"DB_URI": "mysql://x"}, "DB_URI", "'mysql://x'"),
        ({"FEATURE_STORAGE_REPLICATION": "sometimes"}, "FEATURE_STORAGE_REPLICATION", "'sometimes'"),
        ({"DISTRIBUTED_STORAGE_PREFERENCE": ["nowhere"]}, "DISTRIBUTED_STORAGE_PREFERENCE", "'nowhere'"),
        ({"DISTRIBUTED_STORAGE_CONFIG": {"x": ["FancyStorage", {}]}}, "DISTRIBUTED_STORAGE_CONFIG.x", "'FancyStorage'"),
        ({"DISTRIBUTED_STORAGE_CONFIG": {"x": ["S3Storage", {"s3_bucket": "b", "colour": "red"}]}},
         "DISTRIBUTED_STORAGE_CONFIG.x", "colour"),
        ({"DISTRIBUTED_STORAGE_CONFIG": {"x": ["LocalStorage", {}]}}, "DISTRIBUTED_STORAGE_CONFIG.x", "storage_path"),
    ],
)
def test_bad_values_name_key_and_value(doc, key, value):
    with pytest.raises(ConfigError) as caught:
        parse_config(doc)
    message = str(caught.value)
    assert key in message
    assert value in message


def test_unknown_quay_keys_are_accepted():
    config = parse_config({"FEATURE_BUILD_SUPPORT": True, "SERVER_HOSTNAME": "r.example.com"})
    assert config.server_hostname == "r.example.com"


def test_storage_preference_from_environment(monkeypatch):
    doc = {"DISTRIBUTED_STORAGE_CONFIG": {"us": ["LocalStorage", {"storage_path": "/a"}], "eu": ["LocalStorage", {"storage_path": "/b"}]}}
    assert parse_config(doc).preferred_locations() == ["us", "eu"]
    monkeypatch.setenv("QUAY_DISTRIBUTED_STORAGE_PREFERENCE", "eu us")
    assert parse_config(doc).preferred_locations() == ["eu", "us"]
    monkeypatch.setenv("MERIDIAN_DISTRIBUTED_STORAGE_PREFERENCE", "us")
    assert parse_config(doc).preferred_locations() == ["us"]
    monkeypatch.setenv("MERIDIAN_DISTRIBUTED_STORAGE_PREFERENCE", "mars")
    with pytest.raises(ConfigError, match="mars"):
        parse_config(doc)


def test_config_validate_command(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("SERVER_HOSTNAME: r.example.com\nDISTRIBUTED_STORAGE_CONFIG:\n  local: [LocalStorage, {storage_path: /tmp/x}]\n")
    result = meridian("config", "validate", str(good))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("SERVER_HOSTNAME: r.example.com\nDB_POOL_SIZE: lots\n")
    result = meridian("config", "validate", str(bad))
    assert result.returncode == 2
    assert "DB_POOL_SIZE" in result.stderr and "'lots'" in result.stderr


def test_gateway_refuses_to_start_on_bad_config(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("REGISTRY_STATE: paused\n")
    result = meridian("gateway", "--config", str(bad))
    assert result.returncode == 2
    assert "REGISTRY_STATE" in result.stderr and "'paused'" in result.stderr


def test_unparseable_yaml_is_reported(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("SERVER_HOSTNAME: [unclosed\n")
    result = meridian("config", "validate", str(bad))
    assert result.returncode == 2
    assert "not valid YAML" in result.stderr


def test_replication_without_preference_fails_saying_how(monkeypatch):
    monkeypatch.delenv("QUAY_DISTRIBUTED_STORAGE_PREFERENCE", raising=False)
    monkeypatch.delenv("MERIDIAN_DISTRIBUTED_STORAGE_PREFERENCE", raising=False)
    doc = {"FEATURE_STORAGE_REPLICATION": True,
           "DISTRIBUTED_STORAGE_CONFIG": {"us": ["LocalStorage", {"storage_path": "/a"}], "eu": ["LocalStorage", {"storage_path": "/b"}]}}
    with pytest.raises(ConfigError, match="QUAY_DISTRIBUTED_STORAGE_PREFERENCE"):
        parse_config(doc)
    monkeypatch.setenv("QUAY_DISTRIBUTED_STORAGE_PREFERENCE", "eu us")
    assert parse_config(doc).preferred_locations() == ["eu", "us"]


def test_blobstore_urls_need_a_secret_and_known_locations():
    base = {"DISTRIBUTED_STORAGE_CONFIG": {"us": ["LocalStorage", {"storage_path": "/a"}]}}
    with pytest.raises(ConfigError, match="MERIDIAN_SERVICE_SECRET"):
        parse_config(dict(base, MERIDIAN_BLOBSTORE_URLS={"us": "http://b:8081"}))
    with pytest.raises(ConfigError, match="MERIDIAN_BLOBSTORE_URLS.mars"):
        parse_config(dict(base, MERIDIAN_BLOBSTORE_URLS={"mars": "http://b:8081"}, MERIDIAN_SERVICE_SECRET="s" * 40))
    with pytest.raises(ConfigError, match="expected an http"):
        parse_config(dict(base, MERIDIAN_BLOBSTORE_URLS={"us": "ftp://b"}, MERIDIAN_SERVICE_SECRET="s" * 40))
