"""Token scopes asked of /v2/auth (services/gateway/v2/token.py parse_scope)."""
from __future__ import annotations

import pytest

from services.gateway.v2.token import parse_scope
from shared.errors import RegistryError

HOST = "registry.example.com"

PARSED = [
    # (scope, (repository, actions) or None)
    ("repository:acme/app:pull", ("acme/app", {"pull"})),
    ("repository:acme/app:pull,push", ("acme/app", {"pull", "push"})),
    ("repository:acme/app:push,pull,delete", ("acme/app", {"pull", "push", "delete"})),
    ("repository:acme/app:*", ("acme/app", {"*"})),
    ("repository:acme/app:pull,pull", ("acme/app", {"pull"})),
    (f"repository:{HOST}/acme/app:pull", ("acme/app", {"pull"})),  # the host prefix is dropped
    # Only this registry's host is dropped; anything else is part of the (nested) name.
    ("repository:other.example.com/acme/app:pull", ("other.example.com/acme/app", {"pull"})),
    ("repository:acme/app/sub:pull", ("acme/app/sub", {"pull"})),
    ("registry:catalog:*", None),  # not a repository scope: /v2/auth handles it
    ("registry:anything", None),
]


@pytest.mark.parametrize("scope, expected", PARSED)
def test_parsed(scope, expected):
    assert parse_scope(scope, HOST) == expected


REFUSED = [
    # (scope, code)
    ("repository:acme/app:fly", "UNSUPPORTED"),
    ("repository:acme/app:pull,fly", "UNSUPPORTED"),
    ("repository:acme/app:", "UNSUPPORTED"),
    ("repository:acme/app", "UNSUPPORTED"),
    ("repository:acme/app:pull,,push", "UNSUPPORTED"),
    ("repository::pull", "UNSUPPORTED"),
    ("repository:acme/app:pull:push", "UNSUPPORTED"),
    ("repo:acme/app:pull", "UNSUPPORTED"),
    ("", "UNSUPPORTED"),
    ("repository:Bad Name:pull", "NAME_INVALID"),
    ("repository:acme:pull", "NAME_INVALID"),  # names are namespace/repository
    (f"repository:{HOST}/acme:pull", "NAME_INVALID"),
    ("repository:acme/App:pull", "NAME_INVALID"),
    ("repository:acme/app/:pull", "NAME_INVALID"),
]


@pytest.mark.parametrize("scope, code", REFUSED)
def test_refused(scope, code):
    with pytest.raises(RegistryError) as caught:
        parse_scope(scope, HOST)
    assert caught.value.code == code
    assert caught.value.status == 400
    if code == "UNSUPPORTED":
        assert caught.value.message == f"Unable to decode repository and actions: {scope}"
