"""The access line's `bytes` for answers logged before they are sent (services/gateway/app.py)."""
from __future__ import annotations

import json

from aiohttp import web

from services.gateway.app import _planned_length


def test_text_json_and_bytes_bodies_count_their_encoded_length():
    assert _planned_length(web.Response(text="héllo")) == len("héllo".encode())
    assert _planned_length(web.json_response({"a": 1})) == len(b'{"a": 1}')
    assert _planned_length(web.Response(body=b"x" * 10)) == 10
    assert _planned_length(web.Response(body=json.dumps({"a": "é"}), content_type="application/json")) == len(
        json.dumps({"a": "é"}).encode())  # the /api/v1 answers: a str body becomes a payload


def test_a_stream_counts_what_it_declares_and_nothing_else():
    declared = web.StreamResponse(headers={"Content-Length": "42"})
    assert _planned_length(declared) == 42
    assert _planned_length(web.StreamResponse()) == 0
    assert _planned_length(web.Response(status=204)) == 0
