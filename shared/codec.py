"""JSON encoding shared by bus messages and error bodies."""
from __future__ import annotations

from typing import Any

import msgspec


def _plain(value: Any) -> Any:
    # Digest and other str subclasses travel as plain strings.
    if isinstance(value, str):
        return str(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_encoder = msgspec.json.Encoder(enc_hook=_plain)


def encode_json(value: Any) -> bytes:
    return _encoder.encode(value)
