"""TLS as Quay lays it out: `ssl.cert` and `ssl.key` beside config.yaml make a service serve HTTPS;
PEM files in `extra_ca_certs/` beside it are trusted, with the system CAs, for calls to other regions."""
from __future__ import annotations

import ssl
from pathlib import Path


def server_context(config_dir: Path | None) -> ssl.SSLContext | None:
    if config_dir is None:
        return None
    cert, key = config_dir / "ssl.cert", config_dir / "ssl.key"
    if not (cert.is_file() and key.is_file()):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context


def client_context(config_dir: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if config_dir is not None:
        extra = config_dir / "extra_ca_certs"
        if extra.is_dir():
            for pem in sorted(extra.iterdir()):
                if pem.is_file():
                    context.load_verify_locations(cafile=str(pem))
    return context
