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
        ({"MERIDIAN_LOOKUP_CACHE_SEC": -1}, "MERIDIAN_LOOKUP_CACHE_SEC", "-1"),
        ({"MERIDIAN_LOOKUP_CACHE_SEC": 60}, "MERIDIAN_LOOKUP_CACHE_SEC", "60"),
        ({"MERIDIAN_LOOKUP_CACHE_SEC": "soon"}, "MERIDIAN_LOOKUP_CACHE_SEC", "'soon'"),
        # Below a database round trip the cache is never usable and the check loop asks thousands of times a second.
        ({"MERIDIAN_LOOKUP_CACHE_SEC": 0.000001}, "MERIDIAN_LOOKUP_CACHE_SEC", "1e-06"),
        ({"MERIDIAN_OUTBOX_RELAY_AFTER_SEC": 0}, "MERIDIAN_OUTBOX_RELAY_AFTER_SEC", "0"),
        ({"MERIDIAN_OUTBOX_RELAY_AFTER_SEC": -5}, "MERIDIAN_OUTBOX_RELAY_AFTER_SEC", "-5"),
        ({"PROXY_COUNT": -1}, "PROXY_COUNT", "-1"),
        ({"PROXY_COUNT": "x"}, "PROXY_COUNT", "'x'"),
        ({"PROXY_COUNT": True}, "PROXY_COUNT", "True"),
        ({"PROXY_COUNT": 1.5}, "PROXY_COUNT", "1.5"),
    ],
)
def test_bad_values_name_key_and_value(doc, key, value):
    with pytest.raises(ConfigError) as caught:
        parse_config(doc)
    message = str(caught.value)
    assert key in message
    assert value in message


def test_proxy_count_is_read_as_quay_writes_it():
    assert parse_config({}).proxy_count == 0
    assert parse_config({"PROXY_COUNT": 2}).proxy_count == 2
    assert parse_config({"PROXY_COUNT": "1"}).proxy_count == 1


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


# ---- Quay's config as operators write it (issue 18) and config validate (issue 13) -------------------

from shared.config import S3StorageParams, check_config, parse_listen  # noqa: E402


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_quay_value_types_numbers_and_booleans_as_strings():
    config = parse_config({
        "DB_POOL_SIZE": "12", "FEATURE_STORAGE_REPLICATION": "false", "GARBAGE_COLLECTION_FREQUENCY": "45",
        "FEATURE_GARBAGE_COLLECTION": "False", "MAIL_USE_TLS": "yes", "MAIL_PORT": "25", "MAIL_PASSWORD": 123456,
        "DISTRIBUTED_STORAGE_CONFIG": {
            "rhocs": ["RHOCSStorage", {"access_key": "a", "secret_key": "s", "bucket_name": "b", "hostname": "h",
                                       "is_secure": "true", "port": "443", "storage_path": "/datastorage/registry"}],
            "s3": ["S3Storage", {"host": "s3.amazon.com", "port": "443", "s3_bucket": "b", "storage_path": "/r"}],
        },
    })
    assert (config.db_pool_size, config.feature_storage_replication, config.garbage_collection_frequency) == (12, False, 45.0)
    assert (config.feature_garbage_collection, config.mail_use_tls, config.mail_port) == (False, True, 25)
    assert config.mail_password == "123456"  # a password of digits, read by YAML as a number
    locations = config.storage_locations()
    assert locations["rhocs"].params.s3().endpoint_url == "https://h:443"
    assert locations["s3"].params.s3().endpoint_url == "https://s3.amazon.com:443"


def test_real_mistakes_keep_clear_errors():
    _, problems = check_config({"FEATURE_STORAGE_REPLICATION": "sometimes", "DB_POOL_SIZE": "twelve",
                                "DISTRIBUTED_STORAGE_CONFIG": {"x": ["RHOCSStorage", {"is_secure": "ture"}]}})
    text = "\n".join(p.render("config.yaml") for p in problems)
    assert "key FEATURE_STORAGE_REPLICATION: value 'sometimes' is invalid: expected true or false" in text
    assert "key DB_POOL_SIZE: value 'twelve' is invalid: expected a whole number" in text
    assert "key DISTRIBUTED_STORAGE_CONFIG.x.is_secure: value 'ture' is invalid: expected true or false" in text


def test_s3_endpoints_follow_quays_rules():
    def url(**params):
        return S3StorageParams(s3_bucket="b", storage_path="/r", **params).s3().endpoint_url

    assert url(host="http://127.0.0.1", port=9000) == "http://127.0.0.1:9000"
    assert url(host="s3.example.com:8443", port=443) == "https://s3.example.com:8443"
    assert url(host="s3.example.com", is_secure=False) == "http://s3.example.com"
    assert url(s3_region="eu-west-1") == "https://s3.eu-west-1.amazonaws.com"
    assert url(s3_region="cn-north-1") == "https://s3.cn-north-1.amazonaws.com.cn"
    assert url(endpoint_url="https://minio:9000", host="ignored") == "https://minio:9000"
    gcs = parse_config({"DISTRIBUTED_STORAGE_CONFIG": {"g": ["GoogleCloudStorage", {
        "access_key": "GOOG1", "secret_key": "s", "bucket_name": "b", "storage_path": "/quaygcp"}]}})
    settings = gcs.storage_locations()["g"].params.s3()
    assert (settings.endpoint_url, settings.list_version, settings.batch_delete) == ("https://storage.googleapis.com", 1, False)
    sts = parse_config({"DISTRIBUTED_STORAGE_CONFIG": {"s": ["STSS3Storage", {
        "sts_role_arn": "arn:aws:iam::1:role/r", "sts_user_access_key": "k", "sts_user_secret_key": "s",
        "s3_bucket": "b", "storage_path": "/s", "s3_region": "eu-west-1"}]}})
    role = sts.storage_locations()["s"].params.s3().assume_role
    assert (role.role_arn, role.access_key, role.region) == ("arn:aws:iam::1:role/r", "k", "eu-west-1")


def test_cdn_drivers_keep_their_cdn_host():
    config = parse_config({"DISTRIBUTED_STORAGE_CONFIG": {
        "cf": ["CloudFrontedS3Storage", {"cloudfront_distribution_domain": "d1.cloudfront.net", "cloudfront_key_id": "K",
                                         "cloudfront_privatekey_filename": "k.pem", "s3_bucket": "b", "s3_region": "us-east-1",
                                         "storage_path": "/r"}],
        "fl": ["CloudFlareStorage", {"cloudflare_domain": "cdn.example.com", "cloudflare_privatekey_filename": "k.pem",
                                     "s3_bucket": "b", "s3_region": "us-east-1", "storage_path": "/r"}],
        "ak": ["AkamaiS3Storage", {"akamai_domain": "ak.example.com", "akamai_shared_secret": "x", "s3_bucket": "b",
                                   "s3_region": "us-east-1", "storage_path": "/r"}]}})
    assert {n: loc.params.s3().cdn_host for n, loc in config.storage_locations().items()} == {
        "cf": "d1.cloudfront.net", "fl": "cdn.example.com", "ak": "ak.example.com"}


@pytest.mark.parametrize("driver, instead", [("SwiftStorage", "S3Storage"), ("MultiCDNStorage", "CloudFrontedS3Storage")])
def test_swift_and_multicdn_are_refused_saying_what_to_use(driver, instead):
    with pytest.raises(ConfigError) as caught:
        parse_config({"DISTRIBUTED_STORAGE_CONFIG": {"x": [driver, {"storage_path": "/r"}]}})
    assert f"driver {driver} is not supported" in str(caught.value) and instead in str(caught.value)


def test_unknown_driver_lists_the_drivers():
    with pytest.raises(ConfigError) as caught:
        parse_config({"DISTRIBUTED_STORAGE_CONFIG": {"x": ["FakeStorage", {}]}})
    for driver in ("LocalStorage", "S3Storage", "GoogleCloudStorage", "AzureStorage", "STSS3Storage", "AkamaiS3Storage"):
        assert driver in str(caught.value)


def test_every_error_at_once_with_file_and_line(tmp_path):
    path = write(tmp_path, "SERVER_HOSTNAME: r.example.com\nDB_POOL_SIZE: lots\nREGISTRY_STATE: frozen\n"
                           "DISTRIBUTED_STORAGE_CONFIG:\n  us:\n    - S3Storage\n    - s3_bucket: b\n      colour: red\n"
                           "      storage_path: /r\nMERIDIAN_GC_LISTEN: nowhere\n")
    result = meridian("config", "validate", str(path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert f"{path}:2: key DB_POOL_SIZE: value 'lots' is invalid: expected a whole number" in lines
    assert f"{path}:3: key REGISTRY_STATE: value 'frozen' is invalid: expected one of normal, readonly" in lines
    assert any(line.startswith(f"{path}:8: key DISTRIBUTED_STORAGE_CONFIG.us.colour: unknown parameter of S3Storage")
               for line in lines)
    assert any(line.startswith(f"{path}:10: key MERIDIAN_GC_LISTEN: value 'nowhere' is invalid: expected host:port")
               for line in lines)
    assert lines[-1].endswith("4 error(s); nothing was started")


def test_yaml_errors_name_file_and_line(tmp_path):
    path = write(tmp_path, "SERVER_HOSTNAME: r.example.com\nDISTRIBUTED_STORAGE_CONFIG:\n  us: [LocalStorage, {storage_path: /x}\n")
    result = meridian("config", "validate", str(path))
    assert result.returncode == 2
    assert f"{path}:4: not valid YAML" in result.stderr
    assert "<unicode string>" not in result.stderr


@pytest.mark.parametrize("key", ["MERIDIAN_LISTEN", "MERIDIAN_BLOBSTORE_LISTEN", "MERIDIAN_GC_LISTEN",
                                 "MERIDIAN_HEALTH_LISTEN", "MERIDIAN_REPLICATOR_LISTEN"])
@pytest.mark.parametrize("value", ["nonsense", "0.0.0.0", "0.0.0.0:0", "0.0.0.0:70000", "300.1.1.1:80", "[zz]:80", "a b:80"])
def test_listen_addresses_are_checked(key, value):
    with pytest.raises(ConfigError) as caught:
        parse_config({key: value})
    assert f"key {key}: value {value!r} is invalid" in str(caught.value)


def test_good_listen_addresses():
    assert parse_listen("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_listen("[::]:8081") == ("::", 8081)
    assert parse_listen("localhost:80") == ("localhost", 80)
    assert parse_listen(":9000") == ("0.0.0.0", 9000)
    parse_config({"MERIDIAN_LISTEN": "127.0.0.1:8080", "MERIDIAN_HEALTH_LISTEN": "[::1]:8084"})


def test_unknown_keys_warn_with_a_suggestion_and_do_not_fail(tmp_path):
    path = write(tmp_path, "DB_POOLSIZE: 5\nsuper_users: [admin]\nDISTRIBUTED_STORAGE_CONFIG:\n"
                           "  local: [LocalStorage, {storage_path: /tmp/x}]\n")
    result = meridian("config", "validate", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{path}:1: warning: key DB_POOLSIZE: unknown key, ignored (did you mean DB_POOL_SIZE?)" in result.stderr
    assert "key super_users: unknown key, ignored (did you mean SUPER_USERS?)" in result.stderr
    assert "2 warning(s)" in result.stdout


def test_quay_keys_meridian_ignores_load_silently():
    doc = {"DB_CONNECTION_ARGS": {"autorollback": True}, "BUILDLOGS_REDIS": {"host": "r", "port": 6379},
           "USER_EVENTS_REDIS": {"host": "r"}, "DATABASE_SECRET_KEY": "x", "FEATURE_USER_CREATION": True,
           "CREATE_NAMESPACE_ON_PUSH": True, "SETUP_COMPLETE": True, "SECRET_KEY": "y", "TESTING": False,
           "FEATURE_BUILD_SUPPORT": False, "MYCOMPANY_LOGIN_CONFIG": {"CLIENT_ID": "x"}, "AUTHENTICATION_TYPE": "Database",
           "FEATURE_IMMUTABLE_TAGS": False}
    config, problems = check_config(doc)
    assert config is not None and problems == []


@pytest.mark.parametrize("key, value, why", [("AUTHENTICATION_TYPE", "LDAP", "own database"),
                                             ("FEATURE_RESTRICTED_USERS", True, "restricted users"),
                                             ("FEATURE_IMMUTABLE_TAGS", "true", "immutable"),
                                             ("FEATURE_FIPS", True, "FIPS")])
def test_quay_values_meridian_cannot_honour_are_refused(key, value, why):
    with pytest.raises(ConfigError) as caught:
        parse_config({key: value})
    assert f"key {key}: value {value!r} is refused" in str(caught.value) and why in str(caught.value)


def test_region_and_preference_from_the_environment():
    doc = {"MERIDIAN_REGION": "from-file", "DISTRIBUTED_STORAGE_CONFIG": {
        "us": ["LocalStorage", {"storage_path": "/a"}], "eu": ["LocalStorage", {"storage_path": "/b"}]}}
    assert parse_config(doc, environ={}).meridian_region == "from-file"
    config = parse_config(doc, environ={"MERIDIAN_REGION": "eu-west", "QUAY_DISTRIBUTED_STORAGE_PREFERENCE": "eu us"})
    assert (config.meridian_region, config.preferred_locations()) == ("eu-west", ["eu", "us"])
    with pytest.raises(ConfigError, match="MERIDIAN_REGION"):
        parse_config(doc, environ={"MERIDIAN_REGION": " "})


def test_another_regions_location_needs_only_what_reaches_it():
    doc = {"MERIDIAN_SERVICE_SECRET": "s" * 40,
           "DISTRIBUTED_STORAGE_CONFIG": {
               "us": ["S3Storage", {"s3_bucket": "meridian-us", "host": "s3.us.example.com", "storage_path": "/r"}],
               "eu": ["S3Storage", {}]},  # a placeholder: eu's bucket and keys stay in eu
           "MERIDIAN_BLOBSTORE_URLS": {"us": "https://blobs.us.example.com", "eu": "https://blobs.eu.example.com"}}
    config = parse_config(doc, environ={"QUAY_DISTRIBUTED_STORAGE_PREFERENCE": "us eu"})
    assert config.directly_opened_locations() == ["us"]
    with pytest.raises(ConfigError) as caught:  # in eu, eu is the region's own location: it needs its bucket
        parse_config(doc, environ={"QUAY_DISTRIBUTED_STORAGE_PREFERENCE": "eu us"})
    assert ("DISTRIBUTED_STORAGE_CONFIG.eu: missing parameter(s) storage_path, s3_bucket of S3Storage: this region's own location"
            in str(caught.value))
    without_url = {**doc, "MERIDIAN_BLOBSTORE_URLS": {"us": "https://blobs.us.example.com"}}
    with pytest.raises(ConfigError, match="eu: missing parameter.*no MERIDIAN_BLOBSTORE_URLS entry"):
        parse_config(without_url, environ={"QUAY_DISTRIBUTED_STORAGE_PREFERENCE": "us eu"})


def test_storage_init_creates_local_folders(tmp_path):
    path = write(tmp_path, f"DISTRIBUTED_STORAGE_CONFIG:\n  local: [LocalStorage, {{storage_path: {tmp_path / 'store'}}}]\n")
    result = meridian("storage", "init", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "local (LocalStorage): created" and (tmp_path / "store").is_dir()
    assert meridian("storage", "init", "--config", str(path)).stdout.strip() == "local (LocalStorage): exists"
    result = meridian("storage", "init", "--config", str(path), "--location", "mars")
    assert result.returncode == 2 and "--location mars" in result.stderr


def test_operators_doc_lists_every_quay_key():
    from pathlib import Path

    from shared.config import _FIELDS, REFUSED_VALUES
    from shared.quaykeys import IGNORED_QUAY_KEYS

    doc = (Path(__file__).parents[2] / "docs" / "operators.md").read_text()
    keys = set(_FIELDS) | set(REFUSED_VALUES) | {k for keys in IGNORED_QUAY_KEYS.values() for k in keys}
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert not missing, f"docs/operators.md does not list {missing}"
