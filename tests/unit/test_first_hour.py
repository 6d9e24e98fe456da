"""The first hour's small rules: which log format, what the access log shows of a query, help texts,
`gc run` without `--once`, and `up --config` reading YAML like `config validate`."""
from __future__ import annotations

import io
import subprocess
import sys

import pytest
from aiohttp.test_utils import make_mocked_request

from services.cli import build_parser, default_addresses, reachable_address
from services.gateway.app import loggable_path
from shared.logging import wants_json


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_format_follows_the_terminal_unless_forced():
    assert wants_json(io.StringIO()) is True
    assert wants_json(_Terminal()) is False
    assert wants_json(_Terminal(), forced=True) is True
    assert wants_json(io.StringIO(), forced=False) is False


def test_log_flags_force_a_format():
    from services.cli import _log_json

    parse = build_parser().parse_args
    assert _log_json(parse(["up"])) is None
    assert _log_json(parse(["up", "--json"])) is True
    assert _log_json(parse(["up", "--pretty"])) is False
    with pytest.raises(SystemExit):
        parse(["up", "--json", "--pretty"])


@pytest.mark.parametrize(("target", "logged"), [
    ("/v2/acme/app/tags/list", "/v2/acme/app/tags/list"),
    ("/v2/acme/app/tags/list?n=5&last=v1", "/v2/acme/app/tags/list?n=5&last=v1"),
    ("/v2/auth?service=reg&access_token=abc&scope=repository:a/b:pull", "/v2/auth?service=reg&access_token=***&scope=repository:a/b:pull"),
    ("/blob?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA&password=p&apikey=k&code=c",
     "/blob?X-Amz-Signature=***&X-Amz-Credential=***&password=***&apikey=***&code=***"),
])
def test_access_log_masks_credentials_in_the_query(target, logged):
    assert loggable_path(make_mocked_request("GET", target)) == logged


def _help(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "services.cli", *args, "--help"], capture_output=True, text=True, check=True)
    return " ".join(result.stdout.split())  # argparse wraps lines wherever the terminal width says


def test_help_texts_are_complete():
    top = _help()
    assert "./meridian test" in top and "./meridian bench" in top
    up = _help("up")
    assert "(default: 127.0.0.1)" in up and "(default: 8080)" in up and "(default: .meridian)" in up
    assert "--json" in up and "--pretty" in up
    assert "(default: None)" not in up and "(default: False)" not in up
    for command in (("user", "create"), ("user", "token"), ("keys", "list"), ("migrate",), ("gc", "run")):
        assert "--data" in _help(*command), command


def test_gc_run_needs_no_once():
    args = build_parser().parse_args(["gc", "run", "--dry-run"])
    assert args.gc_command == "run" and args.dry_run and args.config is None
    assert build_parser().parse_args(["gc", "run", "--once"]).gc_command == "run"  # still accepted


def test_up_reports_yaml_errors_with_file_and_line(tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("SUPER_USERS: [admin]\nREGISTRY_TITLE: 'unclosed\n")
    result = subprocess.run([sys.executable, "-m", "services.cli", "up", "--config", str(config), "--data", str(tmp_path / "data")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{config}:3: not valid YAML" in result.stderr and "on line 2" in result.stderr, result.stderr
    assert not (tmp_path / "data" / "postgres").exists()  # nothing was started


@pytest.mark.parametrize(("listen", "reachable"), [
    ("127.0.0.1:8080", "127.0.0.1:8080"), ("0.0.0.0:5000", "127.0.0.1:5000"), (":5000", "127.0.0.1:5000"),
    ("::1:8080", "[::1]:8080"), ("[::1]:8080", "[::1]:8080"), (":::5000", "[::1]:5000"),
    ("192.0.2.7:80", "192.0.2.7:80"), ("registry.example:443", "registry.example:443"),
])
def test_reachable_address_is_the_address_listened_on_never_localhost(listen, reachable):
    assert reachable_address(listen) == reachable


def test_up_names_the_address_it_listens_on_unless_configured():
    """localhost may resolve to ::1 only while `up` listens on 127.0.0.1: the start-up hint and the /v2
    token realm (both SERVER_HOSTNAME) name the address listened on; a configured SERVER_HOSTNAME stays."""
    from services.gateway.auth import TokenAccess
    from shared.config import parse_config

    args = build_parser().parse_args(["up"])
    doc: dict = {}
    default_addresses(doc, args.host, args.port)
    assert doc == {"MERIDIAN_LISTEN": "127.0.0.1:8080", "SERVER_HOSTNAME": "127.0.0.1:8080"}
    assert TokenAccess(parse_config(doc), None, None).realm == "http://127.0.0.1:8080/v2/auth"  # type: ignore[arg-type]
    doc = {"MERIDIAN_LISTEN": "0.0.0.0:9000"}
    default_addresses(doc, "127.0.0.1", 8080)
    assert doc["SERVER_HOSTNAME"] == "127.0.0.1:9000"
    doc = {"SERVER_HOSTNAME": "registry.example.com"}
    default_addresses(doc, "0.0.0.0", 8080)
    assert doc == {"SERVER_HOSTNAME": "registry.example.com", "MERIDIAN_LISTEN": "0.0.0.0:8080"}
