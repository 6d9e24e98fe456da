"""The /v2 route table: which route and parameters a path gets (services/gateway/v2/routes.py)."""
from __future__ import annotations

import pytest

from services.gateway.v2.routes import PUSH_ROUTES, ROUTES, match

D = "sha256:" + "a" * 64
MATCHED = [
    # (path after /v2/, route, parameters)
    ("", "base", {}),
    ("_catalog", "catalog", {}),
    ("auth", "auth", {}),
    ("acme/app/tags/list", "tags", {"name": "acme/app"}),
    ("a/b/c/tags/list", "tags", {"name": "a/b/c"}),
    (f"acme/app/referrers/{D}", "referrers", {"name": "acme/app", "digest": D}),
    ("acme/app/blobs/uploads/", "upload_start", {"name": "acme/app"}),
    ("acme/app/blobs/uploads", "upload_start", {"name": "acme/app"}),
    ("acme/app/blobs/uploads/0b7a9c1e-1111-4222-8333-944445555666", "upload",
     {"name": "acme/app", "upload": "0b7a9c1e-1111-4222-8333-944445555666"}),
    (f"acme/app/blobs/{D}", "blob", {"name": "acme/app", "digest": D}),
    ("acme/app/manifests/latest", "manifest", {"name": "acme/app", "reference": "latest"}),
    (f"acme/app/manifests/{D}", "manifest", {"name": "acme/app", "reference": D}),
    # Names may contain the words the routes use.
    ("acme/manifests/manifests/v1", "manifest", {"name": "acme/manifests", "reference": "v1"}),
    ("acme/blobs/blobs/uploads/", "upload_start", {"name": "acme/blobs"}),
    ("acme/tags/manifests/list", "manifest", {"name": "acme/tags", "reference": "list"}),
    ("acme/app/manifests/x/tags/list", "tags", {"name": "acme/app/manifests/x"}),
    # Not validated here: the handlers answer NAME_INVALID / DIGEST_INVALID with an OCI body.
    ("Bad Name/manifests/v1", "manifest", {"name": "Bad Name", "reference": "v1"}),
    ("acme/app/blobs/not-a-digest", "blob", {"name": "acme/app", "digest": "not-a-digest"}),
]


@pytest.mark.parametrize("path, route, params", MATCHED)
def test_matched(path, route, params):
    found = match(path)
    assert found is not None
    assert (found[0].name, found[1]) == (route, params)


@pytest.mark.parametrize("path", [
    "acme/app",
    "acme/app/",
    "acme/app/manifests/",
    "acme/app/manifests/a/b",
    "acme/app/blobs/",
    "acme/app/unknown/x",
    "acme/app/tags",
    "/manifests/v1",
    "_catalog/extra",
])
def test_unmatched(path):
    assert match(path) is None


METHODS = {
    "base": {"GET", "HEAD"},
    "catalog": {"GET"},
    "auth": {"GET"},
    "tags": {"GET"},
    "referrers": {"GET"},
    "upload_start": {"POST"},
    "upload": {"GET", "PATCH", "PUT", "DELETE"},
    "blob": {"GET", "HEAD", "DELETE"},
    "manifest": {"GET", "HEAD", "PUT", "DELETE"},
}


def test_each_route_takes_its_methods():
    assert {route.name: set(route.methods) for route in ROUTES} == METHODS


def test_writes_and_pushes():
    for route in ROUTES:
        assert route.writes == {"PUT", "POST", "PATCH", "DELETE"}, route.name
    assert {"upload_start", "upload", "manifest"} == PUSH_ROUTES


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_a_route_skips_only_paths_its_pattern_could_not_match(route):
    # match() tries a route's pattern only on paths containing its marker: the marker must be literal
    # text of the pattern (no regex syntax in it), so every path the pattern matches contains it.
    assert not set(route.marker) & set(".^$*+?{}[]\\|()")
    assert route.marker in route.pattern.pattern


def _match_without_markers(path: str):
    for route in ROUTES:
        found = route.pattern.fullmatch(path)
        if found:
            return route, found.groupdict()
    return None


def test_markers_change_no_answer():
    # Every path of up to four segments built from the routes' own words (and a few others): match()
    # with its markers answers exactly what trying every pattern in order answers.
    import itertools

    words = ["acme", "manifests", "blobs", "uploads", "tags", "list", "referrers", "latest", D, "", "\n"]
    for count in range(1, 5):
        for segments in itertools.product(words, repeat=count):
            for path in ("/".join(segments), "/".join(segments) + "/"):
                assert match(path) == _match_without_markers(path), path
